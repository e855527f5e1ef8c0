"""A small HTTP file server with byte-range support, for tests that read remote COGs.

``serve_directory(root)`` serves a directory on 127.0.0.1 (a free port) with a
``ThreadingHTTPServer`` whose request threads run in the background, by default inside a child
Python process (see ``serve_directory`` for why GDAL needs that). It answers GET and HEAD,
advertises ``Accept-Ranges: bytes`` and honours one range per request (``bytes=a-b``,
``bytes=a-``, ``bytes=-n``) with 206 and ``Content-Range``; an unsatisfiable range gets 416. A
request with several ranges gets the whole file (200), which HTTP allows. That is what GDAL's
``/vsicurl/`` needs, so rasterio reads COGs from it block by block. ``RequestStats`` counts
requests, 206 responses and body bytes per URL path, so a test can check that a reader really
used range requests. Symlinks inside ``root`` are followed, so large files can be served from
where they live.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

STATS_PATH = "/__range_server_stats__"
"""Answers the counters as JSON (served, not counted)."""
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16


@dataclass
class RequestStats:
    """Per-path counters, updated from the server's threads."""

    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """URL path -> number of requests (GET and HEAD, any status)."""
    partial: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """URL path -> number of 206 (partial content) responses."""
    bytes_sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """URL path -> response body bytes written."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, path: str, *, status: int, nbytes: int) -> None:
        with self._lock:
            self.requests[path] += 1
            self.partial[path] += int(status == 206)
            self.bytes_sent[path] += nbytes

    def add_bytes(self, path: str, nbytes: int) -> None:
        with self._lock:
            self.bytes_sent[path] += nbytes

    def snapshot(self, path: str) -> tuple[int, int, int]:
        """(requests, 206 responses, bytes sent) for one URL path."""
        with self._lock:
            return self.requests[path], self.partial[path], self.bytes_sent[path]

    def as_dict(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "partial": dict(self.partial),
                "bytes_sent": dict(self.bytes_sent),
            }


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) inclusive; ``None`` to send everything; ``"bad"`` when unsatisfiable."""
    if "," in header:
        return None  # several ranges: serving the whole file is a valid answer
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return "bad"
    if not m.group(1):  # suffix range: the last n bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "bad"
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        return "bad"
    return first, min(last, size - 1)


def _handler(root: Path, stats: RequestStats) -> type[BaseHTTPRequestHandler]:
    class RangeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as curl (GDAL) expects

        def log_message(self, format: str, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            url_path = unquote(urlparse(self.path).path)
            if url_path == STATS_PATH:
                self._stats()
                return
            parts = [p for p in url_path.split("/") if p]
            target = root.joinpath(*parts) if parts else root
            if ".." in parts or not target.is_file():
                self._empty(404, url_path)
                return
            size = target.stat().st_size
            wanted = _parse_range(self.headers["Range"], size) if self.headers["Range"] else None
            if wanted == "bad":
                self._empty(416, url_path, {"Content-Range": f"bytes */{size}"})
                return
            first, last = wanted if wanted else (0, size - 1)
            length = max(0, last - first + 1)
            status = 206 if wanted else 200
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            stats.record(url_path, status=status, nbytes=0)
            if not body:
                return
            with (
                contextlib.suppress(BrokenPipeError, ConnectionResetError),
                open(target, "rb") as f,
            ):
                f.seek(first)
                left = length
                while left > 0:
                    chunk = f.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    stats.add_bytes(url_path, len(chunk))
                    left -= len(chunk)

        def _stats(self) -> None:
            payload = json.dumps(stats.as_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _empty(self, status: int, url_path: str, headers: dict | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            stats.record(url_path, status=status, nbytes=0)

    return RangeHandler


class RemoteStats:
    """``RequestStats`` of a server running in a child process, read over HTTP on demand."""

    def __init__(self, base_url: str) -> None:
        self._url = base_url + STATS_PATH

    def _fetch(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(self._url, timeout=10) as r:
            return json.load(r)

    @property
    def requests(self) -> dict[str, int]:
        return self._fetch()["requests"]

    @property
    def partial(self) -> dict[str, int]:
        return self._fetch()["partial"]

    @property
    def bytes_sent(self) -> dict[str, int]:
        return self._fetch()["bytes_sent"]

    def snapshot(self, path: str) -> tuple[int, int, int]:
        d = self._fetch()
        return tuple(d[k].get(path, 0) for k in ("requests", "partial", "bytes_sent"))


@contextlib.contextmanager
def serve_directory(
    root: str | os.PathLike[str], *, in_thread: bool = False
) -> Iterator[tuple[str, RequestStats | RemoteStats]]:
    """Serve ``root`` at ``http://127.0.0.1:PORT`` until the block exits.

    Yields ``(base_url, stats)``; ``base_url`` has no trailing slash, and ``stats`` is keyed by
    the URL path (``/landsat/scene.tif``).

    By default the ``ThreadingHTTPServer`` runs in a child Python process (its request threads
    are background threads there). ``in_thread=True`` runs it in a thread of this process, which
    is fine for pure-Python clients but deadlocks with GDAL: rasterio calls some GDAL functions
    (e.g. the ``.aux.xml`` side-car probe after opening) while holding the GIL, so a server
    thread in the same interpreter can never answer them.
    """
    if in_thread:
        stats = RequestStats()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root), stats))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="range-server", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", stats
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        return
    proc = subprocess.Popen(
        [sys.executable, __file__, os.fspath(root)],
        stdin=subprocess.PIPE,  # the child exits when this closes, even if we are killed
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"range server failed to start (said {line!r})")
        base_url = f"http://127.0.0.1:{line}"
        yield base_url, RemoteStats(base_url)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _main(root: str) -> None:
    stats = RequestStats()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root), stats))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="range-server", daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # blocks until the parent closes our stdin (or dies)
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    _main(sys.argv[1])
