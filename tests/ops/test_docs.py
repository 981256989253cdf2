"""The OpenAPI manuals load everything from the service itself: no other host, every asset 200."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.live_server import LiveServer

#: A marker each asset must contain, so that a 200 with an empty or wrong body fails.
MARKERS = {
    "swagger-ui-bundle.js": b"SwaggerUIBundle",
    "swagger-ui.css": b".swagger-ui",
    "redoc.standalone.js": b"Redoc",
    "favicon.png": b"\x89PNG",
}


class _Links(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links.extend(v for k, v in attrs if k in {"src", "href"} and v)
        if tag == "script" and not any(k == "src" for k, _ in attrs):
            self.inline_scripts += 1


@pytest.fixture(scope="module", params=["main", "main_mast"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    root = tmp_path_factory.mktemp("docs")
    env = {"STORAGE_BASE_PATH": str(root), "MAST_DOWNLOAD_DIR": str(root / "mast"), "ENGINE_WORKERS": "1"}
    env["SEMANTIC_DATA_DIR"] = str(root / "semantic")
    with LiveServer(request.param, env=env, workers=2 if request.param == "main_mast" else 1) as server:
        yield server


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_reference_only_the_service(service: LiveServer, page: str) -> None:
    reply = httpx.get(f"{service.url}{page}")
    assert reply.status_code == 200
    assert "googleapis" not in reply.text
    assert "cdn.jsdelivr" not in reply.text
    parser = _Links()
    parser.feed(reply.text)
    assert parser.links, "the page names its assets"
    origin = urlsplit(service.url)
    fetched = set()
    for link in parser.links:
        target = urlsplit(urljoin(f"{service.url}{page}", link))
        assert not urlsplit(link).netloc or urlsplit(link).netloc == origin.netloc, link
        assert (target.scheme, target.netloc) == (origin.scheme, origin.netloc), link
        asset = httpx.get(target.geturl())
        assert asset.status_code == 200, link
        name = target.path.rsplit("/", 1)[-1]
        assert MARKERS[name] in asset.content, link
        fetched.add(name)
    expected = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"} if page == "/docs" else {"redoc.standalone.js"}
    assert expected <= fetched
    # the browser is told to fetch nothing from another host (ReDoc's bundle names a logo on a CDN)
    policy = reply.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' data:" in policy
    assert "http" not in policy
    assert policy.count("'sha256-") == parser.inline_scripts


def test_swagger_start_script_points_at_this_service(service: LiveServer) -> None:
    text = httpx.get(f"{service.url}/docs").text
    assert "url: '/openapi.json'" in text
    assert '"validatorUrl": null' in text  # no badge fetched from the public validator
    assert httpx.get(f"{service.url}/openapi.json").status_code == 200
    assert httpx.get(f"{service.url}/docs/oauth2-redirect").status_code == 200
