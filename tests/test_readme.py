"""The README matches the code: every command it lists exists, every setting is documented,
the layout names the import graph's layers and every package."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgestore import Settings
from edgestore.cli import main
from tests import import_graph

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_quick_start_is_exactly_two_commands() -> None:
    block = _section("Quick start").split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines == ["pip install . && edgestore serve", "pip install -e '.[test]' && pytest"]


def test_every_listed_command_exists() -> None:
    commands = re.findall(r"^\| `edgestore ([a-z ]+)` \|", _section("Command line"), re.M)
    assert len(commands) >= 10
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_every_setting_is_documented() -> None:
    table = _section("Configuration")
    documented = set(re.findall(r"^\| `([a-z_]+)` \| `EDGESTORE_[A-Z_]+` \|", table, re.M))
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert documented == fields


def test_tables_example_runs_and_prints_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = _section("The library").split("### Tables\n", 1)[1].split("```python\n", 1)[1]
    code = block.split("```", 1)[0]
    expected = [
        line.split("# ", 1)[1] for line in code.splitlines() if line.lstrip().startswith("print(")
    ]
    monkeypatch.chdir(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines() == expected


def _layout() -> str:
    return _section("Development").split("### Layout\n", 1)[1].split("\n### ", 1)[0]


def test_layout_states_the_layers_of_the_import_graph() -> None:
    line = _layout().split("```text\n", 1)[1].split("\n", 1)[0]
    stated = [frozenset(layer.split(", ")) for layer in line.split(" -> ")]
    # Private modules (``_version``) are left out of the README.
    layers = [frozenset(m for m in layer if not m.startswith("_")) for layer in import_graph.LAYERS]
    assert stated == layers


def test_layout_lists_every_package() -> None:
    packages = _layout().split("one line each:\n", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^- `(\w+)(?:/|\.py)`: ", packages, re.M)
    src = ROOT / "src" / "edgestore"
    present = {
        p.stem
        for p in src.iterdir()
        if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert sorted(listed) == sorted(present)
