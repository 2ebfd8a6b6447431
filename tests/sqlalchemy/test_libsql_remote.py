"""The remote path: SQLAlchemy's ``sqlite+libsql://`` dialect against ``edgestore serve``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.server import EdgestoreServer


class Base(DeclarativeBase):
    pass


class Note(Base):
    # No LargeBinary column: sqlalchemy-libsql 0.2.0's DB-API module has no Binary.
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(50))
    big: Mapped[int | None]


def test_orm_over_the_libsql_protocol(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "served.db") as server:
        host = server.url.removeprefix("http://")
        engine = create_engine(f"sqlite+libsql://{host}?secure=false")
        try:
            Base.metadata.create_all(engine)
            with Session(engine) as session:
                session.add_all([Note(text="remote", big=2**62), Note(text="client")])
                session.commit()
            with Session(engine) as session:
                texts = session.scalars(select(Note.text).order_by(Note.id)).all()
                assert texts == ["remote", "client"]
                assert session.scalar(select(Note.big).where(Note.text == "remote")) == 2**62
        finally:
            engine.dispose()
