"""The baseline profile: everything a later comparison needs, from counts alone.

A :class:`DataProfile` holds one column profile per compared column (bin edges
or categories learned from the reference, and the counts in them), the columns
left out and why, which column holds the target and which the prediction, and
a bounded uniform sample of rows for exact small-sample tests.

The profile of a production window is built with :meth:`DataProfile.empty_like`
of the baseline, so both sides are counted in the same bins.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from mlflow_observe.core._parallel import parallel_map
from mlflow_observe.core._validation import (
    InstanceOf,
    Interval,
    NoneValue,
    Options,
    checked,
)
from mlflow_observe.core.performance.degradation import reference_performance
from mlflow_observe.core.performance.reference import ReferencePerformance
from mlflow_observe.core.profile.columns import (
    CategoricalColumnProfile,
    NumericColumnProfile,
    column_profile_from_dict,
    to_float_array,
)
from mlflow_observe.core.profile.kinds import KINDS, NUMERIC, KindDecision, infer_kind
from mlflow_observe.core.sample import RowSample

PROFILE_FORMAT = "mlflow-observe/profile"
# Version 2 added the model's feature impact ("impact"); version 1 profiles still load.
PROFILE_VERSION = 2
READABLE_VERSIONS = (1, 2)

_NAMES = [NoneValue(), InstanceOf(str, list, tuple, description="a column name or a list of them")]


class ProfileError(ValueError):
    """A profile cannot be built, read or merged."""


class DataProfile:
    """Mergeable sufficient statistics of a table.

    Use :func:`build_profile` to learn a profile from reference data, and
    :meth:`empty_like` then :meth:`update` to count other data in its bins.

    Attributes
    ----------
    columns : dict of str to column profile
        The compared columns, features first, then target and prediction.
    excluded : dict of str to str
        Columns left out, with the reason.
    targets, predictions : str or None
        The names of the label and prediction columns, when recorded.
    n_rows : int
        Rows counted.
    sample : RowSample
        A uniform sample of at most ``settings['sample_size']`` rows.
    performance : ReferencePerformance or None
        The reference's model performance, when recorded with labels and
        predictions (see :mod:`mlflow_observe.core.performance.reference`).
    impact : FeatureImpact or None
        Each feature's impact on the model's predictions, when recorded with a
        model (see :mod:`mlflow_observe.core.profile.feature_impact`).

    Examples
    --------
    >>> import pandas as pd
    >>> whole = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> baseline = build_profile(whole, n_bins=2)
    >>> first, second = baseline.empty_like(), baseline.empty_like()
    >>> first.update(whole.iloc[:1])
    >>> second.update(whole.iloc[1:])
    >>> (first + second).columns["x"].counts.tolist() == baseline.columns["x"].counts.tolist()
    True
    """

    def __init__(
        self,
        columns,
        *,
        excluded=None,
        targets=None,
        predictions=None,
        settings=None,
        performance=None,
    ):
        self.columns = dict(columns)
        self.performance: ReferencePerformance | None = performance
        self.impact = None
        self.excluded = dict(excluded or {})
        self.targets = targets
        self.predictions = predictions
        self.settings = dict(settings or {})
        self.metadata: dict = {}
        self.n_rows = 0
        self._n_updates = 0
        self.sample = RowSample(self.settings.get("sample_size", 5000), list(self.columns))

    def reset(self) -> None:
        """Forget every count, keeping the layout."""
        for column in self.columns.values():
            column.reset()
        self.n_rows = 0
        self._n_updates = 0
        self.sample = RowSample(self.settings.get("sample_size", 5000), list(self.columns))

    # -- building -------------------------------------------------------------------------

    def empty_like(self) -> DataProfile:
        """A profile with the same columns and bins and no counts."""
        return DataProfile(
            {name: column.empty_like() for name, column in self.columns.items()},
            excluded=self.excluded,
            targets=self.targets,
            predictions=self.predictions,
            settings=self.settings,
            performance=self.performance,
        )

    def update(
        self, frame: pd.DataFrame, *, n_jobs: int | None = None, part: int | None = None
    ) -> None:
        """Count the rows of ``frame``. Columns it lacks are left uncounted.

        ``n_jobs`` threads count the columns of large frames (default: every core).
        ``part`` numbers a profile counted apart from others that will be merged
        with it (a Spark partition, say), so that each part draws its own sample keys.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"update() takes a pandas DataFrame. Got {type(frame).__name__}.")
        present = [column for name, column in self.columns.items() if name in frame.columns]
        parallel_map(
            lambda column: column.update(frame[column.name]),
            present,
            n_jobs=n_jobs,
            n_rows=len(frame),
        )
        seed = [self.settings.get("random_state", 0), self._n_updates]
        rng = np.random.default_rng(seed if part is None else [*seed, part])
        self.sample.update(frame, rng=rng)
        self.n_rows += len(frame)
        self._n_updates += 1

    def merge(self, other: DataProfile) -> DataProfile:
        """Return the profile of both parts' rows. The two must share their layout.

        The reference performance merges as :meth:`ReferencePerformance.merge` says:
        kept when both parts carry the same (or one has none), refused otherwise.
        """
        if list(self.columns) != list(other.columns):
            raise ProfileError(
                "Cannot merge profiles of different columns: "
                f"{list(self.columns)} != {list(other.columns)}."
            )
        merged = self.empty_like()
        if self.performance is None:
            merged.performance = other.performance
        elif other.performance is not None:
            try:
                merged.performance = self.performance.merge(other.performance)
            except ValueError as exc:
                raise ProfileError(str(exc)) from exc
        merged.columns = {
            name: column.merge(other.columns[name]) for name, column in self.columns.items()
        }
        merged.sample = self.sample.merge(other.sample)
        merged.n_rows = self.n_rows + other.n_rows
        merged._n_updates = self._n_updates + other._n_updates
        return merged

    __add__ = merge

    # -- reading --------------------------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs: every compared column but the label, prediction and probabilities."""
        roles = {self.targets, self.predictions}
        if self.performance is not None:
            roles.update(self.performance.probabilities)
        return [name for name in self.columns if name not in roles]

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "metadata": self.metadata,
            "settings": self.settings,
            "n_rows": self.n_rows,
            "n_updates": self._n_updates,
            "targets": self.targets,
            "predictions": self.predictions,
            "excluded": self.excluded,
            "performance": None if self.performance is None else self.performance.to_dict(),
            "impact": None if self.impact is None else self.impact.to_dict(),
            "columns": [
                {"name": name, **column.to_dict()} for name, column in self.columns.items()
            ],
            "sample": self.sample.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, payload: dict) -> DataProfile:
        if not isinstance(payload, dict) or payload.get("format") != PROFILE_FORMAT:
            raise ProfileError(
                "This is not an mlflow-observe baseline profile (no "
                f"'format': {PROFILE_FORMAT!r} field)."
            )
        if payload.get("version") not in READABLE_VERSIONS:
            raise ProfileError(
                f"Baseline profile version {payload.get('version')!r} is not supported by this "
                f"mlflow-observe (reads versions {READABLE_VERSIONS}). Upgrade mlflow-observe or "
                "record the baseline again."
            )
        columns = {c["name"]: column_profile_from_dict(c["name"], c) for c in payload["columns"]}
        profile = cls(
            columns,
            excluded=payload["excluded"],
            targets=payload["targets"],
            predictions=payload["predictions"],
            settings=payload["settings"],
            performance=(
                ReferencePerformance.from_dict(payload["performance"])
                if payload.get("performance")
                else None
            ),
        )
        profile.n_rows = int(payload["n_rows"])
        profile._n_updates = int(payload.get("n_updates", 1))
        profile.sample = RowSample.from_dict(payload["sample"])
        profile.metadata = dict(payload.get("metadata", {}))
        if payload.get("impact"):
            from mlflow_observe.core.profile.feature_impact import FeatureImpact

            profile.impact = FeatureImpact.from_dict(payload["impact"])
        return profile

    @classmethod
    def from_json(cls, text: str) -> DataProfile:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"The baseline profile is not valid JSON: {exc}") from exc
        return cls.from_dict(payload)

    def __repr__(self) -> str:
        return (
            f"DataProfile(n_rows={self.n_rows}, columns={len(self.columns)}, "
            f"excluded={len(self.excluded)})"
        )


