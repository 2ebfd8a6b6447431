"""A Django program against a libSQL backend: ``python -m tests.tools.djangoproj.run``, with
DJANGO_DB_ENGINE and DJANGO_DB_NAME set; prints one JSON line of what it saw.

migrate to 0001, data, migrate to DJANGO_TARGET (default 0002, a rebuild of Book, which Review
references), ORM queries, atomic blocks, a unique violation, ``migrate shop zero`` and migrate
again. The ORM works through Django's historical models of the target, so a backend that cannot
run 0002 is still exercised at 0001.
"""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.tools.djangoproj.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.db.models import Count, F  # noqa: E402

BIG = 2**62 + 11
COVER = bytes([0, 1, 2, 254, 255])
TARGET = os.environ.get("DJANGO_TARGET", "0002_isbn_subtitle")


def tables() -> list[str]:
    return sorted(t for t in connection.introspection.table_names() if t.startswith("shop_"))


def models_at(migration: str) -> tuple[type, type, type]:
    apps = MigrationExecutor(connection).loader.project_state(("shop", migration)).apps
    return tuple(apps.get_model("shop", m) for m in ("Publisher", "Book", "Review"))  # type: ignore[return-value]


def main() -> dict[str, object]:
    report: dict[str, object] = {}
    call_command("migrate", "shop", "0001", verbosity=0)
    publisher, book, review = models_at("0001_initial")
    acme = publisher.objects.create(name="acme", founded=BIG)
    nil = publisher.objects.create(name="nil", founded=None)
    one = book.objects.create(publisher=acme, title="one", isbn="1", price=9.5, copies=-BIG)
    two = book.objects.create(publisher=acme, title="two", isbn="2", price=None, cover=COVER)
    three = book.objects.create(publisher=nil, title="three", isbn="3", price=0.1 + 0.2)
    review.objects.bulk_create(
        [
            review(book=one, stars=5, body="a"),
            review(book=one, stars=None, body="b"),
            review(book=three, stars=1, body="c"),
        ]
    )
    if TARGET != "0001_initial":
        # 0002 alters Book (a table rebuild on SQLite) while Review rows reference it.
        call_command("migrate", "shop", TARGET, verbosity=0)
        publisher, book, review = models_at(TARGET)
    report["counts_after_migrate"] = [book.objects.count(), review.objects.count()]

    report["founded"] = publisher.objects.get(name="acme").founded
    b1 = book.objects.get(pk=one.pk)
    report["copies"], report["price"] = b1.copies, b1.price
    report["float"] = book.objects.get(pk=three.pk).price
    cover = book.objects.get(pk=two.pk).cover
    report["cover"] = None if cover is None else bytes(cover).hex()
    with connection.cursor() as cursor:  # what the database holds, read as text
        cursor.execute(
            "SELECT hex(cover), typeof(cover), typeof(price) FROM shop_book WHERE id IN (%s, %s)"
            " ORDER BY id",
            [one.pk, two.pk],
        )
        report["stored"] = [list(r) for r in cursor.fetchall()]
    report["join"] = [
        [b.publisher.name, b.title, b.n]
        for b in book.objects.select_related("publisher")
        .annotate(n=Count("reviews"))
        .order_by("pk")
    ]
    book.objects.filter(publisher_id=acme.pk).update(copies=F("copies") + 1)
    report["copies_updated"] = book.objects.get(pk=one.pk).copies

    with transaction.atomic():
        review.objects.create(book_id=two.pk, stars=3, body="committed")
    try:
        with transaction.atomic():
            review.objects.create(book_id=two.pk, stars=0, body="rolled back")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    report["bodies"] = sorted(review.objects.values_list("body", flat=True))
    try:
        publisher.objects.create(name="acme")
        report["unique"] = "no error"
    except IntegrityError as exc:
        report["unique"] = type(exc).__name__

    publisher.objects.get(pk=nil.pk).delete()  # cascades to its book and that book's review
    report["after_delete"] = [book.objects.count(), review.objects.count()]

    report["tables"] = tables()
    call_command("migrate", "shop", "zero", verbosity=0)
    report["tables_at_zero"] = tables()
    call_command("migrate", "shop", TARGET, verbosity=0)
    report["tables_again"] = tables()
    return report


print(json.dumps(main()))
