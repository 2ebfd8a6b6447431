"""SQLAlchemy 2 + sqlalchemy-libsql (``sqlite+libsql://host:port/``, libSQL's remote protocol)
and Alembic (autogenerate, upgrade, batch) against ``edgestore serve``."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from tests.server import EdgestoreServer

from .conftest import file_rows, table_digests, user_tables
from .sqla.models import Author, Base, Book, Review

_EXTRA = "the compat extra is not installed: pip install -e '.[compat]'"
pytest.importorskip("sqlalchemy_libsql", reason=_EXTRA)
libsql_experimental = pytest.importorskip("libsql_experimental", reason=_EXTRA)
command = pytest.importorskip("alembic.command", reason=_EXTRA)
Config = pytest.importorskip("alembic.config", reason=_EXTRA).Config

BIG = 2**62 + 5
COVER = bytes([0, 1, 2, 254, 255])
TABLES = ("authors", "books", "reviews")


def libsql_url(server: EdgestoreServer) -> str:
    return f"sqlite+libsql://{urlsplit(server.url).netloc}/"


@pytest.fixture
def binary_workaround(monkeypatch: pytest.MonkeyPatch) -> None:
    """libsql-experimental's DB-API module has no ``Binary``, which SQLAlchemy's LargeBinary
    needs to bind bytes; the application-side fix is ``libsql_experimental.Binary = bytes``."""
    monkeypatch.setattr(libsql_experimental, "Binary", bytes, raising=False)


def test_largebinary_needs_the_binary_workaround(server: EdgestoreServer) -> None:
    """A client-side limit (the same against the libSQL server): binding a LargeBinary fails
    before anything is sent, without the workaround."""
    assert not hasattr(libsql_experimental, "Binary")
    engine = sa.create_engine(libsql_url(server))
    with engine.connect() as conn, pytest.raises(sa.exc.StatementError, match="Binary"):
        conn.execute(sa.select(sa.bindparam("b", COVER, type_=sa.LargeBinary)))
    engine.dispose()


def test_large_integers_are_bound_as_real_by_the_client(server: EdgestoreServer) -> None:
    """A client-side limit (the same against a local file, so against the libSQL server too):
    libsql-experimental binds ints of 2**31 and more as REAL. models.Int64 is the workaround."""
    for conn in (libsql_experimental.connect(":memory:"), libsql_experimental.connect(server.url)):
        row = conn.execute("SELECT typeof(?), typeof(CAST(? AS INTEGER))", (2**31, str(BIG)))
        assert row.fetchall() == [("real", "integer")]
        conn.close()


@pytest.mark.usefixtures("binary_workaround")
def test_sqlalchemy_core_and_orm(server: EdgestoreServer) -> None:
    engine = sa.create_engine(libsql_url(server))
    Base.metadata.create_all(engine)
    assert set(TABLES) <= user_tables(server.db_path)
    # Reflection sees the three tables, their foreign keys and indexes, nothing of edgestore's.
    inspector = sa.inspect(engine)
    assert sorted(inspector.get_table_names()) == sorted(TABLES)
    assert inspector.get_foreign_keys("reviews")[0]["referred_table"] == "books"
    assert {i["name"] for i in inspector.get_indexes("reviews")} == {"reviews_book_stars"}

    authors, books, reviews = (Base.metadata.tables[t] for t in TABLES)
    with engine.begin() as conn:  # Core: executemany, join, update, delete, committed
        conn.execute(
            authors.insert(),
            [
                {"id": 1, "name": "ann", "followers": BIG},
                {"id": 2, "name": "bo", "followers": None},
            ],
        )
        conn.execute(
            books.insert(),
            [
                {"id": 1, "author_id": 1, "title": "one", "price": 9.99, "cover": COVER},
                {"id": 2, "author_id": 1, "title": "two", "price": None, "cover": None},
                {"id": 3, "author_id": 2, "title": "three", "price": -0.5, "cover": b""},
            ],
        )
        conn.execute(
            reviews.insert(),
            [
                {"book_id": 1, "stars": 5, "body": "great"},
                {"book_id": 1, "stars": None, "body": "hm"},
                {"book_id": 3, "stars": 2, "body": "meh"},
            ],
        )
        rows = conn.execute(
            sa.select(authors.c.name, books.c.title, sa.func.count(reviews.c.id))
            .join(books, books.c.author_id == authors.c.id)
            .outerjoin(reviews, reviews.c.book_id == books.c.id)
            .group_by(books.c.id)
            .order_by(books.c.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("ann", "one", 2),
            ("ann", "two", 0),
            ("bo", "three", 1),
        ]
        conn.execute(books.update().where(books.c.id == 2).values(price=12.5))
    with engine.connect() as conn:  # rolled back
        conn.execute(authors.insert().values(id=3, name="never"))
        conn.rollback()
    with engine.connect() as conn:
        one = conn.execute(sa.select(books).where(books.c.id == 1)).one()
        assert (one.price, one.cover) == (9.99, COVER)
        assert conn.execute(sa.select(authors.c.followers).where(authors.c.id == 1)).scalar() == BIG
        assert conn.execute(sa.select(sa.func.count()).select_from(authors)).scalar() == 2
        # libsql-experimental raises a plain ValueError for a constraint violation (not a
        # DB-API IntegrityError), so SQLAlchemy cannot wrap it: a client-side limit.
        with pytest.raises(ValueError, match=r"UNIQUE constraint failed: authors\.name"):
            conn.execute(authors.insert().values(id=9, name="ann"))
        conn.rollback()

    with Session(engine) as session:  # ORM: relationships, update, cascade delete, rollback
        ann = session.scalars(
            sa.select(Author).where(Author.name == "ann").options(selectinload(Author.books))
        ).one()
        assert [b.title for b in ann.books] == ["one", "two"]
        assert ann.followers == BIG
        ann.books[0].reviews.append(Review(stars=4, body="orm"))
        session.add(Author(name="cy", followers=-BIG, books=[Book(title="four", price=1e-9)]))
        session.commit()
        session.add(Author(name="dee"))
        session.rollback()
        bo = session.scalars(sa.select(Author).where(Author.name == "bo")).one()
        session.delete(bo)
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Review)) == 3
        assert sorted(session.scalars(sa.select(Author.name))) == ["ann", "cy"]
        four = session.scalars(sa.select(Book).where(Book.title == "four")).one()
        assert (four.price, four.author.followers) == (1e-9, -BIG)
    engine.dispose()


@pytest.mark.usefixtures("binary_workaround")
def test_alembic_autogenerate_upgrade_and_batch(server: EdgestoreServer, tmp_path: Path) -> None:
    cfg = Config(str(tmp_path / "alembic.ini"))
    scripts = tmp_path / "alembic"
    command.init(cfg, str(scripts))
    shutil.copy(Path(__file__).parent / "sqla" / "env.py", scripts / "env.py")
    cfg.set_main_option("script_location", str(scripts))
    cfg.set_main_option("sqlalchemy.url", libsql_url(server))

    # autogenerate against the served database: it compares the models with what it reflects,
    # and edgestore's own record table must not become an op.drop_table().
    first = command.revision(cfg, message="init", autogenerate=True)
    upgrade = Path(first.path).read_text().split("def downgrade")[0]  # type: ignore[union-attr]
    for table in TABLES:
        assert f"op.create_table('{table}'" in upgrade
    assert "drop_table" not in upgrade
    command.upgrade(cfg, "head")
    assert {*TABLES, "alembic_version"} <= user_tables(server.db_path)

    engine = sa.create_engine(libsql_url(server))
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO authors VALUES (1, 'ann', CAST(:big AS INTEGER))"),
            {"big": str(BIG)},
        )
        conn.execute(
            sa.text("INSERT INTO books VALUES (1, 1, 't', 2.5, :c), (2, 1, 'u', NULL, NULL)"),
            {"c": COVER},
        )
        conn.execute(
            sa.text("INSERT INTO reviews(book_id, stars, body) VALUES (1, 5, 'a'), (2, NULL, 'b')")
        )
    engine.dispose()
    before = table_digests(server.db_path, TABLES)
    reviews_before = file_rows(server.db_path, "SELECT id, book_id, stars, body FROM reviews")
    assert len(reviews_before) == 2

    # The next model version: a batch migration that rebuilds reviews.
    cfg.set_main_option("models", "v2")
    second = command.revision(cfg, message="helpful", autogenerate=True)
    text = Path(second.path).read_text()  # type: ignore[union-attr]
    assert "batch_alter_table('reviews'" in text
    assert "add_column(sa.Column('helpful'" in text
    command.upgrade(cfg, "head")
    assert table_digests(server.db_path, ("authors", "books")) == {
        t: before[t] for t in ("authors", "books")
    }
    assert (
        file_rows(server.db_path, "SELECT id, book_id, stars, body FROM reviews") == reviews_before
    )
    engine = sa.create_engine(libsql_url(server))
    cols = {c["name"]: c for c in sa.inspect(engine).get_columns("reviews")}
    assert cols["body"]["nullable"] is True
    assert "helpful" in cols
    assert sa.inspect(engine).get_foreign_keys("reviews")[0]["referred_table"] == "books"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM books")).scalar() == 2
        assert conn.execute(sa.text("SELECT cover FROM books WHERE id = 1")).scalar() == COVER
        assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
    engine.dispose()
    # Nothing left to generate: the database matches the models.
    third = command.revision(cfg, message="noop", autogenerate=True)
    assert "pass" in Path(third.path).read_text()  # type: ignore[union-attr]


def test_connection_settings_do_not_outlive_a_statement(server: EdgestoreServer) -> None:
    """A client-side limit (the same against the libSQL server): libsql-experimental runs each
    statement outside a transaction on a new stream and closes it, so ``PRAGMA foreign_keys=OFF``
    is gone by the next statement; inside a transaction the stream stays."""
    conn = libsql_experimental.connect(server.url)
    conn.execute("PRAGMA foreign_keys=OFF")
    assert conn.execute("PRAGMA foreign_keys").fetchall() == [(1,)]
    conn.close()
