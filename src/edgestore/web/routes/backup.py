"""``POST /api/v1/admin/backup``: a copy of the database into the ``backup_dir`` setting."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from ...auth import Role
from ...storage.backup import backup
from ..errors import OK, responses
from ..state import ROLE_OPT, AppState

__all__ = ["BackupOut", "BackupRequest", "route_handlers"]


class BackupRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    """A plain file name inside backup_dir (default: ``<db name>-<UTC time>.db``)."""


class BackupOut(msgspec.Struct):
    path: str
    bytes: int


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    @post(
        "/api/v1/admin/backup",
        status_code=OK,
        opt={ROLE_OPT: Role.ADMIN},
        tags=["ops"],
        summary="Write a copy of the database into backup_dir (the admin's VACUUM INTO)",
        responses=responses(),
    )
    async def take_backup(data: JSONBody[BackupRequest]) -> BackupOut:
        path = await backup(state.store, data.name)
        return BackupOut(path=str(path), bytes=path.stat().st_size)

    return [take_backup]
