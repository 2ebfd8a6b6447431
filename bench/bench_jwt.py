"""What verifying a libSQL JWT costs, and why edgestore.auth remembers verified tokens.

1. PyJWT's decode with the Ed25519 signature check (``Authenticator._decode_jwt``), the work
   of a request whose token was not seen before.
2. ``Authenticator.authenticate`` for a token it has verified before (the cache hit every
   later request of a client takes).

Median of RUNS runs of CALLS calls each, in microseconds per call.

    .venv/bin/python bench/bench_jwt.py
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any

from edgestore.auth import Authenticator, create_jwt, generate_keypair, load_private_key
from edgestore.config import Settings

RUNS = 7
CALLS = 2000


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    return statistics.median(timeit.repeat(fn, number=calls, repeat=RUNS)) / calls * 1e6


def main() -> None:
    pem, public = generate_keypair()
    token = create_jwt(load_private_key(pem), access="ro", expires_in=3600)
    auth = Authenticator(Settings(jwt_public_key=public))
    decode = per_call_us(lambda: auth._decode_jwt(token), CALLS)
    auth.authenticate(token)
    cached = per_call_us(lambda: auth.authenticate(token), CALLS * 100)
    print(f"PyJWT decode + Ed25519 verify: {decode:8.1f} us")
    print(f"authenticate, cached token:    {cached:8.2f} us  ({decode / cached:.0f}x cheaper)")


if __name__ == "__main__":
    main()
