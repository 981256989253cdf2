"""Domain exceptions map to HTTP in one place; unexpected errors never leak their text."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core import exceptions as exc
from app.core.app_factory import build_app
from app.core.errors import (
    INTERNAL_ERROR_DETAIL,
    MAX_ECHO_CHARS,
    MAX_ECHO_ITEMS,
    MAX_VALIDATION_ERRORS,
    STATUS_BY_EXCEPTION,
    clip_input,
    status_for,
)
from app.core.settings import Settings


class Body(BaseModel):
    text: str


class Items(BaseModel):
    items: list[Body]


def _app(settings: Settings, max_body: int = 1000) -> FastAPI:
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

    @router.post("/items")
    async def items(body: Items) -> dict[str, int]:
        return {"n": len(body.items)}

    s = settings.model_copy(update={"max_request_body_bytes": max_body})
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
    assert made != "bad id\n"
    assert len(made) == 16


def test_every_exception_has_a_status() -> None:
    classes = [v for v in vars(exc).values() if isinstance(v, type) and issubclass(v, exc.DomainError)]
    assert set(classes) <= set(STATUS_BY_EXCEPTION)
    assert status_for(exc.FitsTooLargeError()) == 413


def test_small_validation_errors_keep_fastapi_form(settings: Settings) -> None:
    reply = TestClient(_app(settings)).post("/echo", json={"text": 5})
    assert reply.status_code == 422
    assert reply.headers["X-Validation-Errors"] == "1"
    expected = {"type": "string_type", "loc": ["body", "text"], "msg": "Input should be a valid string", "input": 5}
    assert reply.json() == {"detail": [expected]}


def test_validation_errors_of_a_huge_body_are_bounded(settings: Settings) -> None:
    client = TestClient(_app(settings, max_body=10_000_000))
    reply = client.post("/items", json={"items": ["x" * 600] * 2000})  # 1.2 MB of bad items
    assert reply.status_code == 422
    assert reply.headers["X-Validation-Errors"] == "2000"
    detail = reply.json()["detail"]
    assert len(detail) == MAX_VALIDATION_ERRORS
    assert len(reply.content) < 30_000
    assert detail[0]["loc"] == ["body", "items", 0]
    assert detail[0]["input"] == "x" * MAX_ECHO_CHARS + "..."


def test_clip_input_bounds_size_and_depth() -> None:
    assert clip_input({"a": [1, "b"], "n": None}) == {"a": [1, "b"], "n": None}  # small: unchanged
    assert clip_input(list(range(100))) == list(range(MAX_ECHO_ITEMS))
    assert clip_input({str(i): i for i in range(100)}) == {str(i): i for i in range(MAX_ECHO_ITEMS)}
    assert clip_input([[[[["deep"]]]]]) == [[[["..."]]]]
    assert clip_input(b"\xff" * 500) == "\ufffd" * MAX_ECHO_CHARS + "..."


def test_internal_error_is_a_fixed_500_whatever_its_text(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        reply = client.get("/domain/InternalError")
    assert reply.status_code == 500
    assert reply.json() == {"detail": INTERNAL_ERROR_DETAIL}


def test_clip_input_makes_what_json_cannot_carry_text() -> None:
    assert clip_input(float("nan")) == "nan"
    assert clip_input([float("inf"), 1.5]) == ["inf", 1.5]
    assert clip_input("a\ud800b") == "a?b"
