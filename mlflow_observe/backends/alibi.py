"""alibi-detect's drift detectors on the baseline's and the window's row samples.

The only module of the package that imports ``alibi_detect``, and only inside
the functions that run a detector: alibi-detect is under the Business Source
License 1.1 and pins ``numpy<2``, so it is an optional extra
(``pip install 'mlflow-observe[alibi]'``) that the rest of the package never needs.

Detectors are asked for by name, ``DriftOptions(detectors=["alibi:mmd", ...])``
(the evaluator config key ``detectors``). Each runs once per window on the same
bounded row samples as the core's multivariate detectors, over the feature
columns the window has, and gives one record in the drift table and metrics
``drift/alibi/<detector>/...``:

============== ===================================== =========================================
name           alibi-detect class                    columns, as numbers
============== ===================================== =========================================
``mmd``        ``MMDDrift`` (PyTorch, CPU)           all: numbers standardised on the reference,
``lsdd``       ``LSDDDrift`` (PyTorch, CPU)          categories one 0/1 indicator per label
``classifier`` ``ClassifierDrift`` (scikit-learn)    the same
``ks``         ``KSDrift``                           numeric columns
``cvm``        ``CVMDrift``                          numeric columns
``chi2``       ``ChiSquareDrift``                    categorical columns, as category codes
``fet``        ``FETDrift`` (two-sided)              columns of at most two labels, as 0/1
``tabular``    ``TabularDrift``                      numeric (KS) and categorical (chi-square)
============== ===================================== =========================================

The feature-wise detectors (``ks``, ``cvm``, ``chi2``, ``fet``, ``tabular``)
test each column and decide with alibi-detect's Bonferroni correction; their
record's p-value is the smallest column p-value and its threshold the
corrected one. Categories are coded by the reference's vocabulary
(:class:`~mlflow_observe.core.drift.multivariate.encoding.FeatureEncoding`): a label outside it
and a missing label each get a code of their own. alibi-detect takes no
missing numbers, so a sample row with a missing or infinite number in the
columns a detector uses is left out of that detector (the record counts them).

``alibi:mmd`` also judges each **embedding column** of the baseline (a column
of vectors, or a declared group of columns) on its own bounded vector samples
(the profile's ``embedding_sample_size``, 1,000 vectors by default): the
vectors as they are, a Gaussian kernel whose bandwidth is set from the median
distance between reference vectors, and a permutation test. Each embedding gets one record (column
``alibi:mmd:<embedding>``, kind ``embedding``) and metrics
``drift/<embedding>/embedding_alibi_mmd_pvalue``, ``..._drifted`` and
``..._distance``. Like the other detectors, they do not change the column's
verdict, which stays the core's domain classifier's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlflow_observe.backends import ALIBI_DETECTORS, ALIBI_EMBEDDING_STATISTICS
from mlflow_observe.core.drift.multivariate.compare import feature_samples
from mlflow_observe.core.drift.multivariate.encoding import FeatureEncoding
from mlflow_observe.core.drift.records import detector_record
from mlflow_observe.core.naming import assign_metric_names
from mlflow_observe.core.profile.data_profile import DataProfile

INSTALL_COMMAND = "pip install 'mlflow-observe[alibi]'"
# PyTorch's CPU build is far smaller than its default CUDA one.
TORCH_COMMAND = "pip install torch (its CPU build, from PyTorch's own CPU wheel index)"
# Detectors that need a deep-learning backend; PyTorch's CPU build is the one used.
NEEDS_TORCH = ("alibi:mmd", "alibi:lsdd")
FEATURE_WISE = ("alibi:ks", "alibi:cvm", "alibi:chi2", "alibi:fet", "alibi:tabular")
# Fewer sample rows than this on either side and a detector is left out.
MIN_ROWS = 10
ROLE = "alibi"
_PREFIX = "drift/alibi/"
# The detector that also judges each embedding column on its vector samples.
EMBEDDING_DETECTOR = "alibi:mmd"


class BackendNotInstalledError(ImportError):
    """A detector was asked for whose library is not installed."""


def check_installed(detectors) -> None:
    """Raise :class:`BackendNotInstalledError`, with the install command, if a detector cannot run.

    Looks the libraries up without importing them.

    Examples
    --------
    >>> check_installed([])
    """
    detectors = list(detectors)
    if detectors and importlib.util.find_spec("alibi_detect") is None:
        raise BackendNotInstalledError(
            f"The detectors {detectors} need alibi-detect, which is not installed. Install the "
            f"extra in its own environment (alibi-detect needs numpy<2): {INSTALL_COMMAND}"
        )
    torch_detectors = [d for d in detectors if d in NEEDS_TORCH]
    if torch_detectors and importlib.util.find_spec("torch") is None:
        raise BackendNotInstalledError(
            f"The detectors {torch_detectors} need PyTorch, which is not installed: {TORCH_COMMAND}"
        )


@dataclass(frozen=True)
class DetectorResult:
    """One alibi-detect detector's verdict on a window.

    Attributes
    ----------
    name : str
        ``alibi:<detector>``.
    statistic : float
        The detector's distance (feature-wise: the distance of the column with
        the smallest p-value).
    pvalue : float
        The p-value (feature-wise: the smallest column p-value).
    threshold : float
        The p-value below which it drifts (feature-wise: Bonferroni-corrected).
    drifted : bool
    n_reference, n_current : int
        Sample rows used.
    columns : tuple of str
    features : dict
        Feature-wise detectors: column to ``{"distance", "pvalue"}``.
    extras : dict
        What else the detector reported, and the rows left out.
    """

    name: str
    statistic: float
    pvalue: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    columns: tuple
    features: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AlibiDrift:
    """The alibi-detect detectors' results for one window.

    Attributes
    ----------
    results : dict of str to DetectorResult
        The detectors that ran, by name.
    detectors : tuple of str
        Every detector asked for, in order.
    notes : dict of str to str
        Detector name to the reason it was left out.
    embeddings : dict of str to DetectorResult
        ``alibi:mmd`` on each embedding column's vector samples, by embedding name.
    embedding_notes : dict of str to str
        Embedding name to the reason ``alibi:mmd`` left it out.
    metric_names : dict of str to str
        Every embedding ``alibi:mmd`` was asked to judge, in the baseline's
        order, to its metric-safe name (as in its other ``drift/<column>/`` keys).
    """

    results: dict
    detectors: tuple
    notes: dict = field(default_factory=dict)
    embeddings: dict = field(default_factory=dict)
    embedding_notes: dict = field(default_factory=dict)
    metric_names: dict = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """``drift/alibi/<detector>/pvalue``, ``.../drifted`` (and ``.../distance``), never NaN.

        Examples
        --------
        >>> result = DetectorResult(name="alibi:mmd", statistic=0.05, pvalue=0.0,
        ...                         threshold=0.05, drifted=True, n_reference=500,
        ...                         n_current=500, columns=("x",))
        >>> metrics = AlibiDrift(results={"alibi:mmd": result}, detectors=("alibi:mmd",)).metrics()
        >>> for key, value in metrics.items():
        ...     print(key, value)
        drift/alibi/mmd/pvalue 0.0
        drift/alibi/mmd/drifted 1.0
        drift/alibi/mmd/distance 0.05

        An embedding column judged by ``alibi:mmd`` has keys of its own:

        >>> doc = DetectorResult(name="alibi:mmd", statistic=0.2, pvalue=0.0, threshold=0.05,
        ...                      drifted=True, n_reference=1000, n_current=300, columns=("doc",))
        >>> drift = AlibiDrift(results={}, detectors=("alibi:mmd",), embeddings={"doc": doc},
        ...                    metric_names={"doc": "doc"})
        >>> drift.metrics()["drift/doc/embedding_alibi_mmd_drifted"]
        1.0
        """
        metrics = {}
        for name, result in self.results.items():
            prefix = _PREFIX + name.split(":", 1)[1] + "/"
            metrics[prefix + "pvalue"] = float(result.pvalue)
            metrics[prefix + "drifted"] = float(result.drifted)
            if name not in FEATURE_WISE:  # one distance for the whole table
                metrics[prefix + "distance"] = float(result.statistic)
        for embedding, result in self.embeddings.items():
            pvalue, drifted, distance = _embedding_keys(self.metric_names.get(embedding, embedding))
            metrics[pvalue] = float(result.pvalue)
            metrics[drifted] = float(result.drifted)
            metrics[distance] = float(result.statistic)
        return {k: v for k, v in metrics.items() if np.isfinite(v)}

    def to_records(self) -> list[dict]:
        """One record per detector asked for, then one per embedding ``alibi:mmd`` judged,
        with the keys of the per-column drift records."""
        records = [
            _record(name, self.results.get(name), self.notes.get(name)) for name in self.detectors
        ]
        records += [
            _embedding_record(
                embedding,
                metric_name,
                self.embeddings.get(embedding),
                self.embedding_notes.get(embedding),
            )
            for embedding, metric_name in self.metric_names.items()
        ]
        return records


def alibi_drift(
    baseline: DataProfile,
    current: DataProfile,
    detectors,
    *,
    present_columns=None,
    p_val: float = 0.05,
    random_state: int = 0,
) -> AlibiDrift:
    """Run alibi-detect detectors on the baseline's and the window's row samples.

    Parameters
    ----------
    baseline : DataProfile
    current : DataProfile
        The window, counted with ``baseline.empty_like()``.
    detectors : sequence of str
        Names from :data:`mlflow_observe.backends.ALIBI_DETECTORS`.
    present_columns : collection of str, optional
        The columns the window had (default: every column of its profile).
    p_val : float, default=0.05
        The detectors' significance level.
    random_state : int, default=0
        Seeds the permutation tests and the classifier.

    Returns
    -------
    AlibiDrift

    Raises
    ------
    BackendNotInstalledError
        alibi-detect (or, for ``mmd`` and ``lsdd``, PyTorch) is not installed.
    """
    detectors = tuple(detectors)
    unknown = [d for d in detectors if d not in ALIBI_DETECTORS]
    if unknown:
        raise ValueError(
            f"Unknown alibi-detect detectors {unknown}; choose from {', '.join(ALIBI_DETECTORS)}."
        )
    check_installed(detectors)
    reference, window, categorical = feature_samples(
        baseline, current, present_columns=present_columns
    )
    encoding = FeatureEncoding.fit(reference, categorical=categorical)
    results, notes = {}, {}
    for name in detectors:
        try:
            results[name] = _run(name, encoding, reference, window, p_val, random_state)
        except ValueError as exc:  # nothing to compare, too few rows: left out, with the reason
            notes[name] = str(exc)
            warnings.warn(f"alibi-detect: {name} left out: {exc}", RuntimeWarning, stacklevel=2)
    embeddings, embedding_notes, metric_names = {}, {}, {}
    if EMBEDDING_DETECTOR in detectors:
        names = assign_metric_names([*baseline.columns, *baseline.unstructured])
        for embedding, part in baseline.unstructured.items():
            if part.kind != "embedding":
                continue
            metric_names[embedding] = names[embedding]
            window = current.unstructured.get(embedding)
            try:
                embeddings[embedding] = _embedding_mmd(embedding, part, window, p_val, random_state)
            except ValueError as exc:  # too few vectors: left out, with the reason
                embedding_notes[embedding] = str(exc)
                warnings.warn(
                    f"alibi-detect: {EMBEDDING_DETECTOR} left out on {embedding!r}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return AlibiDrift(
        results=results,
        detectors=detectors,
        notes=notes,
        embeddings=embeddings,
        embedding_notes=embedding_notes,
        metric_names=metric_names,
    )


def _embedding_mmd(embedding, part, window, p_val, random_state) -> DetectorResult:
    """MMD on one embedding's baseline and window vector samples (complete vectors only)."""
    x_ref = np.asarray(part.vectors, dtype=np.float32)
    if window is None:
        x_cur = np.empty((0, part.dimension), dtype=np.float32)
    else:
        x_cur = np.asarray(window.vectors, dtype=np.float32)
    if min(len(x_ref), len(x_cur)) < MIN_ROWS:
        raise ValueError(
            f"needs at least {MIN_ROWS} vectors on each side; got {len(x_ref)} in the "
            f"reference and {len(x_cur)} in the window"
        )
    with _torch_settings(EMBEDDING_DETECTOR, random_state):
        detector = _detector(EMBEDDING_DETECTOR, x_ref, p_val, {}, random_state)
        data = detector.predict(x_cur)["data"]
    extras = {"dimension": int(part.dimension)}
    if "distance_threshold" in data:
        extras["distance_threshold"] = float(data["distance_threshold"])
    return DetectorResult(
        name=EMBEDDING_DETECTOR,
        statistic=float(data["distance"]),
        pvalue=float(data["p_val"]),
        threshold=float(data["threshold"]),
        drifted=bool(data["is_drift"]),
        n_reference=len(x_ref),
        n_current=len(x_cur),
        columns=(embedding,),
        extras=extras,
    )


