"""Every configuration rule is Settings validation: the library, ``create_app``/the plugin and
``edgestore serve`` refuse the same settings with the same message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgestore.auth import generate_keypair, hash_token
from edgestore.cli import serve as serve_module
from edgestore.cli.main import main as cli
from edgestore.config import Settings
from edgestore.errors import ConfigError
from edgestore.web import EdgestoreConfig, EdgestorePlugin, create_app

# (name, environment that breaks a rule, the words its message must hold)
REFUSED: list[tuple[str, dict[str, str], str]] = [
    ("workers_with_replication", {"EDGESTORE_WORKERS": "2"}, "replication"),
    (
        "workers_with_replica_of",
        {
            "EDGESTORE_WORKERS": "3",
            "EDGESTORE_REPLICATION": "false",
            "EDGESTORE_REPLICA_OF": "http://primary:8080",
        },
        "replica_of",
    ),
    ("public_bind_without_auth", {"EDGESTORE_HOST": "0.0.0.0"}, "refusing to bind 0.0.0.0"),
    ("public_ipv6_bind_without_auth", {"EDGESTORE_HOST": "::"}, "refusing to bind ::"),
    ("bad_jwt_key", {"EDGESTORE_JWT_PUBLIC_KEY": "not a key"}, "jwt_public_key"),
    ("empty_host", {"EDGESTORE_HOST": " "}, "host"),
    ("zero_wal_threshold", {"EDGESTORE_REPLICATION_WAL_THRESHOLD_BYTES": "0"}, "wal_threshold"),
    ("negative_retention", {"EDGESTORE_REPLICATION_RETENTION_SECONDS": "-1"}, "retention"),
    ("zero_lag", {"EDGESTORE_MAX_REPLICATION_LAG": "0"}, "max_replication_lag"),
    ("zero_query_cache_ttl", {"EDGESTORE_QUERY_CACHE_TTL": "0"}, "query_cache_ttl"),
]

ALLOWED: list[tuple[str, dict[str, str]]] = [
    ("workers_without_replication", {"EDGESTORE_WORKERS": "2", "EDGESTORE_REPLICATION": "false"}),
    (
        "public_bind_with_override",
        {"EDGESTORE_HOST": "0.0.0.0", "EDGESTORE_ALLOW_PUBLIC_WITHOUT_AUTH": "true"},
    ),
    (
        "public_bind_with_tokens",
        {"EDGESTORE_HOST": "10.1.2.3", "EDGESTORE_AUTH_TOKENS": f"rw:{hash_token('t')}"},
    ),
    ("public_bind_with_jwt", {"EDGESTORE_HOST": "0.0.0.0"}),  # key added below
    ("loopback_names", {"EDGESTORE_HOST": "localhost"}),
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A clean EDGESTORE_* environment (``serve`` exports its options into os.environ)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("EDGESTORE_"):
            monkeypatch.delenv(name)
    base = {"EDGESTORE_DB_PATH": str(tmp_path / "rules.db"), "EDGESTORE_SCHEMAS_DIR": ""}
    yield base
    os.environ.clear()
    os.environ.update(saved)


def _settings_message(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ=environ)
    return str(info.value)


@pytest.mark.parametrize(("name", "broken", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_settings_create_app_plugin_and_cli_refuse_alike(
    name: str,
    broken: dict[str, str],
    words: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {**env, **broken}
    message = _settings_message(environ)
    assert words in message

    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as app_error:
        create_app()
    assert str(app_error.value) == message
    with pytest.raises(ConfigError) as plugin_error:
        EdgestorePlugin(EdgestoreConfig())
    assert str(plugin_error.value) == message

    runs: list[Settings] = []
    monkeypatch.setattr(serve_module, "_run", runs.append)
    out = CliRunner().invoke(cli, ["serve"])
    assert out.exit_code != 0
    assert f"Error: {message}" in out.output
    assert "Traceback" not in out.output
    assert runs == []


@pytest.mark.parametrize(("name", "fine"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_settings_create_app_and_cli_accept_alike(
    name: str, fine: dict[str, str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {**env, **fine}
    if name == "public_bind_with_jwt":
        environ["EDGESTORE_JWT_PUBLIC_KEY"] = generate_keypair()[1]
    settings = Settings.load(environ=environ)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert create_app().state["edgestore"].settings == settings

    runs: list[Settings] = []
    monkeypatch.setattr(serve_module, "_run", runs.append)
    out = CliRunner().invoke(cli, ["serve"])
    assert out.exit_code == 0, out.output
    assert runs == [settings]
    # Only the override is loud.
    assert ("WITHOUT AUTHENTICATION" in out.output) == (name == "public_bind_with_override")


def test_replace_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="refusing to bind"):
        Settings().replace(host="192.168.1.2")
    with pytest.raises(ConfigError, match="replication"):
        Settings().replace(workers=4)
    assert Settings().replace(workers=4, replication=False).workers == 4
