"""Models of the SQLAlchemy/Alembic conformance test: three tables, foreign keys, indexes."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    cast,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import BindParameter, ColumnElement


class Int64(TypeDecorator[int]):
    """A 64-bit INTEGER for libsql-experimental, which binds a Python int of 2**31 or more as a
    REAL (a client-side conversion: a local file gets the same); sent as text and cast by
    SQLite, the value stays an exact INTEGER."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def bind_expression(self, bindvalue: BindParameter[int]) -> ColumnElement[int]:
        return cast(bindvalue, BigInteger)


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    followers: Mapped[int | None] = mapped_column(Int64)
    books: Mapped[list[Book]] = relationship(back_populates="author", cascade="all, delete")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[float | None] = mapped_column(Float)
    cover: Mapped[bytes | None] = mapped_column(LargeBinary)
    author: Mapped[Author] = relationship(back_populates="books")
    reviews: Mapped[list[Review]] = relationship(back_populates="book", cascade="all, delete")


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"))
    stars: Mapped[int | None]
    body: Mapped[str] = mapped_column(Text)
    book: Mapped[Book] = relationship(back_populates="reviews")
    __table_args__ = (Index("reviews_book_stars", "book_id", "stars"),)


def metadata_v2() -> MetaData:
    """The next version of the schema: reviews.body becomes nullable and reviews gets an indexed
    helpful column; Alembic's batch mode rebuilds reviews (copy, drop, rename)."""
    md = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(md)
    reviews = md.tables["reviews"]
    reviews.c.body.nullable = True
    reviews.append_column(Column("helpful", BigInteger, nullable=True))
    Index("reviews_helpful", reviews.c.helpful)
    return md
