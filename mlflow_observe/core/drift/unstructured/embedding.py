"""Drift on embedding columns: three views of a cloud of vectors.

An embedding column holds a fixed-length numeric vector per row (a sentence
encoder's output, say). Its drift is judged on a sample of each side's
vectors, three ways, each with its own statistic:

* **Domain classifier** (the verdict by default): a logistic regression
  learns to tell window vectors from reference vectors; its held-out ROC AUC
  is judged against the null band of :mod:`mlflow_observe.core.stats.auc`, as
  for the multivariate and text detectors. It sees the vectors standardised on
  the reference and the squares of their projections onto random directions
  (``2 d`` of them, at most 256): a linear boundary on the first catches a
  moved mean, on the second a changed spread along some direction, which is
  what a change of correlation between dimensions is, even when every
  dimension keeps its own distribution.
* **Distance between mean vectors**, Euclidean and cosine. Its null distribution
  comes from ``n_permutations`` random re-splits of the pooled vectors (a
  permutation test); the p-value is the share of re-splits at least as far
  apart. A distance drifts when its p-value is at most ``alpha`` *and* the
  Euclidean distance exceeds ``min_shift`` times the reference's root mean
  square spread around its mean (the cosine test uses the same floor), so that
  a shift too small to matter does not alarm on very large samples.
* **Share of drifted components**: each dimension is a numeric column judged
  by the ordinary rule (Kolmogorov-Smirnov on samples up to
  ``small_sample_size`` values, the normalised Wasserstein distance above it,
  threshold 0.1), with the Benjamini-Hochberg correction over the dimensions
  where tests decide; the statistic is the share flagged, drifted above
  ``drift_share``.

The distances and the components see only what each dimension or the mean
shows: a correlation-only change is the domain classifier's to catch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlflow_observe.core._validation import Interval, checked
from mlflow_observe.core.drift.multivariate import MIN_ROWS, WindowTooSmallError
from mlflow_observe.core.profile.embedding import as_vectors
from mlflow_observe.core.stats import benjamini_hochberg, ks_exact
from mlflow_observe.core.stats.auc import HeldOutAUCResult, held_out_auc

__all__ = [
    "EmbeddingDriftResult",
    "MeanDistanceResult",
    "as_vectors",
    "embedding_drift",
    "wasserstein_columns",
]

WASSERSTEIN_THRESHOLD = 0.1
# Random directions whose squared projections the domain classifier sees.
MAX_DIRECTIONS = 256
MAX_CLASSIFIER_ROWS = 10_000  # vectors a side in the domain classifier (see embedding_drift)


@dataclass(frozen=True)
class MeanDistanceResult:
    """The distance between the two samples' mean vectors, with its permutation test.

    Attributes
    ----------
    statistic : float
        The distance (Euclidean, or cosine: 1 - cosine similarity).
    pvalue : float
        Share of random re-splits of the pooled vectors at least as far apart.
    threshold : float
        The smallest distance that drifts: the larger of the re-splits' ``1 - alpha``
        quantile and the floor.
    drifted : bool
    """

    statistic: float
    pvalue: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class EmbeddingDriftResult:
    """An embedding column judged three ways; ``drifted`` is the domain classifier's.

    Attributes
    ----------
    domain : HeldOutAUCResult
        The domain classifier's held-out AUC and band.
    euclidean, cosine : MeanDistanceResult
        The distances between the mean vectors.
    share_drifted_components : float
        Share of the dimensions flagged by the per-column rule.
    components_drifted : bool
        True when that share is above ``drift_share``.
    dimension : int
    n_reference, n_current : int
    """

    domain: HeldOutAUCResult
    euclidean: MeanDistanceResult
    cosine: MeanDistanceResult
    share_drifted_components: float
    components_drifted: bool
    dimension: int
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> bool:
        return self.domain.drifted

    @property
    def statistic(self) -> float:
        return self.domain.statistic

    @property
    def pvalue(self) -> float:
        return self.domain.pvalue

    @property
    def threshold(self) -> float:
        return self.domain.threshold

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """The statistics as metrics, under ``prefix`` (e.g. ``drift/doc/``)."""
        return {
            prefix + "embedding_domain_auc": self.domain.statistic,
            prefix + "embedding_euclidean_distance": self.euclidean.statistic,
            prefix + "embedding_cosine_distance": self.cosine.statistic,
            prefix + "embedding_share_drifted_components": self.share_drifted_components,
            prefix + "drifted": float(self.drifted),
        }


@checked(
    {
        "n_splits": [Interval(int, 2, 20)],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "min_margin": [Interval(float, 0, 0.5, closed="left")],
        "min_shift": [Interval(float, 0, None)],
        "n_permutations": [Interval(int, 19, None)],
        "small_sample_size": [Interval(int, 0, None)],
        "drift_share": [Interval(float, 0, 1, closed="right")],
        "random_state": [Interval(int, 0, None)],
        "max_rows": [Interval(int, 100, None), None],
    }
)
def embedding_drift(
    reference,
    current,
    *,
    n_splits: int = 5,
    alpha: float = 0.001,
    min_margin: float = 0.02,
    min_shift: float = 0.05,
    n_permutations: int = 200,
    small_sample_size: int = 1000,
    drift_share: float = 0.2,
    random_state: int = 0,
    max_rows: int | None = MAX_CLASSIFIER_ROWS,
) -> EmbeddingDriftResult:
    """Judge an embedding column's drift by a domain classifier, mean distances and components.

    Parameters
    ----------
    reference, current : array_like
        2-D arrays (rows x dimensions) or sequences of equal-length vectors.
    n_splits : int, default=5
        Cross-validation folds of the domain classifier.
    alpha : float, default=0.001
        Level of the domain classifier's band; the distances' permutation tests
        use ``max(alpha, 1 / (n_permutations + 1))``.
    min_margin : float, default=0.02
        The AUC band's smallest half-width.
    min_shift : float, default=0.05
        The floor of a drifting mean shift, as a share of the reference's root
        mean square spread.
    n_permutations : int, default=200
        Re-splits of the pooled vectors for the distances' null distribution.
    small_sample_size : int, default=1000
        Up to this many values a side, components are judged by KS tests; above
        it, by the normalised Wasserstein distance.
    drift_share : float, default=0.2
        The share of drifted components above which they call drift.
    random_state : int, default=0
    max_rows : int or None, default=10000
        The domain classifier takes this many vectors a side at most, drawn at
        random (None takes them all); the distances and the components use every
        vector. The held-out AUC test is valid at any size, and its cost grows with
        every vector (five fits).

    Returns
    -------
    EmbeddingDriftResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(500, 16))
    >>> moved = rng.normal(size=(500, 16)) + np.r_[0.4, np.zeros(15)]
    >>> result = embedding_drift(reference, moved)
    >>> result.drifted, result.euclidean.drifted
    (True, True)
    >>> embedding_drift(reference, rng.normal(size=(500, 16))).drifted
    False
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_reference = as_vectors(reference, "reference")
    x_current = as_vectors(current, "window")
    for side, x, hint in (
        ("reference", x_reference, "Use a larger reference (or baseline sample_size)."),
        ("window", x_current, "Use a longer window."),
    ):
        if len(x) < MIN_ROWS:
            raise WindowTooSmallError(
                f"Embedding drift needs at least {MIN_ROWS} complete vectors in the {side} "
                f"sample; it has {len(x)}. {hint}"
            )
    if x_reference.shape[1] != x_current.shape[1]:
        raise ValueError(
            f"The reference vectors have {x_reference.shape[1]} dimensions and the window's "
            f"{x_current.shape[1]}: the embedding changed shape (a new encoder?). Record a "
            "new baseline with the new encoder."
        )
    rng = np.random.default_rng(random_state)
    fit_reference = _at_most(x_reference, max_rows, rng)
    fit_current = _at_most(x_current, max_rows, rng)
    x = np.vstack([fit_reference, fit_current])
    y = np.r_[np.zeros(len(fit_reference), dtype=int), np.ones(len(fit_current), dtype=int)]
    features = _domain_features(x, fit_reference, rng)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    fold_labels, fold_scores = [], []
    for train, test in folds.split(features, y):
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=500)
        )
        fold_labels.append(y[test])
        fold_scores.append(model.fit(features[train], y[train]).decision_function(features[test]))
    domain = held_out_auc(fold_labels, fold_scores, alpha=alpha, min_margin=min_margin)
    euclidean, cosine = _mean_distances(
        x_reference, x_current, rng, n_permutations, max(alpha, 1 / (n_permutations + 1)), min_shift
    )
    share = _share_drifted_components(x_reference, x_current, small_sample_size)
    return EmbeddingDriftResult(
        domain=domain,
        euclidean=euclidean,
        cosine=cosine,
        share_drifted_components=share,
        components_drifted=bool(share > drift_share),
        dimension=int(x.shape[1]),
        n_reference=len(x_reference),
        n_current=len(x_current),
    )


