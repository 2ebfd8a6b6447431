"""``edgestore replication``: generations of a primary, on demand.

``checkpoint`` ends the current generation (archive its frames, checkpoint, next id): through
the running server (``POST /replication/checkpoint``, admin role) by default, or directly on
the file with ``--offline`` when no server has it open. ``status`` prints the position.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
import httpx

from ..config import Settings
from ..errors import ConfigError, EdgestoreError
from .options import config_option, db_option

__all__ = ["replication"]


def _url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.host}:{settings.port}").rstrip("/")


def _call(method: str, url: str, token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.request(method, url, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"{url}: {exc}") from exc
    if resp.is_error:
        raise click.ClickException(f"{url}: HTTP {resp.status_code}: {resp.text}")
    try:
        data: dict[str, Any] = resp.json()
    except ValueError as exc:
        raise click.ClickException(f"{url}: not a JSON answer: {resp.text[:200]}") from exc
    return data


def _settings(config_file: Path | None, db_path: Path | None) -> Settings:
    try:
        return Settings.load(config_file=config_file, db_path=db_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def replication() -> None:
    """Generations of the WAL served to libSQL replicas."""


_url_option = click.option("--url", help="Server URL (default http://<host>:<port> of settings).")
_token_option = click.option(
    "--token", envvar="EDGESTORE_ADMIN_TOKEN", help="Admin bearer token ($EDGESTORE_ADMIN_TOKEN)."
)


@replication.command()
@_url_option
@_token_option
@config_option()
@db_option()
@click.option("--offline", is_flag=True, help="Work on the file directly (no server running).")
def checkpoint(
    url: str | None,
    token: str | None,
    config_file: Path | None,
    db_path: Path | None,
    offline: bool,
) -> None:
    """End the current generation now and print the new one."""
    settings = _settings(config_file, db_path)
    if not offline:
        out = _call("POST", _url(settings, url) + "/replication/checkpoint", token)
        click.echo(json.dumps(out))
        return
    try:
        generation, position = asyncio.run(_offline_checkpoint(settings))
    except EdgestoreError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(json.dumps({"generation": generation, "position": position}))


async def _offline_checkpoint(settings: Settings) -> tuple[int, str]:
    from ..errors import InvalidRequest
    from ..opening import open as open_node
    from ..replication import ReplicationPrimary, format_position

    store = await open_node(
        settings=settings.replace(schemas_dir=None, replication=True), serve_replicas=True
    )
    try:
        primary = ReplicationPrimary.of(store)
        if primary is None:  # replica_of is set: a replica's WAL belongs to libsql
            raise InvalidRequest("this node is a replica; checkpoint its primary instead")
        generation = await primary.checkpoint()
        return generation, format_position(primary.position())
    finally:
        await store.close()


@replication.command()
@_url_option
@_token_option
@config_option()
def status(url: str | None, token: str | None, config_file: Path | None) -> None:
    """Print the server's generation, position, WAL size and archived generations."""
    settings = _settings(config_file, None)
    click.echo(json.dumps(_call("GET", _url(settings, url) + "/replication", token)))