def _embedding_keys(metric_name: str) -> list[str]:
    """``drift/<embedding>/embedding_alibi_mmd_pvalue``, ``..._drifted``, ``..._distance``."""
    return [f"drift/{metric_name}/{statistic}" for statistic in ALIBI_EMBEDDING_STATISTICS]


def _run(name, encoding, reference, window, p_val, random_state) -> DetectorResult:
    columns, x_ref, x_cur, categories = _matrices(name, encoding, reference, window)
    n_dropped = (len(reference) - len(x_ref), len(window) - len(x_cur))
    if min(len(x_ref), len(x_cur)) < MIN_ROWS:
        raise ValueError(
            f"needs at least {MIN_ROWS} sample rows with every number present on each side; "
            f"got {len(x_ref)} in the reference and {len(x_cur)} in the window"
        )
    with _torch_settings(name, random_state):
        detector = _detector(name, x_ref, p_val, categories, random_state)
        data = detector.predict(x_cur)["data"]
    extras = {"rows_left_out": {"reference": n_dropped[0], "current": n_dropped[1]}}
    if "distance_threshold" in data:
        extras["distance_threshold"] = float(data["distance_threshold"])
    common = dict(
        name=name,
        threshold=float(data["threshold"]),
        drifted=bool(data["is_drift"]),
        n_reference=len(x_ref),
        n_current=len(x_cur),
        columns=tuple(columns),
        extras=extras,
    )
    if name not in FEATURE_WISE:
        return DetectorResult(
            statistic=float(data["distance"]), pvalue=float(data["p_val"]), **common
        )
    pvalues = np.asarray(data["p_val"], dtype=float)
    distances = np.asarray(data["distance"], dtype=float)
    features = {
        column: {"distance": float(d), "pvalue": float(p)}
        for column, d, p in zip(columns, distances, pvalues, strict=True)
    }
    first = int(np.argmin(pvalues))
    return DetectorResult(
        statistic=float(distances[first]), pvalue=float(pvalues[first]), features=features, **common
    )


