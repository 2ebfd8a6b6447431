"""The error mapper: every edgestore error has a status and the one JSON shape."""

from __future__ import annotations

import inspect

import pytest

from edgestore import errors
from edgestore.web.errors import error_body, status_for

# Errors that only a misconfigured or broken server raises: a 5xx is honest for them.
SERVER_SIDE = {
    "EdgestoreError",
    "ConfigError",
    "SchemaError",
    "MigrationError",
    "SourceError",
    "SnapshotError",
    "ValidationFailed",
    "MissingExtraError",
    "StorageFault",
}
UNAVAILABLE = {"OverloadedError", "PoolTimeout", "StoreClosedError", "DatabaseBusyError"}

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.EdgestoreError)
]


def make(cls: type[errors.EdgestoreError]) -> errors.EdgestoreError:
    if cls is errors.MissingExtraError:
        return cls("feature", "extra")
    try:
        return cls("something went wrong")
    except TypeError:  # errors whose message is fixed take no argument
        return cls()  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_is_mapped(cls: type[errors.EdgestoreError]) -> None:
    exc = make(cls)
    status = status_for(exc)
    body = error_body(exc)
    assert set(body["error"]) == {"type", "message", "code"}
    assert body["error"]["type"] == cls.__name__
    assert body["error"]["message"] == exc.detail
    if cls.__name__ in UNAVAILABLE or cls.__name__.startswith("Replica"):
        assert status == 503
    elif cls.__name__ in SERVER_SIDE:
        assert status >= 500
    else:
        assert 400 <= status < 500 or issubclass(cls, errors.ReplicationError), (cls, status)


def test_specific_statuses() -> None:
    assert status_for(errors.AuthError("x")) == 401
    assert status_for(errors.PermissionDenied("x")) == 403
    assert status_for(errors.NotFoundError("x")) == 404
    assert status_for(errors.ValueTooLarge("x")) == 413
    assert status_for(errors.ConstraintViolation("x")) == 400
    assert status_for(errors.SQLSyntaxError("x")) == 400
    db = errors.DatabaseError("x", code="SQLITE_CONSTRAINT_CHECK")
    assert error_body(db)["error"]["code"] == "SQLITE_CONSTRAINT_CHECK"
    assert status_for(ValueError("boom")) == 500
    assert error_body(ValueError("secret internals"))["error"]["message"] == "internal error"
