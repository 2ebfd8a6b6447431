"""PRAGMA foreign_keys / defer_foreign_keys for one session, as the libSQL server has them.

On the libSQL server every stream owns a connection, so ``PRAGMA foreign_keys = OFF`` lasts
for the stream. Here connections are pooled: the session remembers what it set, applies it to
each connection it takes (a pinned transaction, or the writer held for one statement) and the
pinning code restores the server's default (``policy.FK_DEFAULTS``) before the connection goes
back to the pool. SQLite's own rules still hold: ``foreign_keys`` is a no-op inside a
transaction, and ``defer_foreign_keys`` is cleared when the next statement or transaction ends.
"""

from __future__ import annotations

import apsw

from .analysis import Analysis
from .policy import FK_DEFAULTS
from .results import Column, Result

__all__ = ["SessionSettings", "apply_settings", "restore_defaults"]


def apply_settings(db: apsw.Connection, settings: dict[str, bool]) -> None:
    """Set the session's PRAGMAs on ``db`` (before its transaction begins)."""
    for name, value in settings.items():
        db.execute(f"PRAGMA {name} = {'ON' if value else 'OFF'}")


def restore_defaults(db: apsw.Connection) -> None:
    """Put the server's values back on ``db`` (outside any transaction)."""
    apply_settings(db, FK_DEFAULTS)


class SessionSettings:
    """The session PRAGMAs a session set to something other than the server's default."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.values)

    def set(self, analysis: Analysis) -> Result:
        """Remember a ``setting`` statement run outside a transaction."""
        assert analysis.setting is not None
        name, value = analysis.setting
        if value is None or value == FK_DEFAULTS[name]:
            self.values.pop(name, None)
        else:
            self.values[name] = value
        return Result()

    def read(self, analysis: Analysis) -> Result | None:
        """The answer to ``PRAGMA foreign_keys`` (read) when this session changed it."""
        if analysis.setting is None or analysis.setting[1] is not None:
            return None
        name = analysis.setting[0]
        if name not in self.values:
            return None
        return Result((Column(name, None),), [(int(self.values[name]),)])

    def taken(self) -> dict[str, bool]:
        """The values to apply to a connection about to run a statement or a transaction;
        a pending ``defer_foreign_keys`` is used up by it, as SQLite clears it then."""
        values = dict(self.values)
        self.values.pop("defer_foreign_keys", None)
        return values

    def statement_ran(self) -> None:
        """A statement ran elsewhere (a reader, group commit): SQLite would have cleared
        ``defer_foreign_keys`` at its end."""
        self.values.pop("defer_foreign_keys", None)
