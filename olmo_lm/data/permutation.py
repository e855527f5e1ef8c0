"""Counter-based randomness: a seeded hash and a seeded permutation that need no stored state.

A data order over billions of instances cannot keep a permutation of them in memory or in a
checkpoint. Here the i-th element of a shuffled order is *computed* from ``(key, i)``:

- ``mix64`` is SplitMix64's finaliser, a bijective 64-bit mixer; ``hash_ints`` chains it over
  several integers (seed, period, round...);
- ``FeistelPermutation(n, key)`` is a bijection of ``[0, n)``: a 4-round balanced Feistel network
  on the smallest even number of bits covering ``n``, with cycle walking (re-apply until the value
  falls below ``n``; the domain is under ``4n``, so under four walks are expected). Any key
  gives a permutation; different keys give unrelated ones.

Both are plain Python integers, identical on every platform and process.
"""

from __future__ import annotations

import zlib

_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64's output function of ``x`` (a bijection of 64-bit integers)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def hash_ints(*values: int) -> int:
    """A 64-bit hash of a tuple of integers (order matters)."""
    h = 0x6A09E667F3BCC909
    for v in values:
        h = mix64(h ^ (v & _MASK64))
    return h


def name_key(name: str) -> int:
    """A stable integer for a name (Python's ``hash`` of a str changes between processes)."""
    return zlib.crc32(name.encode("utf-8"))


class FeistelPermutation:
    """A seeded bijection of ``[0, n)``, evaluated one index at a time in O(1) memory."""

    rounds = 4

    def __init__(self, n: int, key: int) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        bits += bits & 1
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._keys = [hash_ints(key, r) for r in range(self.rounds)]

    def __call__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} outside [0, {self.n})")
        if self.n == 1:
            return 0
        x = i
        while True:
            left, right = x >> self._half, x & self._mask
            for k in self._keys:
                left, right = right, left ^ (mix64(k ^ right) & self._mask)
            x = (left << self._half) | right
            if x < self.n:
                return x
