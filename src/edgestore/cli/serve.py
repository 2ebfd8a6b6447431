"""``edgestore serve``: run the HTTP service under granian.

granian over uvicorn by measurement (``bench/bench_http_servers.py``): on this 2-core machine
it serves a trivial Litestar route at well over 1.5x uvicorn's rate, and it shuts down
gracefully: on SIGTERM/SIGINT it stops accepting, lets in-flight requests finish, then runs the
ASGI lifespan shutdown, where the store finishes queued writes and checkpoints the WAL.

Workers are separate processes that build the app themselves (``create_app`` as a factory);
the resolved options reach them as ``EDGESTORE_*`` environment variables, which
``Settings.load`` reads, so every process sees exactly the settings validated here.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..config import ENV_PREFIX, Settings, is_loopback_host, serves_publicly_without_auth
from ..errors import ConfigError
from .options import config_option, create_dirs_option, db_option
from .preflight import ServeLock, check_database_dir, check_port_free, check_schemas_dir

__all__ = ["is_loopback", "serve"]

is_loopback = is_loopback_host


def _env_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _log_config(access_log: bool) -> dict[str, Any]:
    from granian.log import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["stderr"] = {
        "formatter": "generic",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["edgestore"] = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    # Access lines are JSON already (edgestore.web.metrics): printed as they are, to stdout.
    config["loggers"]["edgestore.access"] = {
        "handlers": ["access"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    return config


@click.command()
@click.option(
    "--host", help="Address to bind (default 127.0.0.1; see --allow-public-without-auth)."
)
@click.option("--port", type=int, help="Port to bind (default 8080; 0 picks a free port).")
@db_option(help="SQLite database file (default ./edgestore.db).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@config_option()
@click.option(
    "--schemas",
    "schemas_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of NNNN_name.sql schema files to apply at startup.",
)
@click.option("--replica-of", help="URL of a primary to follow as a read replica.")
@click.option(
    "--sync-interval",
    type=float,
    help="Seconds between pulls from the primary on a replica (default 1).",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="One JSON line per request on stdout (default on).",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    help="Seconds to finish in-flight work on SIGTERM before killing workers.",
)
@create_dirs_option()
@click.option(
    "--allow-public-without-auth",
    is_flag=True,
    default=None,
    help="DANGEROUS: bind a non-loopback address with no auth configured (anyone can "
    "read, write and run ops actions).",
)
def serve(
    host: str | None,
    port: int | None,
    db_path: Path | None,
    workers: int | None,
    config_file: Path | None,
    schemas_dir: Path | None,
    replica_of: str | None,
    sync_interval: float | None,
    access_log: bool | None,
    shutdown_timeout: float | None,
    create_dirs: bool | None,
    allow_public_without_auth: bool | None,
) -> None:
    """Serve the database over HTTP (JSON API, libSQL protocol, dashboard)."""
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "db_path": db_path,
        "workers": workers,
        "schemas_dir": schemas_dir,
        "replica_of": replica_of,
        "sync_interval": sync_interval,
        "access_log": access_log,
        "shutdown_timeout": shutdown_timeout,
        "create_dirs": create_dirs,
        "allow_public_without_auth": allow_public_without_auth,
    }
    try:
        settings = Settings.load(config_file=config_file, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    # The rules (workers vs replication, public bind without auth) are Settings validation,
    # shared with create_app and the plugin; only the loud warning is the CLI's own.
    if serves_publicly_without_auth(settings):
        click.secho(
            f"WARNING: serving {settings.host}:{settings.port} WITHOUT AUTHENTICATION. Anyone "
            "who can reach it can read, write and delete all data.",
            fg="red",
            bold=True,
            err=True,
        )

    # Hand the resolved options to the worker processes (they call Settings.load()).
    if config_file is not None:
        os.environ[ENV_PREFIX + "CONFIG"] = str(config_file.resolve())
    for name, value in overrides.items():
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = _env_value(value)
    _run(settings)


def _run(settings: Settings) -> None:
    check_schemas_dir(settings)
    check_database_dir(settings)
    with ServeLock(settings.db_path):
        check_port_free(settings.host, settings.port)
        _serve(settings)


def _serve(settings: Settings) -> None:
    from .server_runner import event_loop_name, run

    click.echo(
        f"edgestore serving {settings.db_path} on http://{settings.host}:{settings.port} "
        f"(dashboard /dashboard, OpenAPI /schema; event loop "
        f"{event_loop_name(settings.event_loop)})",
        err=True,
    )
    sys.stderr.flush()
    run(settings, _log_config(settings.access_log))
