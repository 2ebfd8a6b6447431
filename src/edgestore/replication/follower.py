"""A replica node's link to its primary: a ``libsql`` embedded replica, pulled on a schedule.

``libsql`` (extra ``replica``) owns the replica files (``<db>``, ``-wal``, ``-shm``, ``-info``):
it bootstraps from ``/export``, pulls ``/sync`` frames into the local WAL, and records its
position in ``<db>-info``. edgestore reads the same file through read-only SQLite connections
that never checkpoint (see :mod:`.replica_store`), so libsql's WAL numbering stays intact.

All libsql calls run on one dedicated thread: the connection is not shared across threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InvalidRequest, MissingExtraError, ReplicaLagging, ReplicationError
from .forward import HranaForwarder
from .position import Position
from .status import ReplicaStatus

__all__ = ["ReplicaFollower"]

log = logging.getLogger("edgestore.replication")


class ReplicaFollower:
    """Keeps ``settings.db_path`` a libsql embedded replica of ``settings.replica_of``."""

    def __init__(self, settings: Settings) -> None:
        if not settings.replica_of:
            raise ReplicationError("replica_of is not set")
        self.settings = settings
        self.url = settings.replica_of.rstrip("/")
        self.path = Path(settings.db_path).resolve()
        self.info_path = Path(str(self.path) + "-info")
        self.forwarder = HranaForwarder(self.url, settings.auth_token)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgestore-libsql")
        self._conn: Any = None
        self._position: Position = (0, 0)
        self._last_ok: float | None = None  # monotonic time of the last pull that reached the end
        self._last_error: str | None = None
        self._pulls = 0
        self._frames_pulled = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._on_change: list[Callable[[Position, Position], None]] = []
        self._sync_lock = asyncio.Lock()
        self._lock_fd: int | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (bootstrapping from the primary if there are no local files) and pull once."""
        try:
            import libsql  # noqa: F401  (the extra is checked before anything is created)
        except ImportError as exc:
            raise MissingExtraError("a replica node (--replica-of)", "replica") from exc
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_ownership()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._connect)
        except Exception as exc:
            await self.close()
            raise ReplicationError(
                f"cannot open the replica {self.path} of {self.url}: {exc}"
            ) from exc
        self._position = self._read_position()
        with contextlib.suppress(ReplicationError):
            await self.sync()

    def _take_ownership(self) -> None:
        """One follower per replica file: two libsql instances pulling into the same WAL
        would corrupt it (e.g. ``workers > 1`` on a replica node)."""
        fd = os.open(str(self.path) + "-follower.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ReplicationError(
                f"{self.path} is already followed by another process; a replica node runs "
                "with workers = 1"
            ) from None
        self._lock_fd = fd

    def _connect(self) -> None:
        import libsql

        kwargs: dict[str, Any] = {"sync_url": self.url}
        if self.settings.auth_token:
            kwargs["auth_token"] = self.settings.auth_token
        self._conn = libsql.connect(str(self.path), **kwargs)

    def start(self) -> None:
        """Pull every ``sync_interval`` seconds in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            await loop.run_in_executor(self._thread, self._close_conn)
        self._thread.shutdown(wait=True)
        self.forwarder.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        with contextlib.suppress(Exception):
            conn.close()

    async def _run(self) -> None:
        interval = self.settings.sync_interval
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.sync()
            except ReplicationError as exc:
                log.debug("replication: pull failed: %s", exc)
            except Exception:
                log.exception("replication: pull failed")

    # --- pulling --------------------------------------------------------------------------
    def add_change_listener(self, fn: Callable[[Position, Position], None]) -> None:
        """``fn(old, new)`` on the event loop after a pull moved the position."""
        self._on_change.append(fn)

    async def sync(self) -> Position:
        """Pull everything the primary has now; return the new position."""
        async with self._sync_lock:
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            try:
                await loop.run_in_executor(self._thread, self._sync_blocking)
            except Exception as exc:
                self._last_error = str(exc)
                raise ReplicationError(f"pull from {self.url} failed: {exc}") from exc
            self._last_error = None
            self._last_ok = started
            self._pulls += 1
            old, new = self._position, self._read_position()
            if new != old:
                self._position = new
                if new[0] == old[0]:
                    self._frames_pulled += max(0, new[1] - old[1])
                for fn in tuple(self._on_change):
                    try:
                        fn(old, new)
                    except Exception:
                        log.exception("replication: change listener failed")
            return new

    def _sync_blocking(self) -> None:
        if self._conn is None:
            self._connect()
        self._conn.sync()

    def _read_position(self) -> Position:
        try:
            data = json.loads(self.info_path.read_bytes())
            return (int(data["generation"]), int(data["durable_frame_num"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return (0, 0)

    async def checkpoint(self) -> int:
        """Refused: the replica's WAL belongs to libsql (its frames are numbered as the
        primary's); checkpoint the primary instead."""
        raise InvalidRequest("a replica's WAL belongs to libsql; checkpoint the primary instead")

    def position(self) -> Position:
        """(generation, frame) this replica has applied."""
        return self._position

    def wake(self) -> None:
        """Pull now instead of at the next interval."""
        self._wake.set()

    async def wait_for(self, position: Position, bound: float) -> None:
        """Return once this replica has ``position``; pull meanwhile; ReplicaLagging on timeout."""
        if self._position >= position:
            return
        deadline = time.monotonic() + bound
        delay = 0.005
        while True:
            with contextlib.suppress(ReplicationError):
                await self.sync()
            if self._position >= position:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplicaLagging(
                    f"this replica has not reached position {position[0]}.{position[1]} "
                    f"within {bound:g} s (it is at {self._position[0]}.{self._position[1]})"
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)

    # --- lag ------------------------------------------------------------------------------
    def lag_seconds(self) -> float | None:
        """Seconds since the replica was last known to be up to date (None: never)."""
        if self._last_ok is None:
            return None
        return max(0.0, time.monotonic() - self._last_ok)

    def check_fresh(self) -> None:
        """Raise ReplicaLagging when further behind than ``max_replication_lag``."""
        lag = self.lag_seconds()
        bound = self.settings.max_replication_lag
        if lag is None or lag > bound:
            shown = "never synced" if lag is None else f"{lag:.1f} s behind"
            raise ReplicaLagging(
                f"this replica is {shown} (bound {bound:g} s; primary {self.url}"
                f"{': ' + self._last_error if self._last_error else ''}); send "
                "'x-edgestore-accept-stale: true' to read anyway"
            )

    async def status(self) -> ReplicaStatus:
        """For /health/ready: position, lag in seconds and (when the primary says) frames."""
        loop = asyncio.get_running_loop()
        primary = await loop.run_in_executor(None, self.forwarder.primary_position)
        mine = self._position
        frames_behind: int | None = None
        if primary is not None:
            frames_behind = max(0, primary[1] - mine[1]) if primary[0] == mine[0] else None
        lag = self.lag_seconds()
        bound = self.settings.max_replication_lag
        return ReplicaStatus(
            primary=self.url,
            position=f"{mine[0]}.{mine[1]}",
            primary_position=f"{primary[0]}.{primary[1]}" if primary else None,
            lag_frames=frames_behind,
            lag_seconds=None if lag is None else round(lag, 3),
            max_replication_lag=bound,
            pulls=self._pulls,
            last_error=self._last_error,
            ok=lag is not None and lag <= bound,
        )
