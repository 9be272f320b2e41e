"""What both multivariate detectors share: sizes, validation and threads."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlflow_observe.core._parallel import MIN_ROWS_FOR_THREADS, effective_n_jobs
from mlflow_observe.core._validation import InstanceOf, Interval, NoneValue

# Fewer rows than this on either side and neither detector is worth running.
MIN_ROWS = 100
# Rows of a held-out fold used for permutation importances (a bound on their cost).
MAX_IMPORTANCE_ROWS = 10_000
# Rows each fold's trees learn from (a random subset beyond it): a bound on the fitting cost.
# Every row is still scored, so the AUC and its band use every row.
MAX_TRAINING_ROWS = 30_000

_FRAME = [InstanceOf(pd.DataFrame, description="a pandas DataFrame")]
_COMMON: dict[str, list[Any]] = {
    "reference": _FRAME,
    "current": _FRAME,
    "categorical": [NoneValue(), InstanceOf(list, tuple, description="a list of column names")],
    "alpha": [Interval(float, 0, 1, closed="neither")],
    "random_state": [Interval(int, 0, None)],
}


class WindowTooSmallError(ValueError):
    """A sample has too few rows for a multivariate detector."""


def _threads_for(n_rows: int, n_jobs: int | None):
    """The trees' threads: ``n_jobs`` of them, and one for small samples, where starting
    threads costs more than it saves."""
    from threadpoolctl import threadpool_limits

    threads = effective_n_jobs(n_jobs) if n_rows >= MIN_ROWS_FOR_THREADS else 1
    return threadpool_limits(limits=threads, user_api="openmp")


def _check_sizes(detector: str, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    hints = {
        "reference": "Use a larger reference (or baseline sample_size).",
        "window": "Use a longer window.",
    }
    for side, frame in (("reference", reference), ("window", current)):
        if len(frame) < MIN_ROWS:
            raise WindowTooSmallError(
                f"The {detector} needs at least {MIN_ROWS} rows in the {side} sample; it has "
                f"{len(frame)}. {hints[side]}"
            )
