"""The README's "The library" examples run as written and print what their comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def library_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[
        text.index("## The library") : text.index("\n## ", text.index("## The library") + 5)
    ]
    # The table model's example ("### Tables") is run by tests/test_readme.py.
    section = section.split("\n### Tables\n", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_library_examples_run(tmp_path: Path) -> None:
    blocks = library_blocks()
    assert len(blocks) == 2
    outputs = []
    for block in blocks:
        proc = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout.splitlines())
    assert outputs[0][:6] == [
        "1 1",
        "[(1, 'apple')]",
        "apple 1",
        "[{'id': 1, 'name': 'apple'}]",
        "[(2,)]",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    ]
    assert outputs[0][6].startswith("TableDeps(reads=frozenset({'items'}), writes=frozenset()")
    assert outputs[1] == ["[(3,)]"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