def _at_most(x: np.ndarray, n: int | None, rng) -> np.ndarray:
    """``x``, or ``n`` of its rows drawn at random (in their order) when it has more."""
    if n is None or len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def _domain_features(x: np.ndarray, x_reference: np.ndarray, rng) -> np.ndarray:
    """The vectors, standardised on the reference, and their squared random projections.

    A linear boundary on the vectors sees a moved mean; on the squares of their
    projections onto random directions it also sees a changed spread along those
    directions, which is what a change of correlation between dimensions is.
    """
    center = x_reference.mean(axis=0)
    scale = x_reference.std(axis=0)
    z = (x - center) / np.where(scale > 0, scale, 1.0)
    n_directions = min(2 * x.shape[1], MAX_DIRECTIONS)
    directions = rng.normal(size=(x.shape[1], n_directions)) / np.sqrt(x.shape[1])
    return np.hstack([z, (z @ directions) ** 2])


def _mean_distances(x_reference, x_current, rng, n_permutations, alpha, min_shift):
    pooled = np.vstack([x_reference, x_current])
    n_reference, n = len(x_reference), len(pooled)
    # Every re-split at once: a row of `assign` puts n_reference random rows on the reference side.
    assign = np.zeros((n_permutations, n))
    for row in assign:
        row[rng.choice(n, n_reference, replace=False)] = 1.0
    sums = assign @ pooled
    null_reference = sums / n_reference
    null_current = (pooled.sum(axis=0) - sums) / (n - n_reference)
    center = x_reference.mean(axis=0)
    spread = float(np.sqrt(((x_reference - center) ** 2).sum(axis=1).mean()))
    observed = (x_reference.mean(axis=0), x_current.mean(axis=0))
    results = []
    for distance, floor in (
        (_euclidean, min_shift * spread),
        (_cosine, _cosine_floor(center, min_shift * spread)),
    ):
        statistic = float(distance(*observed))
        null = distance(null_reference, null_current)
        pvalue = float((1 + np.sum(null >= statistic)) / (1 + n_permutations))
        threshold = max(float(np.quantile(null, 1 - alpha)), floor)
        results.append(
            MeanDistanceResult(
                statistic=statistic,
                pvalue=pvalue,
                threshold=threshold,
                drifted=bool(pvalue <= alpha and statistic > floor),
            )
        )
    return results[0], results[1]


