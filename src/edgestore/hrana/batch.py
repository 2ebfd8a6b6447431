"""Batches: validating steps and evaluating their conditions.

A step runs when its condition (if any) holds. ``ok(i)`` is true when step ``i`` ran and
succeeded, ``error(i)`` when it ran and failed; for a skipped step both are false.
``is_autocommit`` (Hrana 3) reads the stream's state at the moment it is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ProtocolError

__all__ = ["StepOutcome", "check_batch", "evaluate"]

# Per step: None = not run (skipped or not yet reached), True = succeeded, False = failed.
StepOutcome = bool | None

_MAX_DEPTH = 64


def check_batch(batch: Any) -> list[Mapping[str, Any]]:
    """The steps of a Batch after checking its shape; ProtocolError before anything runs."""
    if not isinstance(batch, Mapping):
        raise ProtocolError("batch must be an object")
    steps = batch.get("steps")
    if not isinstance(steps, list):
        raise ProtocolError("batch.steps must be an array")
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or not isinstance(step.get("stmt"), Mapping):
            raise ProtocolError(f"batch step {index} needs a stmt object")
        cond = step.get("condition")
        if cond is not None:
            _check_cond(cond, index, 0)
    return steps


def _check_cond(cond: Any, index: int, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ProtocolError("batch condition nested too deeply")
    if not isinstance(cond, Mapping):
        raise ProtocolError(f"condition of step {index} must be an object")
    kind = cond.get("type")
    if kind in ("ok", "error"):
        step = cond.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < index:
            raise ProtocolError(
                f"condition of step {index} refers to step {step!r}; only earlier steps can be used"
            )
    elif kind == "not":
        _check_cond(cond.get("cond"), index, depth + 1)
    elif kind in ("and", "or"):
        conds = cond.get("conds")
        if not isinstance(conds, list):
            raise ProtocolError(f"{kind} condition of step {index} needs a conds array")
        for sub in conds:
            _check_cond(sub, index, depth + 1)
    elif kind != "is_autocommit":
        raise ProtocolError(f"unknown condition type {kind!r} in step {index}")


def evaluate(
    cond: Mapping[str, Any] | None, outcomes: Sequence[StepOutcome], autocommit: bool
) -> bool:
    """Whether a step with condition ``cond`` runs (the batch was checked beforehand)."""
    if cond is None:
        return True
    kind = cond["type"]
    if kind == "ok":
        return outcomes[cond["step"]] is True
    if kind == "error":
        return outcomes[cond["step"]] is False
    if kind == "not":
        return not evaluate(cond["cond"], outcomes, autocommit)
    if kind == "and":
        return all(evaluate(c, outcomes, autocommit) for c in cond["conds"])
    if kind == "or":
        return any(evaluate(c, outcomes, autocommit) for c in cond["conds"])
    return autocommit
