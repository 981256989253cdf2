"""Schema fuzzing of both live services with schemathesis.

Every operation of each ``/openapi.json`` gets generated requests (bounded in the CI profile,
``FUZZ_PROFILE=long`` for ``make fuzz``). Storage keys are steered towards real files half the
time so that fuzzed parameters reach real FITS reading. Pass: no 5xx that is not documented,
responses match their documented status codes, content types and schemas.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, load_all_checks

from tests.hardening.conftest import GOOD_KEYS
from tests.support.live_server import LiveServer

PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 12, "long": 250}.get(PROFILE, 12)
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
KEY_FIELDS = ("file_path", "file_paths")

pytestmark = pytest.mark.timeout(900)


def _checks() -> tuple[list[Any], list[Any]]:
    """``(checks, excluded)``: the conformance checks we run, and every other check."""
    load_all_checks()
    every = CHECKS.get_all()
    return ([c for c in every if c.__name__ in CHECK_NAMES], [c for c in every if c.__name__ not in CHECK_NAMES])


def _steer(value: Any, seed: int) -> Any:
    """Point storage-key fields at real files for about half of the generated cases."""
    if not isinstance(value, dict):
        return value
    if seed % 2:
        return value
    for field in KEY_FIELDS:
        if field in value and isinstance(value[field], str):
            value[field] = GOOD_KEYS[seed % len(GOOD_KEYS)]
        elif field in value and isinstance(value[field], list):
            value[field] = GOOD_KEYS[:2]
    for item in value.get("files", []) if isinstance(value.get("files"), list) else []:
        if isinstance(item, dict) and "file_path" in item:
            item["file_path"] = GOOD_KEYS[seed % 2]
    return value


def _operations(module: str) -> list[Any]:
    """Operations of an app's schema, built from the app object (no server needed to collect)."""
    import importlib

    app = importlib.import_module(module).app
    # 502/503/504 are documented answers (MAST down, worker busy or crashed); 500 never is.
    config = schemathesis.Config.from_dict(
        {"checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", "502", "503", "504"]}}}
    )
    schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, server: LiveServer) -> None:
    strategy = operation.as_strategy()
    checks, excluded = _checks()

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        for part in ("query", "body"):
            value = getattr(case, part, None)
            if value is not None:
                setattr(case, part, _steer(value, zlib.crc32(repr(value).encode())))
        response = case.call(base_url=server.url, timeout=30)
        assert response.status_code != 500, f"500 from {case.method} {case.formatted_path}: {response.text[:300]}"
        case.validate_response(response, checks=checks, excluded_checks=excluded)

    run()


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
ENGINE_OPS = _operations("main")
PROXY_OPS = _operations("main_mast")


@pytest.mark.fuzz
@pytest.mark.parametrize("operation", ENGINE_OPS, ids=[op.label for op in ENGINE_OPS])
def test_engine_schema_fuzz(operation: Any, engine_server: LiveServer) -> None:
    _fuzz(operation, engine_server)


@pytest.mark.fuzz
@pytest.mark.parametrize("operation", PROXY_OPS, ids=[op.label for op in PROXY_OPS])
def test_proxy_schema_fuzz(operation: Any, proxy_server: LiveServer) -> None:
    _fuzz(operation, proxy_server)
