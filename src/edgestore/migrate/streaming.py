"""``run`` loads SQLite while it exports: :class:`StreamingLoad`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from ..errors import MigrationError
from .importer import META_TABLE, create_schema, set_load_pragmas, snapshot_digest, snapshot_meta
from .plan import Plan, TablePlan
from .snapshot import ChunkInfo, Manifest
from .typemap import quote_ident as q

__all__ = ["StreamingLoad"]


class StreamingLoad:
    """Loads each chunk into ``<target>.partial`` while the export writes it (``run``).

    The rows the export encodes into a chunk go to SQLite in the same pass, inside one
    transaction that commits, with the chunk's ``sqlite_edgestore_migration`` row (same key and
    SHA-256 as a plain import records), only after the chunk file is closed and fsynced. Rows
    are then never parsed twice. Until :meth:`finish` stamps the snapshot's identity the
    partial is marked :data:`STREAMING`: an interrupted run discards it and starts over. After
    :meth:`finish`, :func:`import_snapshot` sees every chunk committed and only builds the
    indexes, checks foreign keys and sets sequences, exactly as for a resumed import. A failed
    export (:meth:`abort`) removes the partial file: the next run starts over anyway.
    """

    def __init__(self, target: Path) -> None:
        self.work = target.with_name(target.name + ".partial")
        self._files = (self.work, Path(f"{self.work}-wal"), Path(f"{self.work}-shm"))
        self._db: apsw.Connection | None = None
        self._insert = ""
        self._table = ""

    @property
    def db(self) -> apsw.Connection:
        if self._db is None:
            raise MigrationError("the streaming import has not begun")
        return self._db

    def _guard(self, what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except (apsw.FullError, apsw.IOError) as exc:
            self.abort()
            kind = "disk full" if isinstance(exc, apsw.FullError) else f"write failed ({exc})"
            raise MigrationError(
                f"{kind} while {what}: the run stopped cleanly and removed {self.work}; free "
                "some space and run the same command again (it starts over)"
            ) from exc
        except apsw.Error as exc:
            self.abort()
            raise MigrationError(f"{what} failed: {exc}") from exc

    def begin(self, plan: Plan) -> None:
        for p in self._files:  # a partial left by a run killed during its export
            p.unlink(missing_ok=True)
        try:
            self._db = apsw.Connection(str(self.work))
        except apsw.Error as exc:
            raise MigrationError(f"cannot open {self.work}: {exc}") from exc

        def create() -> None:
            set_load_pragmas(self.db)
            with self.db:
                create_schema(self.db, plan)
                self.db.execute(f"INSERT INTO {META_TABLE} VALUES ('loaded_during_export', '1')")

        self._guard(f"creating the tables in {self.work}", create)

    def table(self, table: TablePlan) -> None:
        self._table = table.name
        self._insert = (
            f"INSERT INTO {q(table.name)} VALUES ({', '.join('?' for _ in table.columns)})"
        )

    def rows(self, rows: list[Any]) -> None:
        def insert() -> None:
            if self.db.getautocommit():
                self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(self._insert, rows)

        self._guard(f"loading rows into {self._table}", insert)

    def chunk_done(self, index: int, chunk: ChunkInfo) -> None:
        """``chunk`` is on disk (fsynced): commit its rows together with its record."""

        def commit() -> None:
            if self.db.getautocommit():  # a chunk without rows cannot happen; be safe
                self.db.execute("BEGIN IMMEDIATE")
            key = f"chunk:{self._table}:{index}"
            self.db.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?)", (key, chunk.sha256))
            self.db.execute("COMMIT")

        self._guard(f"loading {chunk.file} into {self._table}", commit)

    def finish(self, manifest: Manifest) -> None:
        """The manifest is written: stamp the snapshot identity so the import can finish."""

        def stamp() -> None:
            with self.db:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO {META_TABLE} VALUES (?, ?)",
                    [*snapshot_meta(manifest), ("plan_digest", snapshot_digest(manifest))],
                )

        self._guard(f"recording the snapshot in {self.work}", stamp)
        self.db.close()
        self._db = None

    def abort(self) -> None:
        """Close and remove the partial file (a SIGKILL leaves it marked STREAMING instead)."""
        if self._db is not None:
            self.db.close()  # discards the open transaction
            self._db = None
        for p in self._files:
            p.unlink(missing_ok=True)
