"""Service authentication on both live services: with ``SERVICE_TOKEN`` set, only its holder gets in.

The probes stay open; everything else (the banner, the routes, the API manuals) answers 401 with
``WWW-Authenticate: Bearer`` without the token or with a wrong one. The token never reaches a log
line, even at ``LOG_LEVEL=DEBUG``. Unset, nothing changes (the rest of the suite runs that way).
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from main_mast import create_app
from tests.hardening.conftest import SERVICE_TOKEN
from tests.support.live_server import LiveServer

SERVERS = ["guarded_engine", "guarded_proxy"]
WRONG = "svc-token-wrong-0000000000000000000000000000"
BANNERS = {
    "guarded_engine": {"message": "JWST Data Processing Engine", "status": "running"},
    "guarded_proxy": {"message": "JWST MAST Proxy Service", "status": "running"},
}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Missing or invalid service token"}


@pytest.mark.parametrize("server_name", SERVERS)
def test_token_is_required_outside_the_probes(server_name: str, request: pytest.FixtureRequest) -> None:
    server: LiveServer = request.getfixturevalue(server_name)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _refused(client.get("/"))
        _refused(client.get("/", headers={"Authorization": f"Bearer {WRONG}"}))
        _refused(client.get("/", headers={"Authorization": SERVICE_TOKEN}))  # no scheme
        _refused(client.get("/", headers={"Authorization": f"Basic {SERVICE_TOKEN}"}))
        _refused(client.get("/", headers={"Authorization": f"Bearer {SERVICE_TOKEN}x"}))
        _refused(client.get("/openapi.json"))
        _refused(client.get("/docs"))
        _refused(client.post("/semantic/search", json={"query": "nebula"}))
        _refused(client.get("/mast/download/resumable"))

        good = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        assert client.get("/", headers=good).json() == BANNERS[server_name]
        assert client.get("/", headers={"Authorization": f"bearer {SERVICE_TOKEN}"}).status_code == 200
        assert client.get("/health").status_code == 200  # the probe needs no token
        schema = client.get("/openapi.json", headers=good).json()
    assert schema["components"]["securitySchemes"]["serviceToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The value of `SERVICE_TOKEN`, sent as `Authorization: Bearer <token>`.",
    }
    assert schema["security"] == [{"serviceToken": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "401" in schema["paths"]["/"]["get"]["responses"]


def test_routes_answer_with_the_token(guarded_engine: LiveServer, guarded_proxy: LiveServer) -> None:
    good = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    reply = httpx.get(f"{guarded_proxy.url}/mast/download/resumable", headers=good, timeout=30)
    assert reply.status_code == 200
    assert reply.json() == {"jobs": [], "count": 0}
    reply = httpx.get(
        f"{guarded_engine.url}/cubeinfo/x",
        params={"file_path": "mast/obs2/cube_s3d.fits"},
        headers=good,
        timeout=60,
    )
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("server_name", SERVERS)
def test_token_never_reaches_the_logs(server_name: str, request: pytest.FixtureRequest) -> None:
    server: LiveServer = request.getfixturevalue(server_name)
    for headers in ({"Authorization": f"Bearer {SERVICE_TOKEN}"}, {"Authorization": f"Bearer {WRONG}"}):
        httpx.get(f"{server.url}/", headers=headers, timeout=30)
        httpx.get(f"{server.url}/no-such-route", headers=headers, timeout=30)
    logs = server.logs()
    assert "status=401" in logs  # refusals are logged...
    assert SERVICE_TOKEN not in logs  # ...but no token, right or wrong
    assert WRONG not in logs
    assert SERVICE_TOKEN[8:24] not in logs


def test_docs_can_be_made_public() -> None:
    settings = Settings(SERVICE_TOKEN=SERVICE_TOKEN, SERVICE_DOCS_PUBLIC=True, LOG_LEVEL="WARNING")
    client = TestClient(create_app(settings))  # no lifespan: the docs and the refusal need none
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["security"] == [{"serviceToken": []}]
    _refused(client.get("/"))


def test_blank_token_means_unset() -> None:
    assert Settings(SERVICE_TOKEN="").service_token is None
    assert Settings(SERVICE_TOKEN="   ").service_token is None
    secret = Settings(SERVICE_TOKEN=SERVICE_TOKEN)
    assert SERVICE_TOKEN not in repr(secret)
    assert SERVICE_TOKEN not in secret.model_dump_json()
