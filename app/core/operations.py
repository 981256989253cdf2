"""Operational routes of both services: ``/metrics`` (Prometheus) and ``/ready`` (readiness).

HTTP metrics come from ``prometheus-fastapi-instrumentator`` (requests by templated route, method
and exact status, latency by route), written in multi-process mode (:mod:`app.core.metrics`).
``/ready`` runs the service's readiness checks, each under ``READY_TIMEOUT_SECONDS``: 200 when all
pass, else 503 with the name of each failed check and a fixed reason (the error itself is logged,
never sent). ``/health`` stays a liveness check that touches nothing. The three are documented in
the OpenAPI schema under the ``service`` tag.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel, ConfigDict, Field

from app.core import metrics
from app.core.executor import ping

logger = logging.getLogger("app.ready")

#: Latency buckets (seconds) of ``http_request_duration_seconds``: fast reads up to long composites.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class ReadinessCheck:
    """One readiness check: ``probe(app_state)`` returns when ready and raises otherwise."""

    name: str
    probe: Callable[[Any], Awaitable[None]]


class ReadyResponse(BaseModel):
    """Body of ``GET /ready``: overall status and each check's result (``ok`` or why not)."""

    status: Literal["ready", "not_ready"] = Field(description="`ready` when every check passed.")
    checks: dict[str, str] = Field(
        description="Each check (`storage`, `executor`, `downloads`): `ok`, `failed` or `no answer within <n> s`."
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "checks": {"storage": "ok", "executor": "ok"}}]}
    )


def storage_check() -> ReadinessCheck:
    """Check that storage accepts a write (a probe file in the local root, or a probe object in the bucket)."""

    async def probe(state: Any) -> None:
        await asyncio.to_thread(state.storage.check_writable)

    return ReadinessCheck("storage", probe)


def directory_check(name: str, directory: Path) -> ReadinessCheck:
    """Check that a file can be created in ``directory`` (which is not created here)."""

    def write() -> None:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".ready-probe-"):
            pass

    async def probe(state: Any) -> None:
        await asyncio.to_thread(write)

    return ReadinessCheck(name, probe)


def executor_check() -> ReadinessCheck:
    """Check that the worker pool (or the cluster) runs a trivial job through the executor's gate."""

    async def probe(state: Any) -> None:
        await state.executor.run(ping)

    return ReadinessCheck("executor", probe)


async def _run_check(check: ReadinessCheck, state: Any, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await check.probe(state)
    except TimeoutError:
        logger.warning("not_ready", extra={"check": check.name, "reason": "timeout", "seconds": seconds})
        return f"no answer within {seconds:g} s"
    except Exception as error:
        logger.warning("not_ready", extra={"check": check.name, "error": type(error).__name__}, exc_info=True)
        return "failed"
    return "ok"


def operations_router(checks: Sequence[ReadinessCheck], seconds: float) -> APIRouter:
    """Routes ``GET /ready`` and ``GET /metrics``."""
    router = APIRouter(tags=["service"])

    @router.get(
        "/ready",
        response_model=ReadyResponse,
        summary="Readiness check",
        description="200 when the service can do its work: storage accepts a write and, on the "
        "engine, the worker pool runs a trivial job. 503 otherwise, naming each failed check. "
        "Each check has `READY_TIMEOUT_SECONDS`. Use `/health` for liveness.",
        responses={503: {"model": ReadyResponse, "description": "A check failed; `checks` names it"}},
    )
    async def read_ready(request: Request) -> JSONResponse:
        state = request.app.state
        results = await asyncio.gather(*(_run_check(check, state, seconds) for check in checks))
        named = {check.name: result for check, result in zip(checks, results, strict=True)}
        ready = all(result == "ok" for result in results)
        body = ReadyResponse(status="ready" if ready else "not_ready", checks=named)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        summary="Prometheus metrics",
        description="Prometheus text exposition of every process of the service: HTTP requests "
        "and latency by route, executor slots and queue, 429s, job durations, composite cache "
        "hits, download bytes, jobs and retries.",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
    )
    def read_metrics(request: Request) -> Response:
        return Response(metrics.render(request.app.state), media_type=CONTENT_TYPE_LATEST)

    return router


def install_operations(app: FastAPI, *, checks: Sequence[ReadinessCheck], timeout: float) -> None:
    """Add HTTP metrics (outermost middleware, so every answer counts) and the two routes."""
    Instrumentator(
        should_group_status_codes=False,
        should_group_untemplated=True,
        registry=CollectorRegistry(),  # values live in the multi-process files; no global registration
    ).instrument(app, latency_lowr_buckets=LATENCY_BUCKETS)
    app.include_router(operations_router(checks, timeout))
