"""Checks shared by the count-based statistics."""

from __future__ import annotations

import numpy as np


def as_count_pair(reference, current, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate two count vectors over the same bins and return them as float arrays."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if reference.ndim != 1 or reference.shape != current.shape:
        raise ValueError(
            f"{caller}: reference and current counts must be 1-d over the same bins. "
            f"Got shapes {reference.shape} and {current.shape}."
        )
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(current))):
        raise ValueError(f"{caller}: counts must be finite.")
    if np.any(reference < 0) or np.any(current < 0):
        raise ValueError(f"{caller}: counts must be non-negative.")
    if reference.sum() == 0 or current.sum() == 0:
        raise ValueError(f"{caller}: both samples need at least one value.")
    return reference, current


def check_sample_size(n, caller: str) -> float:
    """A sample size given for a test's p-value: a finite number > 0."""
    n = float(n)
    if not (np.isfinite(n) and n > 0):
        raise ValueError(f"{caller}: sample sizes must be finite and > 0. Got {n!r}.")
    return n


def rescaled(counts: np.ndarray, n, caller: str) -> np.ndarray:
    """Counts scaled to sum to ``n`` (Kish's effective size of weighted counts), or as they are."""
    if n is None:
        return counts
    return counts * (check_sample_size(n, caller) / counts.sum())
