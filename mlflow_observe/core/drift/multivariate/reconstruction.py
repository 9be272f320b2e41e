"""Multivariate drift by PCA reconstruction error.

See :mod:`~mlflow_observe.core.drift.multivariate.domain_classifier` for the shared notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from mlflow_observe.core._validation import Interval, checked
from mlflow_observe.core.drift.multivariate._common import (
    _COMMON,
    _check_sizes,
)
from mlflow_observe.core.drift.multivariate.encoding import FeatureEncoding
from mlflow_observe.core.stats.auc import CONFIDENCE


@dataclass(frozen=True)
class ReconstructionResult:
    """The window's PCA reconstruction error against the reference's.

    Attributes
    ----------
    statistic : float
        The window's mean reconstruction error (Euclidean, standardised units).
    pvalue : float
        One-sided p-value of the rise over the reference error (normal approximation).
    threshold : float
        The error above which the window drifts.
    drifted : bool
    interval : tuple of float
        95% interval of the window's mean error.
    reference_error : float
        Mean error of the reference rows, each scored by a model that did not see it.
    chunk_errors : tuple of float
        Mean error of each left-out reference chunk.
    n_components, n_dimensions : int
        Components kept, of the encoded dimensions.
    variance_kept : float
        Share of the reference variance the kept components explain.
    n_reference, n_current : int
    """

    statistic: float
    pvalue: float
    threshold: float
    drifted: bool
    interval: tuple
    reference_error: float
    chunk_errors: tuple
    n_components: int
    n_dimensions: int
    variance_kept: float
    n_reference: int
    n_current: int


@checked(
    {
        **_COMMON,
        "variance": [Interval(float, 0, 1, closed="neither")],
        "n_chunks": [Interval(int, 2, 20)],
        "min_increase": [Interval(float, 0, None)],
    }
)
def reconstruction_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    categorical=None,
    variance: float = 0.9,
    n_chunks: int = 5,
    alpha: float = 0.001,
    min_increase: float = 0.02,
    random_state: int = 0,
) -> ReconstructionResult:
    """Detect drift by how badly a PCA of the reference reconstructs ``current``.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        The two samples, with the same feature columns (``current`` may have more).
    categorical : list of str, optional
        The categorical columns (default: those whose dtype is not numeric).
    variance : float, default=0.9
        Share of the reference variance the kept components explain.
    n_chunks : int, default=5
        Reference chunks: each is left out of one fit and scored by it.
    alpha : float, default=0.001
        One-sided level of the threshold.
    min_increase : float, default=0.02
        The smallest rise over the reference error, relative to it, that drifts.
    random_state : int, default=0
        Seed of the chunks.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    WindowTooSmallError
        When either sample has fewer than ``MIN_ROWS`` rows.
    ValueError
        When the encoded reference has fewer than two dimensions.

    See Also
    --------
    domain_classifier_drift : the other multivariate detector.

    Notes
    -----
    The encoding, the calibration and the threshold are described in the module
    docstring. The PCA sees only linear structure: a change in a non-linear
    dependence may leave the error unchanged.

    Examples
    --------
    Two features that move together in the reference, and no longer do:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def sample(rho, n=2000):
    ...     x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    ...     return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "noise": rng.normal(size=n)})
    >>> reference = sample(0.9)
    >>> reconstruction_drift(reference, sample(0.0)).drifted
    True
    >>> result = reconstruction_drift(reference, sample(0.9))
    >>> result.drifted, result.n_components, result.n_dimensions
    (False, 2, 3)

    All-categorical data is encoded too:

    >>> plans = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 500),
    ...                       "region": rng.choice(["n", "s"], 500)})
    >>> reconstruction_drift(plans, plans.sample(frac=1, random_state=1)).drifted
    False
    """
    _check_sizes("PCA reconstruction", reference, current)
    encoding = FeatureEncoding.fit(reference, categorical=categorical)
    x_reference, is_indicator = encoding.indicators(reference)
    x_current, _ = encoding.indicators(current)
    n_dimensions = x_reference.shape[1]
    if n_dimensions < 2:
        raise ValueError(
            "PCA reconstruction needs at least two encoded dimensions (two numeric columns, or "
            f"categories); the reference has {n_dimensions}."
        )
    n_components, variance_kept = _components_for(x_reference, is_indicator, variance)
    chunks = np.random.default_rng(random_state).permutation(len(x_reference)) % n_chunks
    reference_errors = np.empty(len(x_reference))
    current_errors = np.zeros(len(x_current))
    for chunk in range(n_chunks):
        held_out = chunks == chunk
        model = _fit_pca(x_reference[~held_out], is_indicator, n_components)
        reference_errors[held_out] = _errors(model, x_reference[held_out])
        current_errors += _errors(model, x_current) / n_chunks
    mean_0, sd_0 = float(reference_errors.mean()), float(reference_errors.std(ddof=1))
    se_null = sd_0 * np.sqrt(1 / len(x_reference) + 1 / len(x_current))
    threshold = mean_0 + max(norm.ppf(1 - alpha) * se_null, min_increase * mean_0)
    statistic = float(current_errors.mean())
    half = (
        norm.ppf(0.5 + CONFIDENCE / 2)
        * float(current_errors.std(ddof=1))
        / np.sqrt(len(current_errors))
    )
    return ReconstructionResult(
        statistic=statistic,
        pvalue=float(norm.sf((statistic - mean_0) / se_null))
        if se_null > 0
        else float(statistic <= mean_0),
        threshold=float(threshold),
        drifted=bool(statistic > threshold),
        interval=(statistic - float(half), statistic + float(half)),
        reference_error=mean_0,
        chunk_errors=tuple(float(reference_errors[chunks == c].mean()) for c in range(n_chunks)),
        n_components=n_components,
        n_dimensions=n_dimensions,
        variance_kept=variance_kept,
        n_reference=len(reference),
        n_current=len(current),
    )


@dataclass(frozen=True)
class _PcaModel:
    centre: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (n_components, n_dimensions), orthonormal rows


def _scaling(x: np.ndarray, is_indicator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale: numbers standardised, indicators divided by sqrt(share) (FAMD)."""
    centre = np.nanmean(x, axis=0)
    centre = np.where(np.isfinite(centre), centre, 0.0)  # a column with no values
    spread = np.where(is_indicator, np.sqrt(np.clip(centre, 0, None)), np.nanstd(x, axis=0))
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return centre, spread