BUILD_CONSTRAINTS: dict[str, list[Any]] = {
    "data": [InstanceOf(pd.DataFrame, description="a pandas DataFrame")],
    "targets": [NoneValue(), InstanceOf(str)],
    "predictions": [NoneValue(), InstanceOf(str)],
    "columns": _NAMES,
    "exclude": _NAMES,
    "kinds": [NoneValue(), InstanceOf(dict)],
    "n_bins": [Interval(int, 2, None)],
    "grid_size": [Interval(int, 10, None)],
    "max_categories": [Interval(int, 2, None)],
    "sample_size": [Interval(int, 0, None)],
    "random_state": [Interval(int, 0, None)],
    "n_jobs": [NoneValue(), Interval(int, -1, None)],
    "probabilities": _NAMES,
    "task": [NoneValue(), Options("classification", "regression")],
}


@checked(BUILD_CONSTRAINTS)
def build_profile(
    data: pd.DataFrame,
    *,
    targets: str | None = None,
    predictions: str | None = None,
    columns=None,
    exclude=None,
    kinds: dict | None = None,
    n_bins: int = 10,
    grid_size: int = 1000,
    max_categories: int = 100,
    sample_size: int = 5000,
    random_state: int = 0,
    n_jobs: int | None = None,
    probabilities=None,
    task: str | None = None,
) -> DataProfile:
    """Learn a baseline profile from reference data.

    Parameters
    ----------
    data : pandas.DataFrame
        The reference data (training or validation set), with the target and
        prediction columns when they are to be compared too. (For a Spark
        DataFrame, :func:`mlflow_observe.build_profile` profiles it with Spark.)
    targets, predictions : str, optional
        The label and prediction columns. They are profiled like features and
        compared as target drift and prediction drift.
    columns : list of str, optional
        Compare only these feature columns (default: all but the excluded).
    exclude : list of str, optional
        Columns never to compare (identifiers, timestamps).
    kinds : dict of str to {'numeric', 'categorical', 'boolean'}, optional
        Kind overrides; otherwise each column's kind is inferred.
    n_bins : int, default=10
        Quantile bins for PSI and Jensen-Shannon, from the reference only.
    grid_size : int, default=1000
        Quantile levels of the fine grid used for KS and Wasserstein on large data.
    max_categories : int, default=100
        Largest vocabulary kept for a categorical column; a text column with more
        distinct values is excluded unless ``kinds`` says it is categorical.
    sample_size : int, default=5000
        Rows kept in the uniform sample. References up to this size are kept
        whole, so exact tests on them are exactly SciPy's.
    random_state : int, default=0
        Seed of the sample.
    n_jobs : int, optional
        Threads that count columns on large data (default: every core; 1: no threads).
    probabilities : str or list of str, optional
        Class-probability columns (binary: the positive class's; multiclass: one per
        class, in sorted class order). With ``targets`` and ``predictions``, the
        profile records the reference performance, its bootstrap intervals and
        the calibration needed to estimate performance without labels.
    task : {'classification', 'regression'}, optional
        Default: inferred from the labels.

    Returns
    -------
    DataProfile

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [31, 45, 27, 60], "plan": ["a", "b", "a", "a"]})
    >>> profile = build_profile(frame, n_bins=2)
    >>> {name: column.kind for name, column in profile.columns.items()}
    {'age': 'numeric', 'plan': 'categorical'}
    >>> profile.columns["plan"].counts.tolist()
    [3, 1]
    """
    if len(data) == 0:
        raise ProfileError("Cannot build a baseline profile from data with no rows.")
    check_unique_columns(data)
    decisions = decide_kinds(data, targets, predictions, columns, exclude, kinds, max_categories)

    def fit(name, decision):
        if decision.kind == NUMERIC:
            values, _ = to_float_array(data[name])
            return NumericColumnProfile.fit(name, values, n_bins=n_bins, grid_size=grid_size)
        return CategoricalColumnProfile.fit(
            name, data[name], kind=decision.kind, max_categories=max_categories
        )

    kept = [(name, d) for name, d in decisions.items() if not d.excluded]
    fitted = parallel_map(lambda item: fit(*item), kept, n_jobs=n_jobs, n_rows=len(data))
    layout = {name: column for (name, _), column in zip(kept, fitted, strict=True)}
    profile = DataProfile(
        layout,
        excluded={name: d.reason for name, d in decisions.items() if d.excluded},
        targets=targets if targets in layout else None,
        predictions=predictions if predictions in layout else None,
        settings={
            "n_bins": n_bins,
            "grid_size": grid_size,
            "max_categories": max_categories,
            "sample_size": sample_size,
            "random_state": random_state,
        },
    )
    profile.metadata = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kind_reasons": {name: d.reason for name, d in decisions.items() if not d.excluded},
    }
    profile.update(data, n_jobs=n_jobs)
    if targets is not None and predictions is not None:
        profile.performance = profile_performance(
            data, targets, predictions, as_column_list(probabilities), task, random_state
        )
    return profile


