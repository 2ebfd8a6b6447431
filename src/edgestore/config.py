"""Settings: the one place that reads ``EDGESTORE_*`` environment variables and config files.

Precedence, highest first: keyword overrides passed in code (or by the CLI), environment
variables ``EDGESTORE_<FIELD>`` (upper-case field name), the TOML config file, defaults.
The TOML file is named by ``config_file=`` or ``EDGESTORE_CONFIG``; its keys are the field
names, at the top level or under an ``[edgestore]`` table.

Settings are frozen and validated once, in ``__post_init__``; a bad value raises
:class:`~edgestore.errors.ConfigError` naming the field and where the value came from.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "EventLoopChoice",
    "MiB",
    "Settings",
    "is_loopback_host",
    "parse_jwt_public_key",
    "serves_publicly_without_auth",
]

MiB = 1024 * 1024
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
ENV_PREFIX = "EDGESTORE_"


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Every knob edgestore has. Build with ``Settings.load(...)`` to read env and files."""

    # --- storage -----------------------------------------------------------------------
    db_path: Path = Path("edgestore.db")
    """The SQLite database file. Created (in WAL mode) when missing."""
    create_dirs: bool = False
    """``edgestore serve`` and ``edgestore sql`` create missing parent directories of
    ``db_path`` (otherwise a missing directory is an error, not silently created)."""
    schemas_dir: Path | None = Path("schemas")
    """Directory of ``NNNN_name.sql`` files applied in order, each once. The default is used
    only if it exists; an explicitly configured directory must exist. ``None``: apply none."""
    backup_dir: Path | None = None
    """Directory that ``edgestore backup`` and ``POST /api/v1/admin/backup`` write copies of
    the database into (SQL's VACUUM INTO is refused). ``None``: backups are off."""
    idle_timeout: float = 60.0
    """Seconds a connection may sit unused before it is closed (0 = never close)."""
    pool_timeout: float = 30.0
    """Seconds to wait for a free connection before raising PoolTimeout."""
    busy_timeout_ms: int = 5000
    """SQLite busy_timeout per connection, for locks held by other processes."""
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """PRAGMA synchronous. NORMAL is durable against process crashes in WAL mode; FULL also
    against power loss, at the cost of an fsync per commit."""
    page_cache_kib: int = 2048
    """Page cache bound per connection, in KiB (PRAGMA cache_size = -N)."""
    max_readers: int = 2
    """Read-only connections next to the single writer (0..2; at most 3 connections)."""
    transaction_timeout: float = 30.0
    """Upper bound in seconds for an explicit transaction holding the writer."""
    group_commit_max: int = 512
    """Most write requests coalesced into one transaction by group commit."""
    inline_budget: int = 2000
    """SQLite VM steps a read may take inline on the event loop before it is handed to a
    pool thread (0 disables the inline fast path)."""
    statement_timeout: float = 10.0
    """Seconds a statement may run before it is interrupted (0 = unbounded)."""

    # --- cache -------------------------------------------------------------------------
    cache_max_bytes: int = 25 * MiB
    """Byte budget shared by the query cache and the key/value cache."""
    cache_compress_threshold: int = 1024
    """Values of at least this many bytes are stored zstd-compressed."""
    cache_compress_level: int = 1
    """zstd level for cached values (low: the cache is on the request path)."""
    cache_dictionary: bool = True
    """Train a zstd dictionary from sampled values so that small values compress too."""
    query_cache: bool = True
    """Cache read results by default (``cache=False`` per call bypasses)."""
    query_cache_ttl: float | None = None
    """Optional TTL for query cache entries; correctness never depends on it."""
    redis_url: str | None = None
    """Second cache tier shared by several nodes (needs the ``redis`` extra)."""

    # --- memory ------------------------------------------------------------------------
    memory_budget_bytes: int | None = None
    """RSS budget; ``None`` takes the cgroup limit, or 512 MiB where there is none."""
    memory_sample_interval: float = 1.0
    """Seconds between RSS samples."""
    statement_stats: bool = False
    """Time every SQL statement for the dashboard's slowest statements and per-table counts
    (costs ~10 us per statement run, so off unless asked for)."""

    # --- HTTP service ------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address ``edgestore serve`` binds to."""
    port: int = 8080
    """Port ``edgestore serve`` binds to."""
    workers: int = 1
    """Server worker processes."""
    event_loop: EventLoopChoice = "auto"
    """Event loop of ``edgestore serve``: ``auto`` takes uvloop where it is installed (it is a
    dependency on Linux and macOS), else asyncio's own."""
    auth_tokens: tuple[str, ...] = ()
    """Accepted bearer tokens as ``role:sha256-hex-of-token`` (roles: ro, rw, admin)."""
    jwt_public_key: str | None = None
    """Ed25519 public key (PEM or base64url raw) that verifies libSQL-style JWTs."""
    allow_public_without_auth: bool = False
    """Permit binding a non-loopback address with no auth configured (loudly)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host header values accepted besides the loopback names (localhost, 127.0.0.1, [::1])
    and the bound address; anything else is refused (421), which stops DNS rebinding. A
    leading dot (``.example.com``) also accepts subdomains."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins (``https://app.example.com``) allowed to send writes and open
    WebSockets besides the server's own; CORS headers are sent for these only (none by
    default). ``*`` allows every origin (then only the bearer token protects the data)."""
    header_read_timeout: float = 5.0
    """Seconds a connection may take to send its request headers before it is closed."""
    body_read_timeout: float = 30.0
    """Seconds a request may wait for the next chunk of its body before it is refused (408)."""
    max_connections: int = 4096
    """Connections one server worker handles at once; more wait in the listen backlog."""
    max_body_bytes: int = 1 * MiB
    """Largest request body accepted."""
    max_rows: int = 10_000
    """Most rows in one response; more are cut and the response says it was truncated."""
    access_log: bool = True
    """Write one structured (JSON) access-log line per HTTP request to stderr."""
    shutdown_timeout: float = 30.0
    """Seconds ``edgestore serve`` waits for in-flight requests and the final checkpoint on
    SIGTERM before it kills its workers."""

    # --- libSQL protocol ---------------------------------------------------------------
    stream_idle_timeout: float = 10.0
    """Seconds an idle Hrana stream lives; its open transaction is rolled back on expiry."""
    max_response_bytes: int = 10 * MiB
    """Most bytes of rows in one result or response (JSON API query/execute/batch, Hrana
    execute/batch/pipeline, tables REST), counted as SQLite produces the rows: a larger one
    fails with RESPONSE_TOO_LARGE (400) before it fills memory. Also the largest single value
    a read may produce. Cursors and streams send any number of rows, a chunk at a time."""

    max_streams_per_caller: int = 256
    """Most Hrana streams (HTTP batons and WebSocket streams together) one caller may have
    open; more are refused with STREAMS_EXHAUSTED. A caller is its token, or its client
    address when it sends none."""
    max_readers_per_caller: int = 1
    """Most readers one caller may hold across requests (open cursors, read transactions);
    another waits for one of the caller's own to end (pool_timeout), so one caller cannot
    hold every reader."""
    max_writers_per_caller: int = 1
    """Most writer transactions one caller may have open or waiting for the writer; another
    waits for one of the caller's own to end (pool_timeout), not in the writer's queue in
    front of every other caller."""

    # --- replication -------------------------------------------------------------------
    replication: bool = True
    """Serve the libSQL sync pull protocol so replicas can follow this database."""
    replication_wal_threshold_bytes: int = 64 * MiB
    """WAL size at which a generation ends with a controlled checkpoint."""
    replication_retention_seconds: float = 24 * 3600.0
    """How long archived generations are kept for replicas that are behind."""
    replication_retention_bytes: int = 1024 * MiB
    """Most bytes of archived generations kept."""
    replica_of: str | None = None
    """URL of the primary this node follows (makes this node a read replica)."""
    sync_interval: float = 1.0
    """Seconds between pulls on a replica node."""
    max_replication_lag: float = 30.0
    """A replica refuses reads with 503 when it is further behind than this many seconds."""
    auth_token: str | None = None
    """Token this node presents to its primary (replica nodes)."""

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from defaults < config file < environment < ``overrides``.

        ``None`` values in ``overrides`` are ignored so a CLI can pass unset options through.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or env.get(ENV_PREFIX + "CONFIG")
        if path:
            values.update(_read_toml(Path(path)))
        hints = _hints()
        for name in hints:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = _coerce(name, raw, hints[name], f"${ENV_PREFIX}{name.upper()}")
        for name, value in overrides.items():
            if name not in hints:
                raise ConfigError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _hints() -> dict[str, Any]:
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(Settings)
    return _HINTS