def _standardise(x: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - centre) / scale
    return np.where(np.isnan(z), 0.0, z)  # a missing number takes the reference mean


def _eigen(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the covariance of ``z``."""
    covariance = z.T @ z / max(len(z) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    return np.clip(values[::-1], 0, None), vectors[:, ::-1]


def _components_for(x: np.ndarray, is_indicator: np.ndarray, variance: float) -> tuple[int, float]:
    """Components of the whole reference's PCA that explain ``variance``; never all of them."""
    centre, scale = _scaling(x, is_indicator)
    values, _ = _eigen(_standardise(x, centre, scale))
    total = values.sum()
    if total <= 0:
        return 1, 1.0
    explained = np.cumsum(values) / total
    n_components = int(min(np.searchsorted(explained, variance) + 1, len(values) - 1))
    return n_components, float(explained[n_components - 1])


def _fit_pca(x: np.ndarray, is_indicator: np.ndarray, n_components: int) -> _PcaModel:
    centre, scale = _scaling(x, is_indicator)
    _, vectors = _eigen(_standardise(x, centre, scale))
    return _PcaModel(centre, scale, vectors[:, :n_components].T)


def _errors(model: _PcaModel, x: np.ndarray) -> np.ndarray:
    """Each row's distance to its reconstruction from the kept components."""
    z = _standardise(x, model.centre, model.scale)
    projected = z @ model.components.T
    # |z - z V V'|^2 = |z|^2 - |z V|^2 for orthonormal V.
    squared = np.einsum("ij,ij->i", z, z) - np.einsum("ij,ij->i", projected, projected)
    return np.sqrt(np.clip(squared, 0, None))


# -- shared -------------------------------------------------------------------------------
