"""A render cache for PNG tiles and frames, shared by every API worker process on one data dir.

A rendered PNG depends only on the files it is read from and the request (period, preset,
tile, size, colours). The key is a digest of exactly that: each source file's identity
(resolved path, size, ``mtime_ns``, inode: one ``os.stat``, never a read of the raster) plus
the request's parameters and ``RENDER_VERSION``. Re-materialising a layer replaces its files,
which changes their identity and so every key: old entries are never served again, and nothing
has to be invalidated (they age out by size).

Storage: ``DIR/<key[:2]>/<key>.png`` (``DATA_DIR/cache/tiles`` in the API), written atomically
(a temp file in the same folder, then ``os.replace``), so several uvicorn workers share entries
and a reader never sees half a file. In front sits a small in-process LRU bounded in bytes.
The disk is bounded too: once the files exceed ``max_bytes`` the least recently used (oldest
``mtime``; a hit refreshes it at most once a minute) are deleted down to 80 % of the bound.
Each process counts its own writes between scans, so with N workers the folder can overshoot
the bound by at most what they wrote since their last scan.

A disabled cache (``enabled=False``) renders every time: the benchmark's baseline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

RENDER_VERSION = 1
"""Part of every key: bump it when rendering changes, so entries of the old code are not served."""
TOUCH_EVERY_S = 60.0
"""A hit refreshes its file's mtime (its recency for eviction) at most this often."""
LOW_WATER = 0.8
"""Eviction deletes down to this share of the disk bound, so it does not run at every write."""
STALE_TMP_S = 600.0
"""Temp files older than this are left-overs of a killed writer; eviction scans delete them."""

FileIdentity = tuple[str, int, int, int] | None
"""(resolved path, size, mtime_ns, inode) of a file; None for a file that does not exist."""


@lru_cache(maxsize=4096)
def _real_dir(folder: str) -> str:
    return os.path.realpath(folder)


def file_identity(path: str | Path) -> FileIdentity:
    """The identity of ``path`` from one ``os.stat`` (None when it does not exist). Its folder
    is resolved once per process (a layer's folder is not re-linked under a running server)."""
    folder, name = os.path.split(os.path.abspath(path))
    real = os.path.join(_real_dir(folder), name)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return None
    return (real, st.st_size, st.st_mtime_ns, st.st_ino)


def digest(value: Any, length: int = 64) -> str:
    """Hex sha256 of ``value`` as canonical JSON (sorted keys), cut to ``length`` characters."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def cache_key(kind: str, files: Iterable[FileIdentity], **params: Any) -> str:
    """The key of a rendering of ``kind`` (``tile``, ``frame``, ``prediction``) from ``files``
    with the request's ``params`` (JSON-serialisable)."""
    return digest([RENDER_VERSION, kind, list(files), params])


def etag(key: str) -> str:
    """The (strong) HTTP entity tag of the PNG under ``key``."""
    return f'"{key[:32]}"'


def etag_matches(if_none_match: str | None, key: str) -> bool:
    """Whether an ``If-None-Match`` header names the PNG under ``key`` (or is ``*``)."""
    if not if_none_match:
        return False
    tag = etag(key)
    for part in if_none_match.split(","):
        part = part.strip()
        if part == "*" or part == tag or part.removeprefix("W/") == tag:
            return True
    return False


