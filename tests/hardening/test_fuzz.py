"""Schema fuzzing of both live services with schemathesis, with every check it has.

Each operation of each document gets schemathesis's phases (the documented examples, the coverage
phase's boundary values, missing parameters and unsupported methods, then generated positive and
negative requests), bounded in the CI profile and larger with ``FUZZ_PROFILE=long`` (``make
fuzz``). Storage keys are steered to files of the hardening root, good ones and the hostile corpus
(``bad/``), half the time, so fuzzed parameters reach real FITS reading. The proxy also gets a
stateful phase: the documented links chain a job start to its progress, pause, resume, cancel
and dismiss with the returned ``job_id``.

Every built-in check runs. ``positive_data_acceptance`` takes, per operation, the statuses the
document lists for it (a valid request may still name a missing file or a damaged one), except a
bare validation 422. ``ignored_auth`` and ``object_level_authorization`` are included but have
nothing to look at here: these servers run without ``SERVICE_TOKEN``, so no operation declares
security (``tests/hardening/test_service_auth.py`` covers the token). Pass: no 500 at all, no
failed check.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.hardening.conftest import GOOD_KEYS
from tests.support.bad_files import CASES
from tests.support.live_server import LiveServer

PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 5, "long": 100}.get(PROFILE, 5)
STATEFUL_EXAMPLES = {"ci": 8, "long": 120}.get(PROFILE, 8)
STATEFUL_STEPS = {"ci": 6, "long": 12}.get(PROFILE, 6)
#: Keys fuzzed requests are pointed at: good files and every file of the hostile corpus.
KEYS = [*GOOD_KEYS, *(f"bad/{filename}" for filename, _ in CASES.values())]
KEY_FIELDS = ("file_path", "file_paths")
#: Statuses a server may answer whatever the input: MAST down (502), a worker lost (503), a deadline (504).
SERVER_SIDE = ["502", "503", "504"]

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(1800)]
#: Requests sent, by test and status class (printed at the end of the module, shown with -s).
SENT: Counter[tuple[str, str]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for test in sorted({name for name, _ in SENT}):
        by_status = {status: count for (name, status), count in SENT.items() if name == test}
        print(f"fuzz {test}: {sum(by_status.values())} requests {dict(sorted(by_status.items()))}")


def _positive_statuses(operation: dict[str, Any]) -> list[str]:
    """What a schema-valid request may get: the documented statuses, less a validation-only 422."""
    statuses = [status for status in operation["responses"] if status != "422"]
    unprocessable = operation["responses"].get("422", {})
    schema = unprocessable.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/UnprocessableBody"):  # a check of the route's own answers 422
        statuses.append("422")
    return statuses


def _schema(module: str) -> Any:
    """The app's document with the fuzzing configuration (built from the app object: no server needed)."""
    import importlib

    document = importlib.import_module(module).app.openapi()
    operations = [
        {
            "include-operation-id": operation["operationId"],
            "checks": {"positive_data_acceptance": {"expected-statuses": _positive_statuses(operation)}},
        }
        for item in document["paths"].values()
        for operation in item.values()
    ]
    config = schemathesis.Config.from_dict(
        {
            "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", *SERVER_SIDE]}},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            # the documented links only: inferred ones make pause/resume/cancel the entry points (with drawn ids)
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS, "inference": {"algorithms": []}}},
            "operations": operations,
        }
    )
    return schemathesis.openapi.from_dict(document, config=config)


def _steer_value(value: Any, seed: int) -> Any:
    """Point the storage-key fields of a body or query at files of the root, about half of the time."""
    if not isinstance(value, dict) or seed % 2:
        return value
    key = KEYS[(seed // 2) % len(KEYS)]
    for field in KEY_FIELDS:
        if isinstance(value.get(field), str):
            value[field] = key
        elif isinstance(value.get(field), list) and value[field]:
            value[field] = [KEYS[(seed // 2 + i) % len(KEYS)] for i in range(len(value[field]))]
    for group in ("files", "channels"):
        for index, item in enumerate(value.get(group) or [] if isinstance(value.get(group), list) else []):
            if isinstance(item, dict):
                _steer_value(item, seed + 2 * index)
    return value


def steer(case: Any) -> None:
    """Steer ``case``'s query and body towards real files (deterministically, from their contents)."""
    for part in ("query", "body"):
        value = getattr(case, part, None)
        if isinstance(value, dict):
            setattr(case, part, _steer_value(value, zlib.crc32(repr(sorted(value.items(), key=str)).encode())))


def check(case: Any, response: Any, test: str) -> None:
    """No 500 ever, then every check schemathesis has."""
    SENT[(test, f"{response.status_code // 100}xx")] += 1
    assert response.status_code != 500, f"500 from {case.method} {case.formatted_path}: {response.text[:300]}"
    case.validate_response(response)


FUZZ_SETTINGS = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
ENGINE = _schema("main")
PROXY = _schema("main_mast")


@ENGINE.parametrize()
@FUZZ_SETTINGS
def test_engine_schema_fuzz(case: Any, engine_server: LiveServer) -> None:
    steer(case)
    check(case, case.call(base_url=engine_server.url, timeout=60), "engine")


@PROXY.parametrize()
@FUZZ_SETTINGS
def test_proxy_schema_fuzz(case: Any, proxy_server: LiveServer) -> None:
    steer(case)
    check(case, case.call(base_url=proxy_server.url, timeout=60), "proxy")


def test_proxy_stateful(proxy_server: LiveServer) -> None:
    """Job starts chained through the documented links to progress, pause, resume, cancel and dismiss."""
    assert PROXY.operations_with_incoming_links(), "the proxy documents no links"
    answered: list[tuple[str, str, int]] = []

    class ProxyJobs(PROXY.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            steer(case)

        def after_call(self, response: Any, case: Any) -> None:
            answered.append((case.method, case.path, response.status_code))
            SENT[("proxy-stateful", f"{response.status_code // 100}xx")] += 1
            super().after_call(response, case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": proxy_server.url, "timeout": 60}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            assert response.status_code != 500, f"500 from {case.method} {case.formatted_path}: {response.text[:300]}"
            super().validate_response(response, case, **kwargs)

    ProxyJobs.run(
        settings=settings(
            FUZZ_SETTINGS,
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
        )
    )
    # the links were followed: a job started, and a call on its job_id found it
    started = [call for call in answered if call[1].startswith("/mast/download/start") and call[2] == 200]
    followed = [call for call in answered if "{job_id}" in call[1] and call[2] in (200, 400, 409)]
    assert started, sorted(set(answered))
    assert followed, sorted(set(answered))
