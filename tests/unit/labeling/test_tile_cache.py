"""The render cache: keys from file identity, atomic shared files, eviction by size (least
recently used first), the in-memory LRU, one render per concurrent miss, and a disabled cache."""

from __future__ import annotations

import os
import threading
import time

import pytest

from labeling import tile_cache
from labeling.tile_cache import TileCache, cache_key, etag, etag_matches, file_identity


def _png(i: int, size: int = 1000) -> bytes:
    return bytes([i % 256]) * size


def _age(cache: TileCache, key: str, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(cache.path(key), (when, when))


def test_key_follows_file_identity_not_contents(tmp_path):
    f = tmp_path / "layer.tif"
    f.write_bytes(b"a" * 10)
    first = cache_key("tile", [file_identity(f)], t=0, z=1, x=0, y=0)
    assert first == cache_key("tile", [file_identity(f)], t=0, z=1, x=0, y=0)
    assert first != cache_key("tile", [file_identity(f)], t=1, z=1, x=0, y=0)
    new = tmp_path / "new.tif"
    new.write_bytes(b"b" * 10)  # same size, replaced the way materialize does
    os.replace(new, f)
    assert cache_key("tile", [file_identity(f)], t=0, z=1, x=0, y=0) != first
    assert file_identity(tmp_path / "missing.tif") is None


def test_put_get_memory_then_disk_shared_by_a_second_instance(tmp_path):
    a = TileCache(tmp_path, max_bytes=10**6)
    assert a.get("k" * 64) is None
    a.put("k" * 64, _png(1))
    assert a.get("k" * 64) == _png(1)
    b = TileCache(tmp_path, max_bytes=10**6)  # another worker on the same folder
    assert b.get("k" * 64) == _png(1)
    assert a.path("k" * 64).is_file()


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, monkeypatch):
    cache = TileCache(tmp_path, max_bytes=10**6)
    key = "a" * 64

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(tile_cache.os, "replace", broken)
    with pytest.raises(OSError):
        cache.put(key, _png(2))
    assert not cache.path(key).exists()
    assert list(cache.path(key).parent.iterdir()) == []  # the temp file was removed
    monkeypatch.undo()

    # concurrent writers and readers of one key: a reader sees nothing or the whole PNG
    data = _png(3, 200_000)
    seen, stop = [], threading.Event()

    def read():
        other = TileCache(tmp_path, max_bytes=10**7, memory_bytes=0)
        while not stop.is_set():
            got = other.get(key)
            if got is not None:
                seen.append(len(got))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    for _ in range(30):
        TileCache(tmp_path, max_bytes=10**7).put(key, data)
    stop.set()
    for r in readers:
        r.join()
    assert seen and set(seen) == {len(data)}
    assert [p.name for p in cache.path(key).parent.iterdir()] == [f"{key}.png"]


def test_eviction_deletes_least_recently_used_down_to_the_low_water_mark(tmp_path):
    cache = TileCache(tmp_path, max_bytes=10_000, memory_bytes=0)
    keys = [f"{i:02d}" + "0" * 62 for i in range(10)]
    for i, key in enumerate(keys):  # 10 x 1000 bytes: exactly at the bound, nothing evicted
        cache.put(key, _png(i))
        _age(cache, key, 1000 - i)  # keys[0] oldest
    assert cache.disk_bytes() == 10_000
    reader = TileCache(tmp_path, max_bytes=10_000, memory_bytes=0)
    assert reader.get(keys[0]) == _png(0)  # a hit refreshes its recency
    cache.put("zz" + "0" * 62, _png(99))  # over the bound: evict to 80 %
    assert cache.disk_bytes() <= 8_000
    left = {k for k in keys if cache.path(k).exists()}
    assert keys[0] in left  # recently read
    assert keys[1] not in left and keys[2] not in left  # the oldest unread ones went first
    assert keys[9] in left and cache.path("zz" + "0" * 62).exists()


def test_stale_temp_files_are_swept(tmp_path):
    cache = TileCache(tmp_path, max_bytes=10**6)
    sub = tmp_path / "ab"
    sub.mkdir()
    stale, fresh = sub / ".x.1.2.tmp", sub / ".y.1.2.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 2 * tile_cache.STALE_TMP_S
    os.utime(stale, (old, old))
    cache.evict()
    assert not stale.exists() and fresh.exists()  # a writer may still be at the fresh one


def test_memory_lru_is_bounded_in_bytes(tmp_path):
    cache = TileCache(tmp_path, max_bytes=10**6, memory_bytes=2500)
    for i in range(5):
        cache.put(f"{i}" * 64, _png(i))
    assert cache._memory_used <= 2500 and len(cache._memory) == 2
    assert list(cache._memory) == ["3" * 64, "4" * 64]


def test_concurrent_misses_of_one_key_render_once(tmp_path):
    cache = TileCache(tmp_path, max_bytes=10**6)
    calls, lock = [], threading.Lock()
    barrier = threading.Barrier(8)

    def render():
        with lock:
            calls.append(1)
        time.sleep(0.05)
        return _png(7)

    results = []

    def ask():
        barrier.wait()
        results.append(cache.get_or_render("c" * 64, render))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False] + [True] * 7
    assert {png for png, _ in results} == {_png(7)}


def test_a_disabled_cache_renders_every_time_and_writes_nothing(tmp_path):
    cache = TileCache(tmp_path / "c", max_bytes=10**6, enabled=False)
    calls = []

    def render():
        calls.append(1)
        return _png(5)

    assert cache.get_or_render("d" * 64, render) == (_png(5), False)
    assert cache.get_or_render("d" * 64, render) == (_png(5), False)
    cache.put("d" * 64, _png(5))
    assert len(calls) == 2 and cache.get("d" * 64) is None
    assert not (tmp_path / "c").exists()


def test_etag_matching():
    key = "e" * 64
    tag = etag(key)
    assert etag_matches(tag, key) and etag_matches(f'"x", W/{tag}', key)
    assert etag_matches("*", key)
    assert not etag_matches(None, key) and not etag_matches('"other"', key)