def _matrices(name, encoding: FeatureEncoding, reference: pd.DataFrame, window: pd.DataFrame):
    """The columns a detector sees, the two matrices, and the number of categories of each
    categorical column (by position)."""
    numeric = encoding.numeric_columns
    categorical = [c for c in encoding.columns if c in encoding.categories]
    if name in ("alibi:ks", "alibi:cvm"):
        columns, categories = numeric, {}
        x_ref, x_cur = reference[numeric].to_numpy(float), window[numeric].to_numpy(float)
    elif name == "alibi:chi2":
        columns = categorical
        x_ref, x_cur = (_codes(encoding, f, categorical) for f in (reference, window))
        categories = {j: _n_codes(encoding, c) for j, c in enumerate(categorical)}
    elif name == "alibi:fet":
        columns = [c for c in categorical if len(encoding.categories[c]) <= 2]
        # 1 for the reference's most frequent label, 0 for anything else (or missing).
        x_ref, x_cur = (
            (_codes(encoding, f, columns) == 0).astype(np.int64) for f in (reference, window)
        )
        categories = {}
    elif name == "alibi:tabular":
        columns = numeric + categorical
        x_ref, x_cur = (
            np.hstack([f[numeric].to_numpy(float), _codes(encoding, f, categorical).astype(float)])
            for f in (reference, window)
        )
        categories = {len(numeric) + j: _n_codes(encoding, c) for j, c in enumerate(categorical)}
    else:  # mmd, lsdd, classifier: every column, on one scale
        columns = list(encoding.columns)
        x_ref, x_cur = _embedded(encoding, reference, window)
        categories = {}
    if not columns:
        kind = {
            "alibi:ks": "numeric",
            "alibi:cvm": "numeric",
            "alibi:chi2": "categorical",
            "alibi:fet": "two-label categorical",
        }.get(name, "feature")
        raise ValueError(f"no {kind} columns to compare")
    x_ref, x_cur = _complete_rows(x_ref), _complete_rows(x_cur)
    if categories:  # chi-square wants no category that neither sample has
        x_ref, x_cur, categories = _compact_codes(x_ref, x_cur, categories)
    if name in ("alibi:mmd", "alibi:lsdd", "alibi:ks", "alibi:cvm"):
        x_ref, x_cur = x_ref.astype(np.float32), x_cur.astype(np.float32)
    return columns, x_ref, x_cur, categories


