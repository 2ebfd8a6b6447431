"""The primary side of libSQL replication: generations of the WAL, served to replicas.

A *generation* is the span between two checkpoints. While one is live, SQLite never
checkpoints on its own (``wal_autocheckpoint=0``, no checkpoint when the last connection
closes), so the main database file does not change: it *is* the start of the generation, which
``/export/{gen}`` serves, and the WAL holds every frame written since, which ``/sync`` serves.
A generation ends only here (:meth:`ReplicationPrimary.end_generation`): its frames are
archived, the WAL is checkpointed (TRUNCATE), and the next id is persisted. That happens when
the pool closes its last connection on idle, when the WAL passes
``replication_wal_threshold_bytes``, and on demand (``edgestore replication checkpoint``).

Ended generations stay archived (frames plus a base snapshot of the oldest one) for
``replication_retention_seconds`` / ``replication_retention_bytes``; a replica behind that is
re-bootstrapped inside the protocol: it is sent every page of the base snapshot as one
transaction, which leaves it exactly at the start of the oldest archived generation.

Framework-free: the web layer maps the errors raised here to the protocol's answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import apsw

from ..config import Settings
from ..errors import (
    EndOfGeneration,
    InvalidRequest,
    NotFoundError,
    ReplicationError,
    SyncPushRefused,
)
from ..storage.roles import Position, ReplicationRole
from .archive import Archive, ArchivedGeneration, GenerationState
from .pull import archived_chunks, live_chunks
from .rwlock import FileRWLock
from .snapshot import PAGE_SIZE, file_as_frames
from .status import PrimaryStats
from .wal import FRAME_HEADER_SIZE, WAL_HEADER_SIZE, WalIndex, cut_at_commit

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = [
    "EndOfGeneration",
    "Position",
    "ReplicationPrimary",
    "SyncPushRefused",
    "format_position",
    "parse_position",
]

log = logging.getLogger("edgestore.replication")

FRAME_SIZE = FRAME_HEADER_SIZE + PAGE_SIZE
POSITION_HEADER = "x-edgestore-position"
"""Response header carrying the replication position a write produced: ``<generation>.<frame>``."""


def format_position(position: Position) -> str:
    return f"{position[0]}.{position[1]}"


def parse_position(text: str) -> Position:
    """``"<generation>.<frame>"`` -> ``(generation, frame)``; InvalidRequest when malformed."""
    gen, sep, frame = text.strip().partition(".")
    try:
        if not sep:
            raise ValueError
        out = (int(gen), int(frame))
    except ValueError:
        raise InvalidRequest(
            f"invalid replication position {text!r}: expected '<generation>.<frame>'"
        ) from None
    if out[0] < 1 or out[1] < 0:
        raise InvalidRequest(f"invalid replication position {text!r}")
    return out


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


@dataclass(frozen=True, slots=True)
class Frames:
    """A pull answer: an iterator of byte chunks (whole frames) and how many frames."""

    chunks: Iterator[bytes]
    count: int


class ReplicationPrimary:
    """Generations, archives and the pull protocol's answers for one database file."""

    def __init__(self, db_path: str | os.PathLike[str], settings: Settings) -> None:
        self.db_path = Path(db_path).resolve()
        self.wal_path = Path(str(self.db_path) + "-wal")
        self.settings = settings
        self.archive = Archive(self.db_path)
        self._state = self.archive.load_state() or GenerationState(generation=1)
        self._lock = FileRWLock(self.archive.dir / "lock")
        self._state_sig = self._stat_state()
        self._scan_lock = threading.Lock()
        self._index = WalIndex(self.wal_path)
        self._position: Position = (self._state.generation, 0)
        self._position_changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Weak: the store holds its primary as its replication role; a strong back-reference
        # would make a cycle that keeps a dropped store alive until the cycle collector runs.
        self._store_ref: Callable[[], _HookedStore | None] = lambda: None
        self._threshold_pending = False
        self._prescan_queued = False
        self._restart_seen = False  # a background scan found the WAL restarted by others
        self._listeners: list[Callable[[Position], None]] = []

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

    def on_idle_close(self, conn: apsw.Connection) -> None:
        """The pool's checkpoint before its last connection closes: end the generation."""
        try:
            self.end_generation(conn, lock_timeout=2.0)
        except Exception:  # the pool must still close; the WAL survives, nothing is lost
            log.exception("replication: generation change on idle failed")

    def _on_commit(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        if dbname == "main":
            self._refresh_state()
            self._set_position((self._state.generation, pages))
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
        """Checksum new frames in the background, off the pull's path (at most one queued):
        a replica's next pull then only reads them."""
        self._prescan_queued = False
        try:
            with self._lock.shared(timeout=0.05), self._scan_lock:
                if not self._index.refresh():
                    self._restart_seen = True
                self._record_salts()
        except ReplicationError:
            pass  # a generation change holds the lock; the next pull scans instead
        except OSError:
            log.debug("replication: background WAL scan failed", exc_info=True)

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
        return self._position

    def _set_position(self, position: Position) -> None:
        with self._position_changed:
            self._position = position
            self._position_changed.notify_all()
        for fn in self._listeners:
            fn(position)

    def add_position_listener(self, fn: Callable[[Position], None]) -> None:
        """Called (from the writer thread) after each commit with the new position."""
        self._listeners.append(fn)

    @property
    def generation(self) -> int:
        return self._state.generation

    # --- recovery and generation change (writer thread, writer held) --------------------
    def recover(self, conn: apsw.Connection) -> None:
        """Finish an interrupted generation change; detect checkpoints made by others."""
        self.configure_connection(conn, "writer")
        fd = self._lock.acquire_exclusive(60.0)
        if fd is None:
            raise ReplicationError("the replication lock stayed busy for 60 s")
        try:
            self.archive.check()
            self._refresh_state()
            self._recover(conn)
        finally:
            self._lock.release(fd)

    def _recover(self, conn: apsw.Connection) -> None:
        state = self._state
        if state.pending_checkpoint:
            self._checkpoint_truncate(conn)
            state.pending_checkpoint = False
            state.db_stat = self._db_stat()
            state.salts = None
            state.started_at = time.time()
            self._save_state(state)
        with self._scan_lock:
            same_wal = self._index.refresh()
        header = self._index.header
        interfered = (state.db_stat is not None and state.db_stat != self._db_stat()) or (
            state.salts is not None and header is not None and header.salts != state.salts
        )
        if state.salts is not None and header is None and state.db_stat != self._db_stat():
            interfered = True
        if interfered or not same_wal:
            log.warning(
                "replication: %s was checkpointed outside edgestore; starting a new generation "
                "(replicas behind it will be re-bootstrapped)",
                self.db_path,
            )
            self.archive.clear(lost_generation=state.generation)
            self._new_generation(conn, state.generation + 1, archive=False)
            return
        if state.db_stat is None:
            state.db_stat = self._db_stat()
        self._record_salts()
        self._save_state(state)
        self._position = (state.generation, self._index.last_commit)

    def end_generation(self, conn: apsw.Connection, *, lock_timeout: float) -> int | None:
        """Archive the generation's frames, checkpoint TRUNCATE, start the next generation.

        Returns the new generation id, the current one when the WAL holds no commit (nothing
        to end), or None when pulls kept the lock busy (retried later).
        """
        fd = self._lock.acquire_exclusive(lock_timeout)
        if fd is None:
            log.info("replication: generation change postponed, pulls in progress")
            return None
        try:
            if self._changed_outside():  # (it also reloads state another process changed)
                log.warning(
                    "replication: %s was checkpointed outside edgestore; generation %d is lost",
                    self.db_path,
                    self._state.generation,
                )
                self.archive.clear(lost_generation=self._state.generation)
                return self._new_generation(conn, self._state.generation + 1, archive=False)
            if self._index.last_commit == 0:
                return self._state.generation
            return self._new_generation(conn, self._state.generation + 1, archive=True)
        finally:
            self._lock.release(fd)

    def _new_generation(self, conn: apsw.Connection, new: int, *, archive: bool) -> int:
        old = self._state
        last = self._index.last_commit
        if archive and last:
            if self.archive.base() is None:
                # The main file is still the start of the old generation: it becomes the
                # base snapshot that replicas older than every archive are rebuilt from.
                self.archive.save_base(old.generation, self.db_path)
            fd = os.open(self.wal_path, os.O_RDONLY)
            try:
                self.archive.store(
                    old.generation,
                    fd,
                    WAL_HEADER_SIZE,
                    last * self._index.frame_size,
                    list(self._index.commits),
                    complete=True,
                )
            finally:
                os.close(fd)
        pending = GenerationState(generation=new, pending_checkpoint=True)
        self._save_state(pending)
        try:
            self._checkpoint_truncate(conn)
        except Exception:
            self._save_state(old)
            raise
        pending.pending_checkpoint = False
        pending.db_stat = self._db_stat()
        self._save_state(pending)
        self._state = pending
        with self._scan_lock:
            self._index.reset()
            self._restart_seen = False
        self._set_position((new, 0))
        dropped = self.archive.prune(
            max_age=self.settings.replication_retention_seconds,
            max_bytes=self.settings.replication_retention_bytes,
            page_size=PAGE_SIZE,
        )
        log.info(
            "replication: generation %d ended (%d frames), now %d%s",
            old.generation,
            last,
            new,
            f"; archives dropped: {dropped}" if dropped else "",
        )
        return new

    def _checkpoint_truncate(self, conn: apsw.Connection) -> None:
        busy, log_frames, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
        if busy:
            raise ReplicationError("checkpoint blocked by readers; the generation continues")
        if log_frames not in (0, -1):
            raise ReplicationError("checkpoint did not empty the WAL; the generation continues")

    def _save_state(self, state: GenerationState) -> None:
        self.archive.save_state(state)
        self._state_sig = self._stat_state()

    def _stat_state(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.archive.state_path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _refresh_state(self) -> None:
        """Reload state.json when another process (another worker) changed it."""
        sig = self._stat_state()
        if sig == self._state_sig:
            return
        loaded = self.archive.load_state()
        self._state_sig = sig
        if loaded is None:
            return
        if loaded.generation != self._state.generation:
            with self._scan_lock:
                self._index.reset()
            self._position = (loaded.generation, 0)
        self._state = loaded

    def _db_stat(self) -> tuple[int, int]:
        st = os.stat(self.db_path)
        return (st.st_size, st.st_mtime_ns)

    def _record_salts(self) -> None:
        header = self._index.header
        if header is not None and self._state.salts is None:
            self._state.salts = header.salts
            self._save_state(self._state)

    # --- the protocol's answers (any thread) ---------------------------------------------
    def info(self) -> dict[str, int]:
        """``GET /info``."""
        self._refresh_state()
        return {"current_generation": self._state.generation}

    def export(self, generation: int) -> Iterator[bytes]:
        """``GET /export/{generation}``: the database file as at the start of the generation.

        Only the current generation is exported (replicas ask for the one ``/info`` named).
        The shared lock is held while the file is read, so no checkpoint tears it.
        """
        self._refresh_state()
        if generation != self._state.generation:
            raise NotFoundError(
                f"generation {generation} cannot be exported; the current generation is "
                f"{self._state.generation}"
            )
        return self._export_chunks(generation)

    def _export_chunks(self, generation: int) -> Iterator[bytes]:
        with self._lock.shared():
            outside = self._changed_outside()
        if outside:
            self._adopt_outside_change()
            raise ReplicationError(
                "the database was checkpointed outside edgestore; a new generation began "
                "(retry /info)"
            )
        with self._lock.shared():
            self._refresh_state()
            if generation != self._state.generation:
                raise NotFoundError(f"generation {generation} ended while it was exported")
            self._check_db_unchanged()
            with open(self.db_path, "rb") as fh:
                while piece := fh.read(1 << 20):
                    yield piece

    def _check_db_unchanged(self) -> None:
        if self._state.db_stat is not None and self._state.db_stat != self._db_stat():
            raise ReplicationError(
                "the database file changed outside edgestore during this generation "
                "(another program checkpointed it); a new generation begins: retry"
            )

    def frames(self, generation: int, start: int, end: int) -> Frames:
        """``GET /sync/{generation}/{start}/{end}``: frames ``start..end-1``, whole transactions.

        Raises :class:`EndOfGeneration` when there is nothing after ``start - 1``.
        """
        if start < 1 or end <= start:
            raise InvalidRequest(f"invalid frame range {start}..{end} (end is exclusive)")
        with self._lock.shared():
            self._refresh_state()
            current = self._state.generation
            if generation > current:
                raise NotFoundError(
                    f"generation {generation} does not exist; the current generation is "
                    f"{current} (was this replica made from another primary?)"
                )
            if generation < current:
                archived = self.archive.get(generation)
                if archived is None:
                    return self._rebootstrap(generation, start)
                return self._archived_frames(archived, current, start, end)
            if not self._changed_outside():
                return self._live_frames(current, start, end)
        self._adopt_outside_change()
        raise ReplicationError(
            "the database was checkpointed outside edgestore; a new generation began (retry)"
        )

    def _changed_outside(self) -> bool:
        """Did another program checkpoint the database or restart the WAL mid-generation?"""
        self._refresh_state()
        state = self._state
        with self._scan_lock:
            if not self._index.refresh() or self._restart_seen:
                return True
            header = self._index.header
        if state.salts is not None and header is not None and header.salts != state.salts:
            return True
        return state.db_stat is not None and state.db_stat != self._db_stat()

    def _adopt_outside_change(self) -> None:
        """Start a new generation from what is on disk now, without checkpointing.

        A WAL restarts only after a complete checkpoint, so the database file now holds every
        frame of the old generation and the WAL continues from it: (file, WAL) is a valid
        generation start. The old generation's unread frames are gone: replicas inside it are
        told to re-bootstrap (its tombstone says "lost"), never fed a mismatched WAL.
        """
        fd = self._lock.acquire_exclusive(30.0)
        if fd is None:
            return
        try:
            self._refresh_state()
            if not self._changed_outside():
                return  # another thread or process adopted it already
            old = self._state
            log.warning(
                "replication: %s was checkpointed outside edgestore during generation %d; "
                "generation %d starts from the file as it is now",
                self.db_path,
                old.generation,
                old.generation + 1,
            )
            self.archive.clear(lost_generation=old.generation)
            with self._scan_lock:
                self._index.reset()
                self._restart_seen = False
                self._index.refresh()
                header = self._index.header
                last = self._index.last_commit
            new = GenerationState(
                generation=old.generation + 1,
                salts=header.salts if header is not None else None,
                db_stat=self._db_stat(),
            )
            self._save_state(new)
            self._state = new
            self._set_position((new.generation, last))
        finally:
            self._lock.release(fd)

    def _live_frames(self, current: int, start: int, end: int) -> Frames:
        with self._scan_lock:
            self._index.refresh()
            self._record_salts()
            commits = self._index.commits
            last = cut_at_commit(commits, start, end)
            known = commits[-1] if commits else 0
        if last is None:
            if start > known + 1:
                raise ReplicationError(
                    f"the replica is ahead of the primary (asks frame {start}, generation "
                    f"{current} has {known}); delete the replica's files to re-bootstrap it"
                )
            raise EndOfGeneration(current)
        chunks = live_chunks(
            lambda a, b: self._read_live(current, a, b),
            lambda a, b: self._read_ended(current, a, b),
            start,
            last,
        )
        return Frames(chunks, last - start + 1)

    def _read_live(self, generation: int, start: int, end: int) -> bytes | None:
        """Frames of ``generation`` from the WAL; None once it is no longer the live one."""
        with self._lock.shared():
            self._refresh_state()
            if self._state.generation != generation:
                return None
            if self._changed_outside():
                raise ReplicationError(
                    "the database was checkpointed outside edgestore while frames were sent"
                )
            return self._index.read_frames(start, end)

    def _read_ended(self, generation: int, start: int, end: int) -> bytes:
        """Frames of a generation that ended while they were being sent: from its archive."""
        archived = self.archive.get(generation)
        if archived is None:
            raise ReplicationError(f"generation {generation} ended and is no longer archived")
        return self.archive.read(archived, start, end, FRAME_SIZE)

    def _archived_frames(
        self, archived: ArchivedGeneration, current: int, start: int, end: int
    ) -> Frames:
        last = cut_at_commit(list(archived.commits), start, end)
        if last is None:
            if start > archived.frames + 1:
                raise ReplicationError(
                    f"the replica is ahead of generation {archived.generation} (asks frame "
                    f"{start} of {archived.frames}); delete its files to re-bootstrap it"
                )
            raise EndOfGeneration(current)
        chunks = archived_chunks(archived.path, start, last, FRAME_SIZE)
        return Frames(chunks, last - start + 1)

    def _rebootstrap(self, generation: int, start: int) -> Frames:
        """A generation no longer archived: send a whole snapshot as one transaction.

        The snapshot is the start of the oldest archived generation (or of the current one
        when nothing is archived). The protocol has no "start over" message and a request
        says only (generation, frame), so the snapshot is padded to end past the frame count
        the dropped generation had: any later request for that generation is then known to
        come after a snapshot (or after all of its frames), and is told the generation ended.
        The replica walks forward; each further dropped generation rebuilds it to the same
        state, and the archived ones apply on top of it.
        """
        known = self.archive.tombstones().get(generation)
        current = self._state.generation
        if known is None or known < 0:
            raise ReplicationError(
                f"generation {generation} is no longer available and its history was lost "
                "(the database was checkpointed outside edgestore); delete the replica's "
                "files (db, -wal, -shm, -info) so that it bootstraps again"
            )
        if start > known:
            raise EndOfGeneration(current)
        base = self.archive.base()
        path = base[1] if base is not None else self.db_path
        count = os.stat(path).st_size // PAGE_SIZE
        if count == 0:
            raise EndOfGeneration(current)
        # The snapshot must end at frame >= known so the next request (>= known + 1) is
        # answered "generation ended" above.
        padding = max(0, known - (start + count - 1))
        log.info("replication: re-bootstrapping a replica at %d.%d", generation, start)
        return Frames(self._locked(file_as_frames(path, padding=padding)), count + padding)

    def _locked(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        with self._lock.shared():
            yield from chunks

    def stats(self) -> PrimaryStats:
        """For ``GET /replication`` (reads the archive directory: call it off the loop)."""
        gens = self.archive.generations()
        return PrimaryStats(
            generation=self._state.generation,
            frames=self._position[1],
            wal_bytes=self.wal_path.stat().st_size if self.wal_path.exists() else 0,
            archived_generations=gens,
            position=format_position(self.position()),
        )


_BACKGROUND: set[asyncio.Task[None]] = set()
