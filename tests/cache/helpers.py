"""Realistic cache values for the cache tests and benchmarks: JSON rows shaped like API data."""

from __future__ import annotations

import json
import random

WORDS = [
    "order",
    "shipped",
    "pending",
    "refunded",
    "express",
    "standard",
    "customer",
    "invoice",
    "paid",
    "overdue",
    "berlin",
    "paris",
    "tokyo",
    "lisbon",
    "warehouse",
    "priority",
    "return",
    "exchange",
    "gift",
    "coupon",
    "loyalty",
    "premium",
]


def json_row(rng: random.Random, i: int, size: int = 1400) -> bytes:
    """A JSON record of about ``size`` bytes (ids, uuid, dates, amounts, items, free text)."""
    rec: dict[str, object] = {
        "id": i,
        "uuid": f"{rng.getrandbits(128):032x}",
        "customer": f"Customer {rng.randint(1, 10**6)}",
        "email": f"user{rng.randint(1, 10**6)}@example.com",
        "created_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "status": rng.choice(WORDS),
        "amount": round(rng.random() * 1000, 2),
        "items": [],
        "note": "",
    }
    items: list[dict[str, object]] = rec["items"]  # type: ignore[assignment]
    out = json.dumps(rec).encode()
    while len(out) < size:
        if rng.random() < 0.7:
            items.append(
                {
                    "sku": f"SKU-{rng.randint(1000, 9999)}",
                    "qty": rng.randint(1, 5),
                    "price": round(rng.random() * 100, 2),
                }
            )
        else:
            rec["note"] = (str(rec["note"]) + " " + " ".join(rng.choices(WORDS, k=4))).strip()
        out = json.dumps(rec).encode()
    return out
