"""Backups: a consistent copy of the database, written only into the ``backup_dir`` setting.

SQL's ``VACUUM INTO '<path>'`` would let any caller write a copy of the database anywhere
the server can write, so the statement policy refuses it (policy.py); this is the one way to
take a copy, and its target is a plain file name inside the configured directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import apsw

from ..errors import ConfigError, InvalidRequest

if TYPE_CHECKING:
    from .store import Store

__all__ = ["backup"]


def _target(directory: Path | None, stem: str, name: str | None) -> Path:
    if directory is None:
        raise InvalidRequest("backups are off: set the backup_dir setting (EDGESTORE_BACKUP_DIR)")
    directory = directory.resolve()
    if not directory.is_dir():
        raise ConfigError(f"backup_dir {str(directory)!r} is not a directory")
    if name is None:
        name = f"{stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"
    if not name or Path(name).name != name or name.startswith(".") or "\\" in name:
        raise InvalidRequest("a backup name is a plain file name, written inside backup_dir")
    target = directory / name
    if target.exists() or target.is_symlink():
        raise InvalidRequest(f"{name!r} already exists in backup_dir")
    return target


async def backup(store: Store, name: str | None = None) -> Path:
    """Write a copy of ``store``'s database into ``backup_dir`` (as ``name``, or a name with
    the UTC time) and return its path. Writes wait while the copy is made."""
    target = _target(store.settings.backup_dir, store.path.stem, name)

    def copy(db: apsw.Connection) -> None:
        # On the writer: the one connection that may write a file, and a consistent snapshot.
        db.execute("VACUUM INTO ?", (str(target),))

    await store.run_on_writer(copy)
    return target
