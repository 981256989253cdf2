"""A TCP relay that caps each connection's download rate, the way a link to AWS S3 behaves.

Real S3 serves each connection at a bounded rate (tens of MB/s) while many connections add up;
on 127.0.0.1 nothing limits a single stream but the CPU. Put this relay in front of the moto
server and every connection it accepts is forwarded to the upstream server unchanged, except
that the bytes coming back are paced to ``rate`` bytes per second per connection (requests go
up unthrottled). It also notes the GET requests it sees (path and ``Range`` start), so a test can
check which bytes a client asked for, and can break the next connections on purpose
(:class:`LinkFaults`: drop or stall each after so many bytes). Used by the S3 downloader tests
and ``bench/downloads.py``.

Run in a thread (:func:`start_slow_link`) or as a process::

    python -m tests.support.slow_link --port 9001 --upstream 127.0.0.1:9000 --rate 40e6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PIECE = 64 * 1024  # small pieces pace smoothly: a 200 ms tick sees many of them
REQUEST_RE = re.compile(rb"GET (\S+) HTTP/1\.[01]\r\n(.*?)\r\n\r\n", re.S)
RANGE_RE = re.compile(rb"(?im)^range:\s*bytes=(\d+)-")


@dataclass(frozen=True)
class SeenRequest:
    """A GET that went through the relay: its path and where its ``Range`` starts (None: whole object)."""

    path: str
    range_start: int | None


@dataclass
class LinkFaults:
    """Break the next ``connections`` connections after ``after_bytes`` bytes sent back to the client:
    ``drop`` closes them, ``stall`` goes silent for ``stall_seconds`` and then carries on.
    ``fired`` counts the faults that happened; ``bytes_down`` all bytes sent back to clients."""

    connections: int = 0
    after_bytes: int = 0
    kind: str = "drop"
    stall_seconds: float = 0.0
    fired: int = 0
    bytes_down: int = 0

    def take(self) -> bool:
        """Whether the connection being opened is to break."""
        if self.connections <= 0:
            return False
        self.connections -= 1
        return True


def parse_requests(data: bytes) -> list[SeenRequest]:
    """The GET requests whose head is in ``data`` (request heads are small: one read holds them)."""
    seen = []
    for match in REQUEST_RE.finditer(data):
        ranged = RANGE_RE.search(match.group(2))
        seen.append(SeenRequest(match.group(1).decode(), int(ranged.group(1)) if ranged else None))
    return seen


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    rate: float | None,
    watch: Callable[[bytes], None] | None = None,
    faults: LinkFaults | None = None,
    broken: bool = False,
) -> None:
    """Copy ``reader`` to ``writer``; with ``rate``, never faster than ``rate`` bytes per second."""
    started, sent = time.monotonic(), 0
    try:
        while data := await reader.read(PIECE):
            if watch is not None:
                watch(data)
            if faults is not None and broken and sent + len(data) >= faults.after_bytes:
                broken = False
                head, data = data[: faults.after_bytes - sent], data[faults.after_bytes - sent :]
                writer.write(head)
                await writer.drain()
                sent += len(head)
                faults.bytes_down += len(head)
                faults.fired += 1
                if faults.kind == "drop":
                    return
                await asyncio.sleep(faults.stall_seconds)
                started += faults.stall_seconds
            writer.write(data)
            await writer.drain()
            sent += len(data)
            if faults is not None:
                faults.bytes_down += len(data)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


async def serve(
    listen_port: int,
    upstream: str,
    rate: float,
    ready: threading.Event | None = None,
    seen: list[SeenRequest] | None = None,
    faults: LinkFaults | None = None,
) -> None:
    """Relay ``127.0.0.1:listen_port`` to ``upstream`` (``host:port``) until cancelled."""
    host, _, port = upstream.rpartition(":")

    def watch(data: bytes) -> None:
        if seen is not None:
            seen.extend(parse_requests(data))

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        broken = faults.take() if faults is not None else False
        with contextlib.suppress(asyncio.CancelledError):  # stopped while relaying
            await asyncio.gather(
                _pump(client_r, server_w, None, watch), _pump(server_r, client_w, rate, None, faults, broken)
            )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()


@dataclass
class SlowLink:
    """A relay running in a daemon thread; ``endpoint`` is its URL."""

    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    main: asyncio.Task[None]
    seen: list[SeenRequest] = field(default_factory=list)
    faults: LinkFaults = field(default_factory=LinkFaults)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """End the relay; its thread cancels the open connections and closes its loop."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.main.cancel)
        self.thread.join(timeout=5)


def start_slow_link(upstream: str, rate: float) -> SlowLink:
    """Start a relay to ``upstream`` capped at ``rate`` bytes/s per connection, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    seen: list[SeenRequest] = []
    faults = LinkFaults()

    main = loop.create_task(serve(port, upstream, rate, ready, seen, faults))

    def run() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main)
        leftovers = asyncio.all_tasks(loop)  # open relays: end them before closing the loop
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="slow-link", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the slow link did not start")
    return SlowLink(port=port, loop=loop, thread=thread, main=main, seen=seen, faults=faults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port of the real server")
    parser.add_argument("--rate", type=float, required=True, help="bytes per second per connection")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.upstream, args.rate))


if __name__ == "__main__":
    main()
