"""deploy/: every edgestore command and flag the files use exists; the env file is valid."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest

from edgestore.cli.main import main as cli
from edgestore.config import ENV_PREFIX, FIELD_NAMES, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def command_lines() -> list[tuple[str, list[str]]]:
    """(file, argv after `edgestore`) for every edgestore invocation in deploy/."""
    found: list[tuple[str, list[str]]] = []
    container = (DEPLOY / "Containerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", container, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", container, re.M).group(1))  # type: ignore[union-attr]
    argv = entry + cmd
    found.append(("Containerfile", argv[argv.index("edgestore") + 1 :]))
    for path in DEPLOY.iterdir():
        for line in path.read_text().splitlines():
            stripped = line.strip().lstrip("#").strip()
            for match in re.finditer(
                r"(?:^|[\s/=])edgestore ((?:serve|token|schema|sql|migrate|"
                r"replication|version)\b[^;&|]*)",
                stripped,
            ):
                words = shlex.split(match.group(1))
                found.append((path.name, words))
    return found


def check(argv: list[str]) -> None:
    ctx = click.Context(cli)
    command: click.Command | None = cli
    while isinstance(command, click.Group):
        assert argv, "a group needs a subcommand"
        name = argv.pop(0)
        command = command.get_command(ctx, name)
        assert command is not None, f"no such command: {name}"
    assert command is not None
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in argv:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"{command.name}: no option {word}"


def test_deploy_files_exist() -> None:
    for name in ("Containerfile", "edgestore.service", "edgestore.env", "nginx.conf"):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize(("where", "argv"), command_lines(), ids=lambda v: str(v)[:40])
def test_every_command_and_flag_exists(where: str, argv: list[str]) -> None:
    check(list(argv))


def test_commands_were_found() -> None:
    files = {where for where, _ in command_lines()}
    assert {"Containerfile", "edgestore.service"} <= files


def test_env_files_name_real_settings() -> None:
    env: dict[str, str] = {}
    texts = [(DEPLOY / "edgestore.env").read_text(), (DEPLOY / "Containerfile").read_text()]
    for text in texts:
        for name, value in re.findall(r"(EDGESTORE_[A-Z_]+)=(\S+)", text):
            field = name.removeprefix(ENV_PREFIX).lower()
            assert field in FIELD_NAMES or field == "config", name
            env[name] = value
    env.pop("EDGESTORE_CONFIG", None)
    Settings.load(environ=env)  # the example values validate