def _euclidean(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)


def _cosine(a, b):
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(norms > 0, (a * b).sum(axis=1) / norms, 1.0)
    distance = 1 - np.clip(similarity, -1, 1)
    return distance if distance.size > 1 else distance[0]


def _cosine_floor(center: np.ndarray, shift: float) -> float:
    # The cosine distance a shift of `shift` at right angles to the mean vector would make.
    norm = float(np.linalg.norm(center))
    if norm == 0:
        return 0.0
    return float(1 - norm / np.hypot(norm, shift))


def _share_drifted_components(x_reference, x_current, small_sample_size: int) -> float:
    small = min(len(x_reference), len(x_current)) <= small_sample_size
    if small:
        pvalues = [
            ks_exact(x_reference[:, j], x_current[:, j]).pvalue for j in range(x_reference.shape[1])
        ]
        return float(np.mean(benjamini_hochberg(pvalues).reject))
    scale = x_reference.std(axis=0)
    distances = wasserstein_columns(x_reference, x_current)
    with np.errstate(invalid="ignore", divide="ignore"):
        flagged = (scale > 0) & (
            distances / np.where(scale > 0, scale, 1.0) > WASSERSTEIN_THRESHOLD
        )
    return float(np.mean(flagged))


def wasserstein_columns(a: np.ndarray, b: np.ndarray, block: int = 32) -> np.ndarray:
    """The Wasserstein-1 distance between each column of ``a`` and the same column of ``b``.

    The distance between two samples is the area between their quantile
    functions, which step at ``i / n`` and ``j / m``: the same steps for every
    column, so the columns are sorted once and compared together (what
    ``scipy.stats.wasserstein_distance`` computes column by column).

    >>> a, b = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0], [3.0]])
    >>> round(float(wasserstein_columns(a, b)[0]), 4)  # scipy.stats.wasserstein_distance
    2.1667
    """
    n, m = len(a), len(b)
    steps = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(steps, prepend=0.0)
    middle = steps - widths / 2  # strictly inside a step of both quantile functions
    rows_a = np.minimum((middle * n).astype(np.int64), n - 1)
    rows_b = np.minimum((middle * m).astype(np.int64), m - 1)
    distances = np.empty(a.shape[1])
    for start in range(0, a.shape[1], block):
        part = slice(start, start + block)
        sorted_a, sorted_b = np.sort(a[:, part], axis=0), np.sort(b[:, part], axis=0)
        distances[part] = widths @ np.abs(sorted_a[rows_a] - sorted_b[rows_b])
    return distances
