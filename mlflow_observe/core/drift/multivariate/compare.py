"""The multivariate detectors on a baseline and a window: their row samples, not their rows.

Both profiles carry a bounded uniform row sample (``sample_size`` rows, 5000
by default, set when the baseline is recorded; the window's sample has the
same capacity and is merged part by part when the window is streamed). The
detectors of :mod:`mlflow_observe.core.drift.multivariate` compare the two samples
over the feature columns that the window has (not the prediction or target),
in the kinds the baseline recorded. A detector that cannot run (a sample too
small, too few dimensions) is left out with the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mlflow_observe.core.drift.multivariate.domain_classifier import (
    DomainClassifierResult,
    domain_classifier_drift,
)
from mlflow_observe.core.drift.multivariate.reconstruction import (
    ReconstructionResult,
    reconstruction_drift,
)
from mlflow_observe.core.drift.records import detector_record
from mlflow_observe.core.profile.columns import category_label
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.kinds import NUMERIC

DOMAIN, RECONSTRUCTION = "domain_classifier", "pca_reconstruction"
ROLE = "multivariate"
_PREFIX = "drift/multivariate/"


@dataclass(frozen=True)
class MultivariateDrift:
    """The multivariate detectors' results for one window.

    Attributes
    ----------
    domain : DomainClassifierResult or None
    reconstruction : ReconstructionResult or None
        None when the detector could not run; ``notes`` says why.
    columns : tuple of str
        The feature columns compared.
    notes : dict of str to str
        Detector name to the reason it was left out.
    """

    domain: DomainClassifierResult | None
    reconstruction: ReconstructionResult | None
    columns: tuple
    notes: dict = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """``drift/multivariate/...`` metrics of the detectors that ran."""
        metrics = {}
        if self.domain is not None:
            metrics[_PREFIX + "domain_auc"] = float(self.domain.statistic)
            metrics[_PREFIX + "domain_drifted"] = float(self.domain.drifted)
        if self.reconstruction is not None:
            metrics[_PREFIX + "reconstruction_error"] = float(self.reconstruction.statistic)
            metrics[_PREFIX + "reconstruction_drifted"] = float(self.reconstruction.drifted)
        return {k: v for k, v in metrics.items() if np.isfinite(v)}

    def to_records(self) -> list[dict]:
        """One record per detector, with the keys of the per-column drift records."""
        return [
            _record(DOMAIN, "domain_auc", self.domain, self),
            _record(RECONSTRUCTION, "reconstruction_error", self.reconstruction, self),
        ]


def multivariate_drift(
    baseline: DataProfile, current: DataProfile, *, present_columns=None, random_state: int = 0
) -> MultivariateDrift:
    """Run both detectors on the baseline's and the window's row samples.

    Parameters
    ----------
    baseline : DataProfile
    current : DataProfile
        The window, counted with ``baseline.empty_like()``.
    present_columns : collection of str, optional
        The columns the window had (default: every column of its profile).
    random_state : int, default=0

    Returns
    -------
    MultivariateDrift

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> def frame(rho, n=1000):
    ...     x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    ...     return pd.DataFrame({"a": x[:, 0], "b": x[:, 1]})
    >>> baseline = build_profile(frame(0.9))
    >>> window = baseline.empty_like()
    >>> window.update(frame(-0.9))
    >>> result = multivariate_drift(baseline, window)
    >>> result.metrics()["drift/multivariate/domain_drifted"]
    1.0
    >>> result.notes
    {}
    """
    reference, window, categorical = feature_samples(
        baseline, current, present_columns=present_columns
    )
    columns = list(reference.columns)
    notes = {}
    results = {}
    for name, detector in (
        (DOMAIN, domain_classifier_drift),
        (RECONSTRUCTION, reconstruction_drift),
    ):
        if not columns:
            notes[name] = "no feature columns to compare"
            continue
        try:
            results[name] = detector(
                reference, window, categorical=categorical, random_state=random_state
            )
        except ValueError as exc:  # too few rows or dimensions: left out, with the reason
            notes[name] = str(exc)
            warnings.warn(
                f"Multivariate drift: {name} left out: {exc}", RuntimeWarning, stacklevel=2
            )
    return MultivariateDrift(
        domain=results.get(DOMAIN),
        reconstruction=results.get(RECONSTRUCTION),
        columns=tuple(columns),
        notes=notes,
    )


def feature_samples(baseline: DataProfile, current: DataProfile, *, present_columns=None):
    """The baseline's and the window's row samples over the feature columns to compare.

    The feature columns the window has (not the prediction or target) and whose
    reference sample has a value. Returns the two frames and the names of the
    categorical columns among them.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0], "plan": ["a", "b", "a"]}))
    >>> window = baseline.empty_like()
    >>> window.update(pd.DataFrame({"x": [5.0], "plan": ["b"]}))
    >>> reference, current, categorical = feature_samples(baseline, window)
    >>> reference.shape, current.shape, categorical
    ((3, 2), (1, 2), ['plan'])
    """
    present = set(current.columns) if present_columns is None else set(present_columns)
    columns = [c for c in baseline.feature_names if c in present]
    reference = _sample_frame(baseline, columns)
    window = _sample_frame(current, columns)
    # A column with no values in the reference sample carries nothing to compare.
    columns = [c for c in columns if reference[c].notna().any()]
    categorical = [c for c in columns if baseline.columns[c].kind != NUMERIC]
    return reference[columns], window[columns], categorical


def _sample_frame(profile: DataProfile, columns: list[str]) -> pd.DataFrame:
    """The row sample as a frame: numbers as floats, categories as the profile's labels."""
    data = {}
    for column in columns:
        values = pd.Series(profile.sample.values(column), dtype=object)
        kind = profile.columns[column].kind
        if kind == NUMERIC:
            data[column] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            labels = np.array([category_label(v, kind) for v in uniques] + [None], dtype=object)
            data[column] = labels[codes]
    return pd.DataFrame(data, columns=columns)


def _record(name, statistic_name, result, drift: MultivariateDrift) -> dict:
    statistics = {"columns": list(drift.columns)}
    if result is not None:
        statistics = {**asdict(result), **statistics}
    return detector_record(
        name,
        result,
        metric_name="multivariate",
        role=ROLE,
        kind=ROLE,
        method=statistic_name,
        statistics=statistics,
        note=drift.notes.get(name),
        metric_key=_PREFIX + statistic_name,
    )