def profile_performance(data, targets, predictions, probabilities, task, random_state):

    missing = [c for c in probabilities if c not in data.columns]
    if missing:
        raise ProfileError(f"Probability columns not found in the reference data: {missing}.")
    labelled = data[targets].notna() & data[predictions].notna()
    frame = data[labelled]
    proba = frame[probabilities].to_numpy(dtype=float) if probabilities else None
    numeric = [
        c
        for c in frame.columns
        if c not in (targets, predictions, *probabilities)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return reference_performance(
        frame[targets].to_numpy(),
        frame[predictions].to_numpy(),
        proba,
        probabilities=probabilities,
        task=task,
        features=frame[numeric],
        random_state=random_state,
    )


def check_unique_columns(data: pd.DataFrame) -> None:
    duplicated = data.columns[data.columns.duplicated()].tolist()
    if duplicated:
        raise ProfileError(f"Column names must be unique; repeated: {duplicated}.")


def as_column_list(names) -> list[str]:
    if names is None:
        return []
    return [names] if isinstance(names, str) else list(names)


def decide_kinds(data, targets, predictions, columns, exclude, kinds, max_categories):
    kinds = dict(kinds or {})
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(
                f"The kind of column {name!r} must be one of {', '.join(KINDS)}. Got {kind!r}."
            )
    roles = [r for r in (targets, predictions) if r is not None]
    wanted = as_column_list(columns) or [c for c in data.columns if c not in roles]
    unknown = [c for c in [*wanted, *roles, *kinds] if c not in data.columns]
    if unknown:
        raise ProfileError(
            f"Columns not found in the reference data: {unknown}. "
            f"It has: {list(map(str, data.columns))[:20]}."
        )
    excluded = set(as_column_list(exclude))
    decisions: dict[str, KindDecision] = {}
    for name in [*wanted, *roles]:
        if name in excluded:
            decisions[name] = KindDecision(None, "excluded by the user")
        elif name in kinds:
            decisions[name] = KindDecision(kinds[name], "set by the user")
        else:
            decisions[name] = infer_kind(data[name], max_categories=max_categories)
    return decisions
