"""The benchmarks' load generator (``bench.http_load``) against a real loopback HTTP/1.1 server:
keep-alive, bodies by length and by chunks, 304s, errors, and the shared queue of a browser."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.http_load import fetch, fetch_shared


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: ClassVar[list[tuple[str, str | None, int]]] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("If-None-Match"), id(self.connection)))
        if self.headers.get("If-None-Match") == '"abc"':
            self.send_response(304)
            self.send_header("ETag", '"abc"')
            self.end_headers()
        elif self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/missing"):
            body = b'{"detail": "no such tile"}'
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            body = self.path.encode() * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture
def base():
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_clients_send_their_requests_in_order_on_one_connection_each(base):
    clients = [
        ({"Authorization": "Bearer a"}, [("/a/1", {}), ("/chunked", {}), ("/a/2", {})]),
        ({"Authorization": "Bearer b"}, [("/b/1", {"If-None-Match": '"abc"'}), ("/b/2", {})]),
    ]
    load = fetch(base, clients)
    summary = load.summary()
    assert summary["n"] == 5 and summary["errors"] == 0
    assert sorted(load.statuses) == [200, 200, 200, 200, 304]
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] and summary["rps"] > 0
    paths = [p for p, _, _ in _Handler.seen]
    assert paths.index("/a/1") < paths.index("/chunked") < paths.index("/a/2")
    connections = {p[:2]: c for p, _, c in _Handler.seen if p.startswith(("/a", "/b"))}
    assert connections["/a"] != connections["/b"]  # one keep-alive connection per client
    assert len({c for p, _, c in _Handler.seen if p.startswith("/a")}) == 1
    assert ("/b/1", '"abc"') in [(p, e) for p, e, _ in _Handler.seen]


def test_errors_are_counted_with_their_body(base):
    load = fetch(base, [({}, [("/missing/tile", {}), ("/ok", {})])])
    assert load.statuses == [404, 200]
    assert load.summary()["errors"] == 1 and "no such tile" in load.errors[0]


def test_a_browser_shares_its_paths_over_its_connections(base):
    paths = [f"/tile/{i}" for i in range(12)]
    load = fetch_shared(base, {}, paths, connections=3)
    assert len(load.statuses) == 12 and set(load.statuses) == {200}
    assert sorted(p for p, _, _ in _Handler.seen) == sorted(paths)  # each path exactly once
    assert len({c for _, _, c in _Handler.seen}) == 3
    assert load.wall_s > 0


def test_warm_up_requests_go_first_on_the_same_connection_untimed(base):
    clients = [({}, [(f"/c{i}/warm", {}), (f"/c{i}/timed", {})]) for i in range(3)]
    load = fetch(base, clients, warmup=1)
    assert len(load.latencies) == 3 and load.statuses == [200, 200, 200]
    seen = {p: c for p, _, c in _Handler.seen}
    assert len(seen) == 6
    assert all(seen[f"/c{i}/warm"] == seen[f"/c{i}/timed"] for i in range(3))
