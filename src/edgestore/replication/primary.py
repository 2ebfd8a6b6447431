"""The primary side of libSQL replication, wired into a Store.

:meth:`ReplicationPrimary.attach` gives a Store the primary role: every connection stops
checkpointing on its own (so a checkpoint can only be a generation change, see
:mod:`.generations`), each commit moves the replication position, and a generation ends when
the pool closes its last connection on idle, when the WAL passes
``replication_wal_threshold_bytes``, and on demand (``edgestore replication checkpoint``).
Replicas are answered by :mod:`.serving`; ``edgestore.web.sync_routes`` puts that on HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import apsw

from ..config import Settings
from ..errors import ReplicationError
from ..storage.roles import Position, ReplicationRole
from .generations import Generations
from .position import format_position
from .serving import Frames, FrameServer
from .snapshot import FRAME_SIZE, PAGE_SIZE
from .status import PrimaryStats

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["ReplicationPrimary"]

log = logging.getLogger("edgestore.replication")


class _HookedStore(Protocol):
    """The hooks of ``storage.store.Store`` that replication uses."""

    path: Path
    settings: Settings

    def add_connection_hook(
        self, fn: Callable[[apsw.Connection, Literal["writer", "reader"]], None]
    ) -> None: ...

    def set_idle_close_handler(self, fn: Callable[[apsw.Connection], None] | None) -> None: ...

    def set_checkpoint_handler(self, fn: Callable[[], Awaitable[object]] | None) -> None: ...

    def run_on_writer(self, fn: Callable[[apsw.Connection], Any]) -> Awaitable[Any]: ...

    def set_replication_role(self, role: ReplicationRole | None) -> None: ...


class ReplicationPrimary:
    """Generations, archives and the pull protocol's answers for one database file."""

    def __init__(self, db_path: str | os.PathLike[str], settings: Settings) -> None:
        self.db_path = Path(db_path).resolve()
        self.settings = settings
        self._generations = Generations(self.db_path, settings)
        self._server = FrameServer(self._generations)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Weak: the store holds its primary as its replication role; a strong back-reference
        # would make a cycle that keeps a dropped store alive until the cycle collector runs.
        self._store_ref: Callable[[], _HookedStore | None] = lambda: None
        self._threshold_pending = False
        self._prescan_queued = False

    # --- wiring into a Store -----------------------------------------------------------
    @classmethod
    async def attach(cls, store: _HookedStore) -> ReplicationPrimary:
        """Install the connection hook and idle handler on ``store``; recover after a crash."""
        primary = cls(store.path, store.settings)
        primary._loop = asyncio.get_running_loop()
        primary._store_ref = weakref.ref(store)
        await store.run_on_writer(primary._check_page_size)
        store.add_connection_hook(primary.configure_connection)
        store.set_idle_close_handler(primary.on_idle_close)
        store.set_checkpoint_handler(primary.checkpoint)
        await store.run_on_writer(primary.recover)
        store.set_replication_role(primary)
        return primary

    @staticmethod
    def of(store: object) -> ReplicationPrimary | None:
        """The primary ``store`` was composed with (its replication role), if any."""
        role = getattr(store, "replication_role", None)
        return role if isinstance(role, ReplicationPrimary) else None

    def configure_connection(
        self, conn: apsw.Connection, role: Literal["writer", "reader"]
    ) -> None:
        """Per connection: no automatic checkpoints, and the WAL outlives the connection."""
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        # wal_autocheckpoint=0 and a WAL hook both replace SQLite's auto-checkpoint hook; the
        # hook also tells us the frame count after every commit (the replication position).
        conn.execute("PRAGMA wal_autocheckpoint=0")
        if role == "writer":
            conn.set_wal_hook(self._on_commit)
        self._check_page_size(conn)

    def _check_page_size(self, conn: apsw.Connection) -> None:
        page_size = conn.execute("PRAGMA page_size").fetchall()[0][0]
        if page_size != PAGE_SIZE:
            raise ReplicationError(
                f"{self.db_path} has page size {page_size}; libSQL replication needs "
                f"{PAGE_SIZE}. Convert it (`PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; "
                "VACUUM; PRAGMA journal_mode=WAL;`) or set replication = false"
            )

    def recover(self, conn: apsw.Connection) -> None:
        """Finish an interrupted generation change; detect checkpoints made by others."""
        self.configure_connection(conn, "writer")
        self._generations.recover(conn)

    def end_generation(self, conn: apsw.Connection, *, lock_timeout: float) -> int | None:
        """See :meth:`.Generations.end_generation` (writer thread, writer held)."""
        return self._generations.end_generation(conn, lock_timeout=lock_timeout)

    def on_idle_close(self, conn: apsw.Connection) -> None:
        """The pool's checkpoint before its last connection closes: end the generation."""
        try:
            self.end_generation(conn, lock_timeout=2.0)
        except Exception:  # the pool must still close; the WAL survives, nothing is lost
            log.exception("replication: generation change on idle failed")

    def _on_commit(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        if dbname == "main":
            self._generations.note_commit(pages)
            threshold = self.settings.replication_wal_threshold_bytes
            if pages * FRAME_SIZE >= threshold and not self._threshold_pending:
                self._threshold_pending = True
                self._schedule_checkpoint()
            loop = self._loop
            if loop is not None and not self._prescan_queued:
                self._prescan_queued = True
                try:
                    loop.call_soon_threadsafe(loop.run_in_executor, None, self._prescan)
                except RuntimeError:  # the loop is closed (shutting down): pulls scan instead
                    self._prescan_queued = False
        return apsw.SQLITE_OK

    def _prescan(self) -> None:
        """Checksum new frames in the background (at most one queued), so that a replica's
        next pull only reads them."""
        self._prescan_queued = False
        self._generations.scan_ahead()

    def _schedule_checkpoint(self) -> None:
        loop, store = self._loop, self._store_ref()
        if loop is None or store is None:
            self._threshold_pending = False
            return

        def start() -> None:
            task = loop.create_task(self._threshold_checkpoint(store))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed: the next start checkpoints on idle/close
            self._threshold_pending = False

    async def _threshold_checkpoint(self, store: _HookedStore) -> None:
        try:
            await store.run_on_writer(lambda conn: self.end_generation(conn, lock_timeout=30.0))
        except Exception:
            log.exception("replication: generation change at the WAL threshold failed")
        finally:
            self._threshold_pending = False

    async def checkpoint(self) -> int:
        """End the current generation now (on demand); return the new generation id (the
        same one when the WAL is empty: there is nothing to end)."""
        store = self._store_ref()
        if store is None:
            raise ReplicationError("not attached to a store")
        result = await store.run_on_writer(
            lambda conn: self.end_generation(conn, lock_timeout=60.0)
        )
        if result is None:
            raise ReplicationError("the generation change timed out behind pulls; retry")
        assert isinstance(result, int)
        return result

    # --- position ----------------------------------------------------------------------
    def position(self) -> Position:
        """``(generation, last committed frame)`` after the latest commit seen."""
        return self._generations.position

    @property
    def generation(self) -> int:
        return self._generations.generation

    # --- the protocol's answers (any thread) ---------------------------------------------
    def info(self) -> dict[str, int]:
        """``GET /info``."""
        return self._server.info()

    def export(self, generation: int) -> Iterator[bytes]:
        """``GET /export/{generation}``: see :meth:`.FrameServer.export`."""
        return self._server.export(generation)

    def frames(self, generation: int, start: int, end: int) -> Frames:
        """``GET /sync/{generation}/{start}/{end}``: see :meth:`.FrameServer.frames`."""
        return self._server.frames(generation, start, end)

    def stats(self) -> PrimaryStats:
        """For ``GET /replication`` (reads the archive directory: call it off the loop)."""
        gens = self._generations
        return PrimaryStats(
            generation=gens.generation,
            frames=gens.position[1],
            wal_bytes=gens.wal_bytes(),
            archived_generations=gens.archive.generations(),
            position=format_position(self.position()),
        )


# Threshold checkpoints run as tasks nobody awaits; the loop keeps only weak references to
# tasks, so they are kept here until they finish.
_BACKGROUND: set[asyncio.Task[None]] = set()