def _codes(encoding: FeatureEncoding, frame: pd.DataFrame, columns) -> np.ndarray:
    """Category codes: the vocabulary's positions, one code for other labels, one for missing."""
    if not columns:
        return np.empty((len(frame), 0), dtype=np.int64)
    sub = FeatureEncoding(
        columns=tuple(columns), categories={c: encoding.categories[c] for c in columns}
    )
    codes, _ = sub.codes(frame[list(columns)])
    missing = np.array([len(encoding.categories[c]) + 1 for c in columns], dtype=float)
    return np.where(np.isnan(codes), missing, codes).astype(np.int64)


def _compact_codes(x_ref, x_cur, categories):
    """Renumber each categorical column's codes to those seen in either sample."""
    x_ref, x_cur, compact = x_ref.copy(), x_cur.copy(), {}
    for j in categories:
        seen, codes = np.unique(np.concatenate([x_ref[:, j], x_cur[:, j]]), return_inverse=True)
        x_ref[:, j], x_cur[:, j] = codes[: len(x_ref)], codes[len(x_ref) :]
        compact[j] = len(seen)
    return x_ref, x_cur, compact


def _n_codes(encoding: FeatureEncoding, column: str) -> int:
    return len(encoding.categories[column]) + 2  # the labels, "other", missing


