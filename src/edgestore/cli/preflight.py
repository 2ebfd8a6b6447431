"""Checks ``edgestore serve`` and ``edgestore sql`` make before they touch anything.

Each failure is one line naming the path or port and what to do, printed before the server
says it is serving:

- the database's directory exists (created only with ``--create-dirs``) and is writable: WAL
  mode keeps ``<db>-wal`` and ``<db>-shm`` next to the database file;
- an explicitly configured schemas directory exists;
- the port is free: granian binds with SO_REUSEPORT, so a second server on a busy port would
  start and the kernel would split connections between the two;
- no other ``edgestore serve`` serves the same database file (:class:`ServeLock`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path
from types import TracebackType

import click

from ..config import Settings
from ..storage.schema import DEFAULT_SCHEMAS_DIR

__all__ = ["ServeLock", "check_database_dir", "check_port_free", "check_schemas_dir"]


def check_database_dir(settings: Settings) -> None:
    """The database's directory exists (or is created when ``create_dirs``) and is writable."""
    directory = settings.db_path.parent
    if not directory.exists():
        if not settings.create_dirs:
            raise click.ClickException(
                f"directory {str(directory)!r} of the database {str(settings.db_path)!r} does "
                "not exist; create it, or pass --create-dirs to have it created"
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(
                f"cannot create directory {str(directory)!r}: {exc.strerror}"
            ) from exc
    if not directory.is_dir():
        raise click.ClickException(
            f"{str(directory)!r} (the directory of the database) is not a directory"
        )
    try:
        # A real file creation: os.access() says yes to root on a read-only mount.
        with tempfile.TemporaryFile(dir=directory, prefix=".edgestore-probe-"):
            pass
    except OSError as exc:
        raise click.ClickException(
            f"directory {str(directory)!r} is not writable ({exc.strerror}): SQLite's WAL mode "
            f"needs a writable directory for {settings.db_path.name}-wal and "
            f"{settings.db_path.name}-shm next to the database"
        ) from exc


def check_schemas_dir(settings: Settings) -> None:
    """An explicitly configured schemas directory exists (the default only if present)."""
    directory = settings.schemas_dir
    if directory is None or directory.is_dir() or directory == DEFAULT_SCHEMAS_DIR:
        return
    raise click.ClickException(f"schemas directory {str(directory)!r} does not exist")


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` without SO_REUSEPORT: fails while any other socket listens there."""
    if port == 0:
        return  # the kernel picks a free one
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot resolve {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR only skips connections of a previous server in TIME_WAIT; Linux still
        # refuses the bind while a listening socket holds the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use; stop the other server or "
                    "choose another --port"
                ) from exc
            raise click.ClickException(f"cannot bind {host}:{port}: {exc.strerror}") from exc


class ServeLock:
    """An exclusive ``flock`` on ``<db>.lock`` held for the life of the serving process.

    The file holds the holder's pid, so a second server can name it. The lock belongs to the
    open file description: forked granian workers share it, and it is released when the last
    process holding it exits, however it exits.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> ServeLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process"
                raise click.ClickException(
                    f"database {str(self.path.with_suffix(''))!r} is already being served by "
                    f"{who} (lock file {str(self.path)!r}); stop it first, or serve another "
                    "file"
                ) from None
            # A holder that was exiting may have unlinked the file after we opened it: lock
            # the file that is at the path now, not an orphaned inode.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still locked, so no one else can be holding it
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ServeLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
