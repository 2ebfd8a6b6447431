"""PRAGMA foreign_keys / defer_foreign_keys outside a session: alone, or in an atomic batch.

A statement run on its own (``Store.execute``, ``/api/v1/execute``) has no session for a
setting to last in: setting the server's default is accepted (migration tools send
``PRAGMA foreign_keys = ON`` that way), anything else is refused with a pointer to sessions.
An atomic batch is a short session of its own: the settings before its first other statement
apply to the whole batch (set before its transaction begins, as a client would do on its own
connection); later ones behave as SQLite has them inside a transaction (``foreign_keys`` does
nothing, ``defer_foreign_keys`` lasts until the commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import EdgestoreError, InvalidRequest
from .analysis import Analysis
from .bounds import ByteBudget, row_size
from .policy import FK_DEFAULTS, classify
from .results import Params, Result

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["batch_with_settings", "sets_session_pragma", "setting_alone"]


def setting_alone(analysis: Analysis) -> Result:
    """A session PRAGMA run as a statement of its own."""
    assert analysis.setting is not None
    name, value = analysis.setting
    if value is None or value == FK_DEFAULTS[name]:
        return Result()
    raise InvalidRequest(
        f"PRAGMA {name} = {'ON' if value else 'OFF'} lasts for a session: send it on the same "
        "session or Hrana stream as the statements it is for, or in the same batch"
    )


_TRANSACTION_CONTROL = ("begin", "end", "savepoint", "release", "rollback_to")


def sets_session_pragma(sql: str) -> bool:
    """True for PRAGMA foreign_keys / defer_foreign_keys with a value (nothing prepared)."""
    setting = classify(sql).setting
    return setting is not None and setting[1] is not None


async def batch_with_settings(
    store: Engine, stmts: Sequence[tuple[str, Params]], max_rows: int | None = None
) -> list[Result]:
    """Run an atomic batch on a session, all or nothing, each statement analysed when the
    ones before it have run (a batch holding session PRAGMAs, or one whose statements use
    what earlier ones create). Each result holds at most ``max_rows`` rows; together they
    hold at most ``max_response_bytes`` (ResponseTooLarge, and nothing commits)."""
    from .transaction import Session

    limit = store.settings.max_response_bytes
    # Each statement is bounded as it runs; this budget bounds the batch's results together.
    budget = ByteBudget(limit) if limit else None
    results: list[Result] = []

    def keep(result: Result) -> None:
        if budget is not None:
            budget.spend(sum(row_size(row) for row in result.values))
        results.append(result)

    async with Session(store) as session:
        leading = 0
        while leading < len(stmts) and sets_session_pragma(stmts[leading][0]):
            keep(await session.execute(*stmts[leading], max_rows=max_rows))
            leading += 1
        await session.execute("BEGIN IMMEDIATE")
        for index in range(leading, len(stmts)):
            sql, params = stmts[index]
            try:
                if classify(sql).verb in _TRANSACTION_CONTROL:
                    raise InvalidRequest("transaction statements cannot be part of an atomic batch")
                keep(await session.execute(sql, params, max_rows=max_rows))
            except EdgestoreError as err:
                err.detail = f"statement {index + 1} of the batch failed: {err.detail}"
                err.args = (err.detail,)
                raise
        await session.execute("COMMIT")
    return results
