"""A Bloom filter on a numpy bit array (written here: no Bloom library is installed, and this is
all exact-paragraph dedup needs).

``m = -n ln p / (ln 2)^2`` bits and ``k = (m / n) ln 2`` hashes for ``n`` items at false-positive
rate ``p``. The k bit positions are double hashing of one 128-bit BLAKE2b digest,
``h1 + i * h2 mod m`` (Kirsch & Mitzenmacher), which keeps the rate of k independent hashes.
A false positive marks a unique paragraph as a duplicate; there are no false negatives.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np


class BloomFilter:
    """A set that answers "maybe present" or "surely absent", in ``m / 8`` bytes."""

    def __init__(self, capacity: int, error_rate: float = 1e-6) -> None:
        if not 0 < error_rate < 1:
            raise ValueError("error_rate must lie in (0, 1)")
        capacity = max(1, capacity)
        self.num_bits = max(8, math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2))
        self.num_hashes = max(1, round(self.num_bits / capacity * math.log(2)))
        self.bits = np.zeros(-(-self.num_bits // 8), dtype=np.uint8)
        self._steps = np.arange(self.num_hashes, dtype=np.uint64)

    def _locate(self, item: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(byte index, bit mask) of the item's ``num_hashes`` bits."""
        digest = hashlib.blake2b(item, digest_size=16).digest()
        h1 = np.uint64(int.from_bytes(digest[:8], "little"))
        h2 = np.uint64(int.from_bytes(digest[8:], "little") | 1)
        with np.errstate(over="ignore"):  # wrapping uint64 arithmetic is the intent
            pos = (h1 + self._steps * h2) % np.uint64(self.num_bits)
        return pos >> np.uint64(3), np.left_shift(1, pos & np.uint64(7)).astype(np.uint8)

    def __contains__(self, item: bytes) -> bool:
        byte, bit = self._locate(item)
        return bool(np.all(self.bits[byte] & bit))

    def add(self, item: bytes) -> bool:
        """Insert ``item``; returns whether it was (maybe) present before."""
        byte, bit = self._locate(item)
        present = bool(np.all(self.bits[byte] & bit))
        np.bitwise_or.at(self.bits, byte, bit)
        return present