_HINTS: dict[str, Any] | None = None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    table = data.get("edgestore", data)
    hints = _hints()
    out: dict[str, Any] = {}
    for name, value in table.items():
        if name not in hints:
            raise ConfigError(f"{path}: unknown setting {name!r}")
        out[name] = (
            _coerce(name, value, hints[name], str(path)) if isinstance(value, str) else value
        )
    return out


def _coerce(name: str, raw: str, hint: Any, source: str) -> Any:
    """Turn the text of an env var (or TOML string) into the field's type."""
    args = typing.get_args(hint)
    optional = type(None) in args and (typing.get_origin(hint) in (typing.Union, types.UnionType))
    if optional:
        if raw.strip().lower() in ("", "none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if hint is int:
            return int(raw.replace("_", ""))
        if hint is float:
            return float(raw)
        if hint is Path:
            return Path(raw)
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if origin is Literal:
            if raw not in typing.get_args(hint):
                raise ValueError(f"expected one of {', '.join(typing.get_args(hint))}")
            return raw
        return raw
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {raw!r} for {name}: {exc}") from exc


def parse_jwt_public_key(text: str) -> Ed25519PublicKey:
    """The Ed25519 key of ``jwt_public_key``: PEM text or base64url of the raw 32 bytes (sqld
    accepts both). Parsed here so that a bad key is a Settings error like any other; by hand
    because PyJWT reads PEM, SSH and JWK keys but not sqld's raw base64url form."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError("jwt_public_key is not an Ed25519 key")
            return key
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigError(f"jwt_public_key is not a valid Ed25519 public key: {exc}") from exc


def _validate(s: Settings) -> None:
    def need(ok: bool, field_name: str, why: str) -> None:
        if not ok:
            raise ConfigError(f"invalid setting {field_name}={getattr(s, field_name)!r}: {why}")

    need(s.idle_timeout >= 0, "idle_timeout", "must be >= 0 (0 = never close)")
    need(s.pool_timeout > 0, "pool_timeout", "must be > 0")
    need(s.busy_timeout_ms >= 0, "busy_timeout_ms", "must be >= 0")
    need(s.synchronous in ("NORMAL", "FULL"), "synchronous", "must be NORMAL or FULL")
    need(s.page_cache_kib > 0, "page_cache_kib", "must be > 0")
    need(0 <= s.max_readers <= 2, "max_readers", "must be 0, 1 or 2 (at most 3 connections)")
    need(s.transaction_timeout > 0, "transaction_timeout", "must be > 0")
    need(s.group_commit_max >= 1, "group_commit_max", "must be >= 1")
    need(s.inline_budget >= 0, "inline_budget", "must be >= 0")
    need(s.statement_timeout >= 0, "statement_timeout", "must be >= 0")
    need(s.cache_max_bytes >= 0, "cache_max_bytes", "must be >= 0")
    need(s.cache_compress_threshold >= 0, "cache_compress_threshold", "must be >= 0")
    need(1 <= s.cache_compress_level <= 22, "cache_compress_level", "must be 1..22")
    need(
        s.memory_budget_bytes is None or s.memory_budget_bytes > 0,
        "memory_budget_bytes",
        "must be > 0",
    )
    need(s.memory_sample_interval > 0, "memory_sample_interval", "must be > 0")
    need(0 <= s.port <= 65535, "port", "must be 0..65535")
    need(s.workers >= 1, "workers", "must be >= 1")
    need(s.max_body_bytes > 0, "max_body_bytes", "must be > 0")
    need(s.header_read_timeout > 0, "header_read_timeout", "must be > 0")
    need(s.body_read_timeout > 0, "body_read_timeout", "must be > 0")
    need(s.max_connections >= 1, "max_connections", "must be >= 1")
    for origin in s.allowed_origins:
        need(
            origin == "*" or ("://" in origin and not origin.endswith("/")),
            "allowed_origins",
            "each entry must be scheme://host[:port] (no path, no trailing slash) or *",
        )
    need(s.max_rows > 0, "max_rows", "must be > 0")
    need(s.shutdown_timeout > 0, "shutdown_timeout", "must be > 0")
    need(s.stream_idle_timeout > 0, "stream_idle_timeout", "must be > 0")
    need(s.max_response_bytes > 0, "max_response_bytes", "must be > 0")
    need(s.max_streams_per_caller > 0, "max_streams_per_caller", "must be > 0")
    need(s.max_readers_per_caller > 0, "max_readers_per_caller", "must be > 0")
    need(s.max_writers_per_caller > 0, "max_writers_per_caller", "must be > 0")
    need(s.sync_interval > 0, "sync_interval", "must be > 0")
    need(
        s.query_cache_ttl is None or s.query_cache_ttl > 0,
        "query_cache_ttl",
        "must be > 0 (or unset)",
    )
    need(s.replication_wal_threshold_bytes > 0, "replication_wal_threshold_bytes", "must be > 0")
    need(s.replication_retention_seconds >= 0, "replication_retention_seconds", "must be >= 0")
    need(s.replication_retention_bytes >= 0, "replication_retention_bytes", "must be >= 0")
    need(s.max_replication_lag > 0, "max_replication_lag", "must be > 0")
    need(bool(s.host.strip()), "host", "must not be empty")
    for token in s.auth_tokens:
        role, _, digest = token.partition(":")
        need(
            role in ("ro", "rw", "admin") and len(digest) == 64,
            "auth_tokens",
            "each entry must be 'role:sha256hex' with role ro, rw or admin",
        )
    if s.jwt_public_key:
        parse_jwt_public_key(s.jwt_public_key)
    _validate_deployment(s)


def _validate_deployment(s: Settings) -> None:
    """Rules across fields. They live here, not in the CLI, so that ``Settings``, the Litestar
    plugin (``create_app``) and ``edgestore serve`` refuse the same things with one message."""
    if s.workers > 1 and (s.replication or s.replica_of):
        # Each worker process would run its own replication primary (or follower) on the
        # same files; they would fight over generations and checkpoints.
        raise ConfigError(
            f"workers={s.workers} needs replication off (replication=false, "
            "EDGESTORE_REPLICATION=false) and no replica_of: libSQL replication runs in a "
            "single process"
        )
    auth_configured = bool(s.auth_tokens) or bool(s.jwt_public_key)
    if not auth_configured and not is_loopback_host(s.host) and not s.allow_public_without_auth:
        raise ConfigError(
            f"refusing to bind {s.host}: no auth is configured (set auth_tokens or "
            "jwt_public_key), or bind a loopback address; allow_public_without_auth "
            "(--allow-public-without-auth, EDGESTORE_ALLOW_PUBLIC_WITHOUT_AUTH) overrides this"
        )


def serves_publicly_without_auth(s: Settings) -> bool:
    """True when ``s`` binds a non-loopback address with no auth (allowed only by the
    ``allow_public_without_auth`` override; callers warn loudly)."""
    return not (s.auth_tokens or s.jwt_public_key) and not is_loopback_host(s.host)


_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (a bind address or name) only reaches this machine."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Field order, for docs and the CLI.
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
