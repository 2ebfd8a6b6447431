"""Generations of one database file: which one is live, how it ends, and how a checkpoint
made by another program is noticed.

A *generation* is the span between two checkpoints. While one is live, SQLite never
checkpoints on its own (``wal_autocheckpoint=0``, no checkpoint when the last connection
closes; :mod:`.primary` configures every connection so), so the main database file does not
change: it *is* the start of the generation, which ``/export/{gen}`` serves, and the WAL holds
every frame written since, which ``/sync`` serves. A generation ends only here
(:meth:`Generations.end_generation`): its frames are archived, the WAL is checkpointed
(TRUNCATE), and the next id is persisted.

Ended generations stay archived (frames plus a base snapshot of the oldest one) for
``replication_retention_seconds`` / ``replication_retention_bytes``; :mod:`.serving` answers
pulls from the live WAL and from those archives.

Several processes (``workers > 1``, ``edgestore replication checkpoint --offline``) may share
one database: the state lives in ``<db>-replication/state.json`` (:mod:`.archive`) and is
reloaded whenever its file changed, and a generation change holds the exclusive side of
``<db>-replication/lock`` (:mod:`.rwlock`) while pulls hold its shared side.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import apsw

from ..config import Settings
from ..errors import ReplicationError
from ..storage.roles import Position
from .archive import Archive, GenerationState
from .rwlock import FileRWLock
from .snapshot import PAGE_SIZE
from .wal import WAL_HEADER_SIZE, WalIndex, cut_at_commit

__all__ = ["Generations"]

log = logging.getLogger("edgestore.replication")


class Generations:
    """The live generation of one database file, its WAL index and its archive.

    Methods taking ``conn`` run on the store's writer thread with the writer held; the others
    may run on any thread (pulls run on worker threads).
    """

    def __init__(self, db_path: Path, settings: Settings) -> None:
        self.db_path = db_path
        self.wal_path = Path(str(db_path) + "-wal")
        self.settings = settings
        self.archive = Archive(db_path)
        self.lock = FileRWLock(self.archive.dir / "lock")
        """Shared while frames or the database file are read; exclusive for a generation change."""
        self._state = self.archive.load_state() or GenerationState(generation=1)
        self.position: Position = (self._state.generation, 0)
        """``(generation, last committed frame)`` after the latest commit seen."""
        self._state_sig = self._stat_state()
        self._scan_lock = threading.Lock()  # guards the WAL index, which scans incrementally
        self._index = WalIndex(self.wal_path)
        self._restart_seen = False  # a background scan found the WAL restarted by others

    @property
    def generation(self) -> int:
        """The live generation's id (as last loaded: call :meth:`refresh_state` first when
        another process may have changed it)."""
        return self._state.generation

    def note_commit(self, frames: int) -> None:
        """A commit left ``frames`` frames in the WAL: that is the new position."""
        self.refresh_state()
        self.position = (self._state.generation, frames)

    # --- recovery and generation change (writer thread, writer held) --------------------
    def recover(self, conn: apsw.Connection) -> None:
        """Finish an interrupted generation change; detect checkpoints made by others."""
        fd = self.lock.acquire_exclusive(60.0)
        if fd is None:
            raise ReplicationError("the replication lock stayed busy for 60 s")
        try:
            self.archive.check()
            self.refresh_state()
            self._recover(conn)
        finally:
            self.lock.release(fd)

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
        self.position = (state.generation, self._index.last_commit)

    def end_generation(self, conn: apsw.Connection, *, lock_timeout: float) -> int | None:
        """Archive the generation's frames, checkpoint TRUNCATE, start the next generation.

        Returns the new generation id, the current one when the WAL holds no commit (nothing
        to end), or None when pulls kept the lock busy (retried later).
        """
        fd = self.lock.acquire_exclusive(lock_timeout)
        if fd is None:
            log.info("replication: generation change postponed, pulls in progress")
            return None
        try:
            if self.changed_outside():  # (it also reloads state another process changed)
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
            self.lock.release(fd)

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
        # Persisted before the checkpoint: a crash between the two is finished by recover().
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
        self.position = (new, 0)
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

    @staticmethod
    def _checkpoint_truncate(conn: apsw.Connection) -> None:
        busy, log_frames, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
        if busy:
            raise ReplicationError("checkpoint blocked by readers; the generation continues")
        if log_frames not in (0, -1):
            raise ReplicationError("checkpoint did not empty the WAL; the generation continues")

    # --- state.json, shared with other processes ------------------------------------------
    def _save_state(self, state: GenerationState) -> None:
        self.archive.save_state(state)
        self._state_sig = self._stat_state()

    def _stat_state(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.archive.state_path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh_state(self) -> None:
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
            self.position = (loaded.generation, 0)
        self._state = loaded

    def _db_stat(self) -> tuple[int, int]:
        st = os.stat(self.db_path)
        return (st.st_size, st.st_mtime_ns)

    def _record_salts(self) -> None:
        header = self._index.header
        if header is not None and self._state.salts is None:
            self._state.salts = header.salts
            self._save_state(self._state)

    # --- the live WAL (any thread) ---------------------------------------------------------
    def scan_ahead(self) -> None:
        """Checksum new frames now, off a pull's path: the next pull then only reads them.

        Gives up at once when a generation change holds the lock (the next pull scans).
        """
        try:
            with self.lock.shared(timeout=0.05), self._scan_lock:
                if not self._index.refresh():
                    self._restart_seen = True
                self._record_salts()
        except ReplicationError:
            pass  # a generation change holds the lock; the next pull scans instead
        except OSError:
            log.debug("replication: background WAL scan failed", exc_info=True)

    def cut_live(self, start: int, end: int) -> tuple[int | None, int]:
        """``(last, known)``: the last commit frame of the live WAL in ``start..end-1`` (None
        when there is none) and the last commit frame the WAL holds."""
        with self._scan_lock:
            self._index.refresh()
            self._record_salts()
            commits = self._index.commits
            last = cut_at_commit(commits, start, end)
            known = commits[-1] if commits else 0
        return last, known

    def read_live(self, generation: int, start: int, end: int) -> bytes | None:
        """Frames of ``generation`` from the WAL; None once it is no longer the live one."""
        with self.lock.shared():
            self.refresh_state()
            if self._state.generation != generation:
                return None
            if self.changed_outside():
                raise ReplicationError(
                    "the database was checkpointed outside edgestore while frames were sent"
                )
            return self._index.read_frames(start, end)

    def wal_bytes(self) -> int:
        return self.wal_path.stat().st_size if self.wal_path.exists() else 0

    # --- checkpoints made by other programs -------------------------------------------------
    def check_db_unchanged(self) -> None:
        """Raise if the database file changed since the generation began (a generation start
        must not be exported torn)."""
        if self._state.db_stat is not None and self._state.db_stat != self._db_stat():
            raise ReplicationError(
                "the database file changed outside edgestore during this generation "
                "(another program checkpointed it); a new generation begins: retry"
            )

    def changed_outside(self) -> bool:
        """Did another program checkpoint the database or restart the WAL mid-generation?"""
        self.refresh_state()
        state = self._state
        with self._scan_lock:
            if not self._index.refresh() or self._restart_seen:
                return True
            header = self._index.header
        if state.salts is not None and header is not None and header.salts != state.salts:
            return True
        return state.db_stat is not None and state.db_stat != self._db_stat()

    def adopt_outside_change(self) -> None:
        """Start a new generation from what is on disk now, without checkpointing.

        A WAL restarts only after a complete checkpoint, so the database file now holds every
        frame of the old generation and the WAL continues from it: (file, WAL) is a valid
        generation start. The old generation's unread frames are gone: replicas inside it are
        told to re-bootstrap (its tombstone says "lost"), never fed a mismatched WAL.
        """
        fd = self.lock.acquire_exclusive(30.0)
        if fd is None:
            return
        try:
            self.refresh_state()
            if not self.changed_outside():
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
            self.position = (new.generation, last)
        finally:
            self.lock.release(fd)