class TileCache:
    """PNG bytes by key: an in-process LRU (``memory_bytes``) over a folder (``max_bytes``)."""

    def __init__(
        self,
        root: str | Path,
        *,
        max_bytes: int,
        memory_bytes: int = 64 * 2**20,
        enabled: bool = True,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.memory_bytes = int(memory_bytes)
        self.enabled = enabled and self.max_bytes > 0
        self._memory: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._memory_used = 0
        self._lock = threading.Lock()
        self._disk_used: int | None = None  # this process's estimate; None until the first scan
        self._evict_lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}

    # --- lookups --------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def get(self, key: str) -> bytes | None:
        """The PNG under ``key``, or None; a hit on disk is kept in memory too."""
        if not self.enabled:
            return None
        now = time.monotonic()
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
                if now - entry[1] > TOUCH_EVERY_S:
                    self._memory[key] = (entry[0], now)
        if entry is not None:
            if now - entry[1] > TOUCH_EVERY_S:
                self._touch(key)
            return entry[0]
        path = self.path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        self._touch(key)
        self._remember(key, data)
        return data

    def peek(self, key: str) -> bytes | None:
        """The PNG under ``key`` if this process holds it in memory (no disk access: safe in an
        event loop), else None."""
        if not self.enabled:
            return None
        with self._lock:
            entry = self._memory.get(key)
            if entry is None:
                return None
            self._memory.move_to_end(key)
        if time.monotonic() - entry[1] > TOUCH_EVERY_S:
            return None  # let get() refresh the file's recency
        return entry[0]

    def get_or_render(self, key: str, render: Callable[[], bytes]) -> tuple[bytes, bool]:
        """``(png, hit)``: the cached PNG, or ``render()`` stored under ``key``. Concurrent
        misses of one key in this process render once (the others wait for it)."""
        if not self.enabled:
            return render(), False
        data = self.get(key)
        if data is not None:
            return data, True
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            data = self.get(key)  # rendered by the thread we waited for
            if data is not None:
                return data, True
            try:
                data = render()
                self.put(key, data)
            finally:
                with self._lock:
                    self._inflight.pop(key, None)
        return data, False

    # --- writes ---------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``: atomically on disk (temp file + ``os.replace``), and in
        memory; then evict if the folder is over its bound."""
        if not self.enabled:
            return
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._remember(key, data)
        if self._disk_used is None:
            self._disk_used = self._scan()[0]
        else:
            self._disk_used += len(data)
        if self._disk_used > self.max_bytes:
            self.evict()

    def evict(self) -> int:
        """Delete the least recently used files until the folder holds at most ``LOW_WATER``
        of ``max_bytes`` (when it holds more than ``max_bytes``); returns the files deleted."""
        if not self._evict_lock.acquire(blocking=False):
            return 0  # another thread of this process is at it
        try:
            used, files = self._scan()
            deleted = 0
            if used > self.max_bytes:
                files.sort(key=lambda f: f[0])  # oldest mtime first
                target = int(self.max_bytes * LOW_WATER)
                for _, size, path in files:
                    if used <= target:
                        break
                    with contextlib.suppress(FileNotFoundError):  # another process was first
                        os.unlink(path)
                    used -= size
                    deleted += 1
            self._disk_used = used
            return deleted
        finally:
            self._evict_lock.release()

    def disk_bytes(self) -> int:
        """Bytes of PNGs in the folder now (a scan)."""
        return self._scan()[0]

    # --- internals ------------------------------------------------------------------------
    def _scan(self) -> tuple[int, list[tuple[int, int, str]]]:
        """(total bytes, [(mtime_ns, size, path)]) of the folder's PNGs; deletes stale temps."""
        total, files = 0, []
        now = time.time()
        try:
            subdirs = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0, []
        for sub in subdirs:
            if not sub.is_dir():
                continue
            try:
                entries = list(os.scandir(sub.path))
            except FileNotFoundError:
                continue
            for e in entries:
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                if e.name.endswith(".png") and not e.name.startswith("."):
                    total += st.st_size
                    files.append((st.st_mtime_ns, st.st_size, e.path))
                elif e.name.endswith(".tmp") and now - st.st_mtime > STALE_TMP_S:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
        return total, files

    def _touch(self, key: str) -> None:
        # evicted meanwhile: the memory copy is still right (same key, same bytes)
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(key))

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.memory_bytes:
            return
        with self._lock:
            old = self._memory.pop(key, None)
            if old is not None:
                self._memory_used -= len(old[0])
            self._memory[key] = (data, time.monotonic())
            self._memory_used += len(data)
            while self._memory_used > self.memory_bytes:
                _, (gone, _) = self._memory.popitem(last=False)
                self._memory_used -= len(gone)