def _embedded(encoding: FeatureEncoding, reference: pd.DataFrame, window: pd.DataFrame):
    """Numbers standardised by the reference, categories as indicators: one scale for kernels."""
    x_ref, is_indicator = encoding.indicators(reference)
    x_cur, _ = encoding.indicators(window)
    numbers = ~is_indicator
    mean = np.nanmean(x_ref[:, numbers], axis=0) if numbers.any() else np.empty(0)
    std = np.nanstd(x_ref[:, numbers], axis=0) if numbers.any() else np.empty(0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    x_ref[:, numbers] = (x_ref[:, numbers] - mean) / std
    x_cur[:, numbers] = (x_cur[:, numbers] - mean) / std
    return x_ref, x_cur


def _complete_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.isfinite(matrix).all(axis=1)] if matrix.size else matrix


def _detector(name, x_ref, p_val, categories, random_state):
    from alibi_detect import cd  # the one place alibi-detect is imported

    if name == "alibi:ks":
        return cd.KSDrift(x_ref, p_val=p_val, alternative="two-sided")
    if name == "alibi:cvm":
        return cd.CVMDrift(x_ref, p_val=p_val)
    if name == "alibi:chi2":
        return cd.ChiSquareDrift(x_ref, p_val=p_val, categories_per_feature=categories)
    if name == "alibi:fet":
        return cd.FETDrift(x_ref, p_val=p_val, alternative="two-sided")
    if name == "alibi:tabular":
        return cd.TabularDrift(x_ref, p_val=p_val, categories_per_feature=categories)
    if name == "alibi:mmd":
        return cd.MMDDrift(x_ref, backend="pytorch", p_val=p_val, device="cpu")
    if name == "alibi:lsdd":
        return cd.LSDDDrift(x_ref, backend="pytorch", p_val=p_val, device="cpu")
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Gradient-boosted trees need no deep-learning backend; five folds use every row.
    model = HistGradientBoostingClassifier(max_iter=50, random_state=random_state)
    return cd.ClassifierDrift(
        x_ref, model, backend="sklearn", p_val=p_val, n_folds=5, train_size=None, seed=random_state
    )


@contextlib.contextmanager
def _torch_settings(name, random_state):
    """Seed PyTorch (the permutation tests draw from it) and run on one thread.

    One thread, as the core's detectors: on a busy 2-core machine PyTorch's two
    threads made MMD about twice as slow (``benchmarks/README.md``). The
    process's thread count is restored afterwards.
    """
    if name not in NEEDS_TORCH:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.manual_seed(random_state)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _embedding_record(embedding, metric_name, result: DetectorResult | None, note) -> dict:
    statistics = {"columns": [embedding]}
    if result is not None:
        statistics.update(result.extras)
    return detector_record(
        f"{EMBEDDING_DETECTOR}:{embedding}",
        result,
        metric_name=metric_name,
        role=ROLE,
        kind="embedding",
        method=EMBEDDING_DETECTOR,
        statistics=statistics,
        note=note,
        metric_key=_embedding_keys(metric_name)[0],
    )


def _record(name, result: DetectorResult | None, note) -> dict:
    statistics = {}
    if result is not None:
        statistics = {"columns": list(result.columns), **result.extras}
        if result.features:
            statistics["features"] = result.features
    return detector_record(
        name,
        result,
        metric_name="alibi",
        role=ROLE,
        kind="feature-wise" if name in FEATURE_WISE else "multivariate",
        method=name,
        statistics=statistics,
        note=note,
        metric_key=_PREFIX + name.split(":", 1)[1] + "/pvalue",
    )
