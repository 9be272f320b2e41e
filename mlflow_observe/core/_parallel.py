"""Run per-column work on several cores (numpy releases the GIL in the hot loops)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# Below this many rows a chunk is counted on one thread: threads would cost more than they save.
MIN_ROWS_FOR_THREADS = 50_000


def effective_n_jobs(n_jobs: int | None) -> int:
    """``None`` or ``-1`` means every core; otherwise at least 1."""
    if n_jobs is None or n_jobs == -1:
        return os.cpu_count() or 1
    return max(1, int(n_jobs))


def parallel_map(func, items, *, n_jobs: int | None, n_rows: int) -> list:
    """``[func(item) for item in items]``, on threads when the data is large enough to pay."""
    items = list(items)
    workers = min(effective_n_jobs(n_jobs), len(items))
    if workers <= 1 or n_rows < MIN_ROWS_FOR_THREADS:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))
