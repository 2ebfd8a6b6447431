"""Generated inputs for every JSON-API operation in the OpenAPI schema: never a 500.

schemathesis reads /schema/openapi.json from a real `edgestore serve` and hypothesis generates
requests (positive and negative: bodies, parameters, paths) for each operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server import EdgestoreServer

# This module's routes (the libSQL and sync routes have their own test suites).
OWN_PATHS = r"^/(api/v1/|health|metrics|dashboard)"
EXAMPLES = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgestoreServer]:
    db: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with EdgestoreServer(db) as running:
        yield running


def operations(server: EdgestoreServer) -> list[Any]:
    schema = schemathesis.openapi.from_url(server.url + "/schema/openapi.json")
    ops = [result.ok() for result in schema.include(path_regex=OWN_PATHS).get_all_operations()]
    assert len(ops) >= 15
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_yields_a_server_error(server: EdgestoreServer, mode: GenerationMode) -> None:
    failures: list[str] = []
    for op in operations(server):

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call(timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200} -> "
                    f"{response.status_code}: {response.text[:200]}"
                )
                return
            try:  # the response is what the schema says: status, content type, body
                case.validate_response(
                    response,
                    checks=[
                        status_code_conformance,
                        content_type_conformance,
                        response_schema_conformance,
                    ],
                )
            except AssertionError as exc:
                failures.append(f"{case.method} {case.formatted_path}: schema mismatch: {exc}")
            if response.status_code >= 400 and case.path.startswith("/api/v1/"):
                body = response.json()
                assert set(body) == {"error"}, response.text
                assert set(body["error"]) == {"type", "message", "code"}, response.text

        try:
            run()
        except Unsatisfiable:
            # No negative input exists for this operation (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
