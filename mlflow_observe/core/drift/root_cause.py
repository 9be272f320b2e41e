"""Which drift matters: features ranked by impact x drift, and prediction drift explained.

**Ranking** (needs only the baseline's recorded impact, see
:mod:`mlflow_observe.core.profile.feature_impact`)::

    score = importance / sum(importances) * min(severity, 10)

where ``severity`` is the column's
:attr:`~mlflow_observe.core.drift.column.ColumnDrift.severity` (the statistic over its
threshold, or the threshold over the p-value; 1 at the threshold). It is capped at 10 so
that a vanishing p-value does not outweigh the importance. A drifted feature the model
ignores scores 0.

**Explanation** (needs the model at evaluation): the prediction shift is the
distance between the model's predictions on the baseline's row sample and on
the window's row sample (Wasserstein-1 over the reference predictions' standard
deviation for numbers, Jensen-Shannon distance for labels). For each of the
``top`` ranked features, that feature alone is reset to its reference
distribution (its window values replaced by values drawn, seeded, from the
baseline's row sample), the model predicts again, and ``explained`` is the
share of the shift that goes away: ``(shift - shift_reset) / shift``. Shares
of different features need not add up to 1 (features interact). A model that
fails on the resampled rows leaves the explanation out, with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mlflow_observe.core.drift.options import FEATURE, SKIPPED
from mlflow_observe.core.drift.univariate import DriftResult
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.feature_impact import (
    FeatureImpact,
    is_numeric_output,
    predictions_array,
)
from mlflow_observe.core.stats import jensen_shannon, wasserstein_exact

SEVERITY_CAP = 10.0
DEFAULT_TOP = 5
# Window rows the model predicts on for each reset feature.
EXPLAIN_ROWS = 2000
_PREFIX = "drift/impact/"


@dataclass(frozen=True)
class ImpactRank:
    """One feature's place in the impact x drift ranking."""

    column: str
    importance: float
    severity: float
    score: float
    drifted: bool
    explained: float | None = None


@dataclass(frozen=True)
class DriftImpact:
    """Features ranked by impact x drift, and the share of prediction drift each explains.

    Attributes
    ----------
    ranking : list of ImpactRank
        Highest score first.
    prediction_shift : float or None
        The distance between reference and window predictions (None without a model).
    shift_method : str or None
        ``'wasserstein'`` or ``'js'``.
    notes : dict of str to str
        What was left out and why.
    """

    ranking: list
    prediction_shift: float | None = None
    shift_method: str | None = None
    notes: dict = field(default_factory=dict)

    @property
    def top_feature(self) -> str | None:
        """The highest-scoring feature, when any scores above 0."""
        return self.ranking[0].column if self.ranking and self.ranking[0].score > 0 else None

    def metrics(self) -> dict[str, float]:
        metrics = {}
        if self.ranking:
            metrics[_PREFIX + "top_score"] = float(self.ranking[0].score)
        if self.prediction_shift is not None:
            metrics[_PREFIX + "prediction_shift"] = float(self.prediction_shift)
        return {k: v for k, v in metrics.items() if np.isfinite(v)}

    def to_records(self) -> list[dict]:
        """One record per ranked feature, highest score first."""
        return [asdict(r) for r in self.ranking]

    def to_dict(self) -> dict:
        """The ``drift_impact.json`` artifact: the ranking, the prediction shift and the notes."""
        return {
            "ranking": self.to_records(),
            "prediction_shift": self.prediction_shift,
            "shift_method": self.shift_method,
            "top_feature": self.top_feature,
            "notes": dict(self.notes),
        }


def rank_by_impact(impact: FeatureImpact, drift: DriftResult) -> list[ImpactRank]:
    """Rank the compared features by normalised importance x capped severity.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.comparison import compare
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x1": rng.normal(size=3000), "x2": rng.normal(size=3000)})
    >>> window = reference + 1.0
    >>> impact = FeatureImpact({"x1": 0.9, "x2": 0.0})
    >>> [r.column for r in rank_by_impact(impact, compare(build_profile(reference), window).drift)]
    ['x1', 'x2']
    """
    weights = impact.normalised()
    ranking = []
    for column in drift.columns:
        if column.role != FEATURE or column.status == SKIPPED or column.column not in weights:
            continue
        severity = min(column.severity, SEVERITY_CAP)
        ranking.append(
            ImpactRank(
                column.column,
                weights[column.column],
                float(severity),
                float(weights[column.column] * severity),
                column.drifted,
            )
        )
    return sorted(ranking, key=lambda r: (-r.score, -r.severity, r.column))


