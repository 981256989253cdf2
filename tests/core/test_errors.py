"""Domain exceptions map to HTTP in one place; unexpected errors never leak their text."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core import exceptions as exc
from app.core.app_factory import build_app
from app.core.errors import INTERNAL_ERROR_DETAIL, STATUS_BY_EXCEPTION, status_for
from app.core.settings import Settings


class Body(BaseModel):
    text: str


def _app(settings: Settings) -> FastAPI:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret /etc/passwd internals")

    @router.get("/domain/{name}")
    async def domain(name: str) -> None:
        raise getattr(exc, name)("clear message")

    @router.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        return {"n": len(body.text)}

    s = settings.model_copy(update={"max_request_body_bytes": 1000})
    return build_app(
        settings=s,
        title="t",
        description="d",
        root_message="m",
        service_name="s",
        routers=[router],
        lifespan=None,
        openapi_tags=[],
    )


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("AccessDeniedError", 403),
        ("NotFoundError", 404),
        ("NotAFileError", 400),
        ("FitsTooLargeError", 413),
        ("NoImageDataError", 400),
        ("UpstreamTimeoutError", 504),
        ("UpstreamError", 502),
        ("ConflictError", 409),
        ("UnprocessableError", 422),
    ],
)
def test_domain_errors_map_to_status(settings: Settings, name: str, status: int) -> None:
    with TestClient(_app(settings)) as client:
        reply = client.get(f"/domain/{name}")
    assert reply.status_code == status
    assert reply.json() == {"detail": "clear message"}


def test_busy_error_carries_retry_after(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        reply = client.get("/domain/BusyError")
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "5"


def test_unexpected_error_is_a_fixed_500_and_logged(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), TestClient(_app(settings), raise_server_exceptions=False) as client:
        reply = client.get("/boom")
    assert reply.status_code == 500
    assert reply.json() == {"detail": INTERNAL_ERROR_DETAIL}
    assert "secret" not in reply.text
    assert any(r.message == "unhandled_error" and r.exc_info for r in caplog.records)


def test_oversize_body_gets_413(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        assert client.post("/echo", json={"text": "x" * 10}).json() == {"n": 10}
        reply = client.post("/echo", json={"text": "x" * 5000})
    assert reply.status_code == 413
    assert "larger than 1000 bytes" in reply.json()["detail"]


def test_request_id_is_echoed_or_made(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        assert client.get("/", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
        made = client.get("/", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"]
    assert made != "bad id\n" and len(made) == 16


def test_every_exception_has_a_status() -> None:
    classes = [v for v in vars(exc).values() if isinstance(v, type) and issubclass(v, exc.DomainError)]
    assert set(classes) <= set(STATUS_BY_EXCEPTION)
    assert status_for(exc.FitsTooLargeError()) == 413
