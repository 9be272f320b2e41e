"""Compare a production window with a baseline: drift and integrity in one pass over the rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlflow_observe.core.drift import DriftOptions, DriftResult, compare_profiles
from mlflow_observe.core.integrity import IntegrityResult, check_integrity
from mlflow_observe.core.profile import DataProfile


class EmptyWindowError(ValueError):
    """The production window has no rows to compare."""


@dataclass(frozen=True)
class WindowComparison:
    """Drift and integrity of one window against its baseline.

    Attributes
    ----------
    drift : DriftResult
    integrity : IntegrityResult
    current : DataProfile
        The window's counts in the baseline's bins (used for the plots).
    """

    drift: DriftResult
    integrity: IntegrityResult
    current: DataProfile

    def metrics(self) -> dict[str, float]:
        return {**self.drift.metrics(), **self.integrity.metrics()}


def compare(
    baseline: DataProfile, data: pd.DataFrame, options: DriftOptions | None = None,
    *, chunk_size: int | None = None, n_jobs: int | None = None,
) -> WindowComparison:
    """Compare ``data`` (a production window) with ``baseline``.

    Parameters
    ----------
    baseline : DataProfile
        The profile recorded at training time.
    data : pandas.DataFrame
        The window: feature columns, and the prediction and label columns when present.
    options : DriftOptions, optional
    chunk_size : int, optional
        Count the rows this many at a time (the result does not depend on it).
    n_jobs : int, optional
        Threads that count columns (default: every core; 1: no threads).

    Returns
    -------
    WindowComparison

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    >>> window = pd.DataFrame({"x": rng.normal(1.0, 1.0, 5000), "y": rng.normal(size=5000)})
    >>> compare(build_profile(reference), window).drift.drifted_columns
    ['x']
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"The production data must be a pandas DataFrame. Got {type(data).__name__}."
        )
    if len(data) == 0:
        raise EmptyWindowError(
            "The production window has no rows: there is nothing to compare with the baseline. "
            "Check the window's time range or the data source."
        )
    options = options or DriftOptions()
    current = baseline.empty_like()
    step = chunk_size or len(data)
    for start in range(0, len(data), step):
        current.update(data.iloc[start:start + step], n_jobs=n_jobs)
    columns = [str(c) for c in data.columns]
    drift = compare_profiles(baseline, current, options, present_columns=columns)
    integrity = check_integrity(
        baseline, current, columns, missing_rate_tolerance=options.missing_rate_tolerance
    )
    return WindowComparison(drift=drift, integrity=integrity, current=current)
