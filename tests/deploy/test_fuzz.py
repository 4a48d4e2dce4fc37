"""Schemathesis fuzzes the server's OpenAPI spec, valid and invalid bodies: never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.deploy.conftest import API_KEY, Server

EXAMPLES = 40  # per operation and mode: bounded, so the suite stays fast


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_a_server_error(server: Server, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode == GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to get wrong in a GET without parameters

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=30)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text}"

        check()
    assert sum(seen.values()) >= 20
    if mode == GenerationMode.POSITIVE:
        assert seen.get(200, 0) > 0  # valid requests got answers, not only refusals
    else:
        assert all(400 <= code < 500 for code in seen)  # invalid input: refused, never a crash
