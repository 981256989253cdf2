"""A TCP relay that caps each connection's download rate, the way a link to AWS S3 behaves.

Real S3 serves each connection at a bounded rate (tens of MB/s) while many connections add up;
on 127.0.0.1 nothing limits a single stream but the CPU. Put this relay in front of the moto
server and every connection it accepts is forwarded to the upstream server unchanged, except
that the bytes coming back are paced to ``rate`` bytes per second per connection (requests go
up unthrottled). Used by the S3 downloader tests and ``bench/downloads.py``.

Run in a thread (:func:`start_slow_link`) or as a process::

    python -m tests.support.slow_link --port 9001 --upstream 127.0.0.1:9000 --rate 40e6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

PIECE = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float | None) -> None:
    """Copy ``reader`` to ``writer``; with ``rate``, never faster than ``rate`` bytes per second."""
    started, sent = time.monotonic(), 0
    try:
        while data := await reader.read(PIECE):
            writer.write(data)
            await writer.drain()
            sent += len(data)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


async def _relay(
    host: str, port: int, rate: float, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(_pump(client_r, server_w, None), _pump(server_r, client_w, rate))


async def serve(listen_port: int, upstream: str, rate: float, ready: threading.Event | None = None) -> None:
    """Relay ``127.0.0.1:listen_port`` to ``upstream`` (``host:port``) until cancelled."""
    host, _, port = upstream.rpartition(":")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _relay(host, int(port), rate, reader, writer)

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

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            self.loop.call_soon_threadsafe(task.cancel)
        self.thread.join(timeout=5)


def start_slow_link(upstream: str, rate: float) -> SlowLink:
    """Start a relay to ``upstream`` capped at ``rate`` bytes/s per connection, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(serve(port, upstream, rate, ready))
        leftovers = asyncio.all_tasks(loop)  # open relays: end them before closing the loop
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="slow-link", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the slow link did not start")
    return SlowLink(port=port, loop=loop, thread=thread)


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
