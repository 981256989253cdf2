"""Slow clients on both live services: stalled heads and trickling bodies are cut off.

Each server runs with ``REQUEST_HEAD_TIMEOUT_SECONDS=2`` and ``REQUEST_BODY_TIMEOUT_SECONDS=3``.
Sockets that connect and send nothing, send half a request line, or send a head and then a body
one byte at a time are all closed by the server within the bound (plus generous slack for a
loaded machine), while ordinary requests keep being answered meanwhile.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.hardening.conftest import BODY_TIMEOUT, HEAD_TIMEOUT, SERVICE_TOKEN
from tests.support.live_server import LiveServer

#: Slack added to a deadline before a still-open socket fails the test (a 2-core CI under load).
SLACK = 10.0
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
SERVERS = ["guarded_engine", "guarded_proxy"]


def _connect(server: LiveServer, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def _wait_closed(socks: list[socket.socket], started: float, limit: float) -> dict[int, tuple[float, bytes]]:
    """Read every socket until the server closes it; return each one's (seconds until EOF, bytes read)."""
    selector = selectors.DefaultSelector()
    received: dict[int, bytearray] = {}
    closed: dict[int, tuple[float, bytes]] = {}
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
        received[index] = bytearray()
    deadline = started + limit
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            index = key.data
            try:
                chunk = socks[index].recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[index] += chunk
                continue
            closed[index] = (time.monotonic() - started, bytes(received[index]))
            selector.unregister(socks[index])
    selector.close()
    return closed


def _normal_requests_meanwhile(server: LiveServer, stop: threading.Event, results: list[int]) -> None:
    with httpx.Client(base_url=server.url, timeout=10, headers=AUTH) as client:
        while not stop.is_set():
            results.append(client.get("/health").status_code)
            results.append(client.get("/").status_code)
            time.sleep(0.2)


Background = tuple[threading.Thread, threading.Event, list[int]]


def _in_background(fn: Callable[[threading.Event, list[int]], None]) -> Background:
    stop = threading.Event()
    results: list[int] = []
    thread = threading.Thread(target=fn, args=(stop, results), daemon=True)
    thread.start()
    return thread, stop, results


@pytest.mark.parametrize("server_name", SERVERS)
def test_stalled_heads_are_closed_within_the_bound(server_name: str, request: pytest.FixtureRequest) -> None:
    server: LiveServer = request.getfixturevalue(server_name)
    thread, stop, statuses = _in_background(lambda s, r: _normal_requests_meanwhile(server, s, r))
    started = time.monotonic()
    socks = [_connect(server, b"GET /health HT") for _ in range(5)]
    socks.append(_connect(server))  # connects and says nothing
    socks.append(_connect(server, b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bea"))  # half the headers
    try:
        closed = _wait_closed(socks, started, HEAD_TIMEOUT + SLACK)
    finally:
        stop.set()
        thread.join(timeout=15)
        for sock in socks:
            sock.close()
    assert sorted(closed) == list(range(len(socks))), f"still open: {set(range(len(socks))) - set(closed)}"
    for index, (seconds, data) in closed.items():
        assert seconds >= HEAD_TIMEOUT * 0.9, (index, seconds)  # the deadline, not an early refusal
        assert seconds < HEAD_TIMEOUT + SLACK
        if index == 5:
            assert data == b""  # nothing was sent: closed without a reply
        else:
            assert data.startswith(b"HTTP/1.1 408 "), data[:80]
            assert b"Request head not received" in data
    assert statuses, "no ordinary request completed meanwhile"
    assert set(statuses) == {200}, statuses


@pytest.mark.parametrize("server_name", SERVERS)
def test_keep_alive_connection_stalling_in_its_next_head_is_closed(
    server_name: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue(server_name)
    sock = _connect(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(10)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    sock.sendall(b"GET /hea")
    try:
        closed = _wait_closed([sock], started, HEAD_TIMEOUT + SLACK)
    finally:
        sock.close()
    assert 0 in closed, "the stalled second request kept its connection"
    seconds, data = closed[0]
    assert HEAD_TIMEOUT * 0.9 <= seconds < HEAD_TIMEOUT + SLACK
    assert b"HTTP/1.1 408 " in data  # after the rest of the first response, if its body came late


@pytest.mark.parametrize("server_name", SERVERS)
def test_trickling_body_is_cut_off(server_name: str, request: pytest.FixtureRequest) -> None:
    server: LiveServer = request.getfixturevalue(server_name)
    path = b"/semantic/search" if server_name == "guarded_engine" else b"/mast/search/target"
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + SERVICE_TOKEN.encode() + b"\r\nContent-Length: 100000\r\n\r\n"
    )
    sock = _connect(server, head)
    started = time.monotonic()
    closed_at: float | None = None
    try:
        # one byte every 0.3 s: the body would take eight hours; the server must give up first
        while time.monotonic() - started < BODY_TIMEOUT + SLACK:
            try:
                sock.sendall(b" ")
            except OSError:
                closed_at = time.monotonic() - started
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(65536) == b"":
                    closed_at = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic() - started
                break
    finally:
        sock.close()
    assert closed_at is not None, "the trickling body kept its connection"
    assert BODY_TIMEOUT * 0.9 <= closed_at < BODY_TIMEOUT + SLACK
    assert httpx.get(f"{server.url}/", headers=AUTH, timeout=10).status_code == 200
