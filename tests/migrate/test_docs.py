"""The README's migration section matches the code: every flag code is documented, with the
severity the planner gives it."""

from __future__ import annotations

import re
from pathlib import Path

from edgestore.migrate.plan import SEVERITY
from edgestore.migrate.typemap import FLAG_TEXT

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Migrating from Postgres")
    return text[start : text.index("\n## ", start + 10)]


def test_every_flag_code_is_documented() -> None:
    section = _section()
    missing = [code for code in FLAG_TEXT if f"`{code}`" not in section]
    assert missing == []


def test_documented_severities_match_the_planner() -> None:
    pairs = re.findall(r"`([a-z0-9_]+)` \((info|lossy|risky)[):]", _section())
    assert len(pairs) >= 20
    for code, severity in pairs:
        assert code in FLAG_TEXT, code
        assert SEVERITY.get(code, "info") == severity, code
