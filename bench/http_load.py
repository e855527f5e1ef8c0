"""A light HTTP/1.1 load generator for loopback benchmarks.

Every client is a coroutine with one keep-alive connection, and all of them share one asyncio
event loop (uvloop where installed) on one thread. A request is a few hundred bytes written to
a socket and its response is read by ``Content-Length`` (or chunks), with no HTTP library
above the socket. On a 2-core machine the load generator shares the cores with the server
under test, so its own cost lands in every latency it measures. Fifty ``httpx.Client``
threads spend about half a millisecond of Python per request and queue for the GIL. This
client spends a few tens of microseconds per request, so what it measures is the server.

Latency is the time from writing the request to the last byte of the response. Connections
are open before the clock starts, as a browser showing a map already has them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Load:
    """What one run measured: per-request seconds, status codes, errors and the wall time."""

    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

        return {
            "n": len(lat),
            "p50_ms": pct(0.5),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "rps": len(lat) / self.wall_s if self.wall_s else 0.0,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
        }


def _request(host: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one response on a keep-alive connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size + 2)
            del body[-2:]
        await reader.readuntil(b"\r\n")  # the empty trailer
        return status, bytes(body)
    if status in (204, 304) or 100 <= status < 200:
        return status, b""
    return status, await reader.readexactly(length or 0)


Client = tuple[dict[str, str], "list[tuple[str, dict]] | deque[tuple[str, dict]]"]


async def _run(base: str, clients: list[Client], warmup: int) -> Load:
    parts = urlsplit(base)
    host, port = parts.hostname, parts.port or 80
    load = Load()
    connections = [await asyncio.open_connection(host, port) for _ in clients]
    start, warm = asyncio.Event(), []

    async def client(conn, headers: dict[str, str], requests) -> None:
        reader, writer = conn
        queue = requests if isinstance(requests, deque) else deque(requests)
        for _ in range(min(warmup, len(queue))):  # untimed, on this same connection
            path, extra = queue.popleft()
            writer.write(_request(f"{host}:{port}", path, {**headers, **extra}))
            await _response(reader)
        warm.append(True)
        await start.wait()
        while queue:
            path, extra = queue.popleft()
            data = _request(f"{host}:{port}", path, {**headers, **extra})
            t0 = time.perf_counter()
            writer.write(data)
            status, body = await _response(reader)
            load.latencies.append(time.perf_counter() - t0)
            load.statuses.append(status)
            if status not in (200, 304):
                load.errors.append(f"{status} {body[:120]!r}")
        writer.close()

    tasks = [
        asyncio.create_task(client(conn, headers, reqs))
        for conn, (headers, reqs) in zip(connections, clients, strict=True)
    ]
    while len(warm) < len(tasks):  # every client is warm and waiting on the start
        await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    load.wall_s = time.perf_counter() - t0
    return load


def _loop_run(coro):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def fetch(base: str, clients: list[Client], warmup: int = 0) -> Load:
    """Each client ``(headers, [(path, extra headers), ...])`` sends its requests in order on
    its own connection, all clients at once. Clients given the same ``deque`` share it: each
    takes the next request when its last response is in. ``warmup``: each client first sends
    its first ``warmup`` requests on its connection, untimed, and the clock starts once all
    have (the server's per-connection state, such as a worker's checked access, is warm)."""
    return _loop_run(_run(base, clients, warmup))


def fetch_shared(base: str, headers: dict[str, str], paths: list[str], connections: int) -> Load:
    """One browser: ``paths`` over ``connections`` connections, each taking the next path when
    its last response is in; ``wall_s`` is the time until all are in."""
    queue = deque((path, {}) for path in paths)
    return fetch(base, [(headers, queue)] * connections)
