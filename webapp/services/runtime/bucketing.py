"""Deterministic weighted bucketing (SPEC §5 step 4): pure functions, no database."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

TWO_64 = 1 << 64


def bucket_value(experiment_id: int, visitor_id: str) -> int:
    """First 8 bytes of SHA-256("{experiment_id}:{visitor_id}") as a big-endian unsigned integer."""
    digest = hashlib.sha256(f"{experiment_id}:{visitor_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def choose_position(h: int, weights: Sequence[int]) -> int:
    """The first position i with h·W < (w_1 + … + w_i)·2^64; integers only, no floats."""
    if not weights or any(w < 1 for w in weights):
        raise ValueError("weights must be positive integers")
    total = sum(weights)
    cumulative = 0
    for position, weight in enumerate(weights):
        cumulative += weight
        if h * total < cumulative * TWO_64:
            return position
    raise AssertionError("unreachable: h < 2^64")


def weight_ranges(weights: Sequence[int]) -> list[tuple[int, int]]:
    """Each position's bucket range [low, high) on 0…2^64, for showing the split."""
    total = sum(weights)
    ranges, cumulative = [], 0
    for weight in weights:
        low = -(-cumulative * TWO_64 // total)
        cumulative += weight
        high = -(-cumulative * TWO_64 // total)
        ranges.append((low, high))
    return ranges


def assign_position(experiment_id: int, visitor_id: str, weights: Sequence[int]) -> int:
    return choose_position(bucket_value(experiment_id, visitor_id), weights)