def explain_prediction_drift(
    predict,
    baseline: DataProfile,
    current: DataProfile,
    ranking: list,
    *,
    top: int = DEFAULT_TOP,
    present_columns=None,
    random_state: int = 0,
) -> DriftImpact:
    """Measure how much of the prediction shift each top feature's drift accounts for.

    Parameters
    ----------
    predict : callable
        The model: a DataFrame of the feature columns in, one prediction per row out.
    baseline, current : DataProfile
        Their row samples are what the model predicts on.
    ranking : list of ImpactRank
        From :func:`rank_by_impact`; the first ``top`` are explained.
    present_columns : collection of str, optional
        The columns the window had (default: every column of its profile).

    Returns
    -------
    DriftImpact
    """
    present = set(current.columns) if present_columns is None else set(present_columns)
    columns = [c for c in baseline.feature_names if c in present]
    reference = model_inputs(baseline, columns)
    window = model_inputs(current, columns)
    rng = np.random.default_rng(random_state)
    if len(window) > EXPLAIN_ROWS:
        window = window.iloc[np.sort(rng.choice(len(window), EXPLAIN_ROWS, replace=False))]
    window = window.reset_index(drop=True)
    if len(reference) == 0 or len(window) == 0:
        return DriftImpact(ranking, notes={"explanation": "no rows in a row sample"})
    try:
        ref_pred = predictions_array(predict(reference), len(reference))
        win_pred = predictions_array(predict(window), len(window))
        method, distance = _shift_measure(ref_pred)
        shift = distance(ref_pred, win_pred)
    except Exception as exc:  # the model cannot predict on the samples: no explanation
        return DriftImpact(
            ranking, notes={"explanation": f"the model failed on the row samples: {exc!r}"}
        )
    explained = {}
    notes = {}
    for rank in ranking[:top]:
        reset = window.copy()
        reset[rank.column] = reference[rank.column].to_numpy()[
            rng.integers(0, len(reference), len(window))
        ]
        try:
            after = distance(ref_pred, predictions_array(predict(reset), len(reset)))
        except Exception as exc:  # a model that rejects resampled rows: this feature unexplained
            notes[rank.column] = f"the model failed on resampled inputs: {exc!r}"
            continue
        explained[rank.column] = (shift - after) / shift if shift > 0 else 0.0
    ranking = [_with_explained(r, explained.get(r.column)) for r in ranking]
    return DriftImpact(ranking, prediction_shift=float(shift), shift_method=method, notes=notes)


def model_inputs(profile: DataProfile, columns) -> pd.DataFrame:
    """The row sample's values as the model saw them: each column's dtype inferred again.

    The sample keeps raw values (integers stay integers, booleans booleans),
    which matters to models that enforce an input schema.

    Examples
    --------
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> profile = build_profile(pd.DataFrame({"n": [1, 2, 3], "ok": [True, False, True]}))
    >>> model_inputs(DataProfile.from_json(profile.to_json()), ["n", "ok"]).dtypes.tolist()
    [dtype('int64'), dtype('bool')]
    """
    return pd.DataFrame(
        {c: pd.Series(profile.sample.values(c), dtype=object).infer_objects() for c in columns},
        columns=list(columns),
    )


def _shift_measure(reference_predictions: np.ndarray):
    """The distance between prediction distributions, chosen by the predictions' type."""
    if is_numeric_output(reference_predictions):
        scale = float(np.nanstd(reference_predictions.astype(float)))
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0

        def wasserstein(ref, cur):
            ref, cur = _finite(ref), _finite(cur)
            if not len(ref) or not len(cur):
                raise ValueError("the model gave no finite predictions")
            return wasserstein_exact(ref, cur).statistic / scale

        return "wasserstein", wasserstein

    def js(ref, cur):
        labels = pd.unique(pd.Series([*map(str, ref), *map(str, cur)]))

        def count(v):
            return pd.Series(list(map(str, v))).value_counts().reindex(labels, fill_value=0)

        return jensen_shannon(count(ref).to_numpy(), count(cur).to_numpy()).statistic

    return "js", js


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _with_explained(rank: ImpactRank, explained) -> ImpactRank:
    return ImpactRank(
        rank.column,
        rank.importance,
        rank.severity,
        rank.score,
        rank.drifted,
        None if explained is None else float(explained),
    )
