from pathlib import Path

import pytest

from edgestore import ConfigError, Settings


def test_defaults_are_valid() -> None:
    s = Settings()
    assert s.idle_timeout == 60.0
    assert s.cache_max_bytes == 25 * 1024 * 1024
    assert s.host == "127.0.0.1"


def test_env_overrides_file_and_overrides_win(tmp_path: Path) -> None:
    cfg = tmp_path / "edgestore.toml"
    cfg.write_text('idle_timeout = 5\nport = 9000\nsynchronous = "FULL"\n')
    env = {"EDGESTORE_PORT": "9100", "EDGESTORE_AUTH_TOKENS": ""}
    s = Settings.load(environ=env, config_file=cfg, max_rows=7, host=None)
    assert s.idle_timeout == 5
    assert s.port == 9100
    assert s.synchronous == "FULL"
    assert s.max_rows == 7
    assert s.host == "127.0.0.1"


def test_config_env_var_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[edgestore]\nmax_readers = 1\n")
    assert Settings.load(environ={"EDGESTORE_CONFIG": str(cfg)}).max_readers == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EDGESTORE_PORT": "eighty"}, "EDGESTORE_PORT"),
        ({"EDGESTORE_MAX_READERS": "5"}, "max_readers"),
        ({"EDGESTORE_SYNCHRONOUS": "OFF"}, "SYNCHRONOUS"),
        ({"EDGESTORE_QUERY_CACHE": "maybe"}, "QUERY_CACHE"),
        ({"EDGESTORE_AUTH_TOKENS": "god:abc"}, "auth_tokens"),
    ],
)
def test_bad_values_name_the_source(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=env)


def test_unknown_keys_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("idle_timout = 3\n")
    with pytest.raises(ConfigError, match="idle_timout"):
        Settings.load(environ={}, config_file=cfg)
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(environ={}, nonsense=1)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(environ={}, config_file=tmp_path / "nope.toml")
