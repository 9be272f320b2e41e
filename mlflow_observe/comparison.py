"""Compare a production window with a baseline, whichever engine counts it.

This is where the engine is chosen: pandas DataFrames and Arrow batches are
counted here, part by part; a Spark DataFrame is counted by Spark
(:mod:`mlflow_observe.engines.spark`). The counted window then goes through the
core's comparison (:func:`mlflow_observe.core.drift.window.compare_counted`), and
the optional backends' detectors (:mod:`mlflow_observe.backends`) run last. No
MLflow here.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import pandas as pd

from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.drift.segments import SegmentCounter
from mlflow_observe.core.drift.window import WindowComparison, compare_counted
from mlflow_observe.core.explain import (
    AttributionSkipped,
    ImportanceCounter,
    attribution_drift,
)
from mlflow_observe.core.explain.attribute import attribute, importance_rows
from mlflow_observe.core.explain.errors import ErrorAttribution, error_attribution, error_groups
from mlflow_observe.core.profile import data_profile
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.progress import progress_bar
from mlflow_observe.engines import is_spark_dataframe
from mlflow_observe.inputs import as_window
from mlflow_observe.logs.frames import row_weights
from mlflow_observe.logs.schema import ATTRIBUTION_PREFIX


def compare(
    baseline: DataProfile,
    data,
    options: DriftOptions | None = None,
    *,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    predict=None,
    progress: bool | None = None,
    weights: str | None = None,
    explain_model=None,
) -> WindowComparison:
    """Compare ``data`` (a production window) with ``baseline``.

    Parameters
    ----------
    baseline : DataProfile
        The profile recorded at training time.
    data : pandas.DataFrame, an iterable of DataFrames or Arrow record batches/tables, a Spark DataFrame, a ``pyarrow.dataset.Dataset`` or a Parquet file or directory path
        The window: feature columns, and the prediction and label columns when
        present. An iterable is counted one part at a time, so memory is bounded
        by the largest part and the profile, not by the window. A Spark
        DataFrame is counted by Spark (:mod:`mlflow_observe.engines.spark`).
    options : DriftOptions, optional
    chunk_size : int, optional
        Count the rows this many at a time (the result does not depend on it).
    n_jobs : int, optional
        Threads that count columns (default: every core; 1: no threads).
    predict : callable, optional
        The model (frame in, predictions out). With a baseline that recorded
        feature impact, it explains the prediction drift by feature (see
        :mod:`mlflow_observe.core.drift.root_cause`).
    progress : bool, optional
        A bar on stderr counting the parts (batches) as they are counted.
        Default: shown when stderr is a terminal; True or False forces it. The
        Spark engine has no bar here: Spark shows its own stage progress.
    weights : str, optional
        A column of row weights (the prediction log's ``sample_weight``, 1 / the
        rate a row was kept at when the writer shed load): each row counts that
        many times, and the column itself is not compared. Weights must be finite
        and > 0 (a null weight counts as 1). A window whose weights are all 1 is
        counted exactly as without them. The Spark engine sums them on the cluster.
    explain_model : model, optional
        A model (``predict_proba`` or ``predict``, or a callable) that attributes the
        window's row sample when the window logged no attributions. Attribution
        drift needs a baseline that recorded its global importance; a window's
        ``attribution_<column>`` columns (the prediction log's sampled
        attributions) are never counted as features and, when present, are what
        attribution drift compares (see :func:`attribution_part`).

    Returns
    -------
    WindowComparison

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    >>> window = pd.DataFrame({"x": rng.normal(1.0, 1.0, 5000), "y": rng.normal(size=5000)})
    >>> compare(build_profile(reference), window).drift.drifted_columns
    ['x']
    """
    options = options or DriftOptions()
    data = as_window(data)  # a Parquet path or pyarrow dataset: read batch by batch
    if options.detectors:  # a missing backend is said before any row is counted
        from mlflow_observe.backends.alibi import check_installed

        check_installed(options.detectors)
    if is_spark_dataframe(data):  # counted by Spark, on the cluster
        from mlflow_observe.engines.spark import count_importance, count_window

        current = count_window(baseline, data, weights=weights)
        logged = {
            str(c)[len(ATTRIBUTION_PREFIX) :]: str(c)
            for c in data.columns
            if str(c).startswith(ATTRIBUTION_PREFIX)
        }
        names = [
            str(c)
            for c in data.columns
            if (weights is None or str(c) != weights) and str(c) not in logged.values()
        ]
        comparison = compare_window(baseline, current, names, options)
        part = attribution_part(
            baseline, current, count_importance(data, logged), options, explain_model
        )
        return comparison if part is None else replace(comparison, attribution=part)
    current = baseline.empty_like()
    segments = (
        SegmentCounter(baseline, options.segment_by, max_segments=options.max_segments)
        if options.segment_by
        else None
    )
    columns: dict = {}  # every column seen, in order of appearance
    attributions = ImportanceCounter()
    parts = progress_bar(_parts(data, chunk_size), enabled=progress, desc="counting")
    for part in parts:
        part = _split_attributions(part, attributions)
        part_weights = row_weights(part, weights)
        if weights is not None and weights in part.columns:
            part = part.drop(columns=[weights])
        columns.update(dict.fromkeys(str(c) for c in part.columns))
        if len(part):
            current.update(part, weights=part_weights, n_jobs=n_jobs)
            if segments is not None:
                segments.update(part, weights=part_weights)
    comparison = compare_window(
        baseline, current, list(columns), options, segments=segments, predict=predict
    )
    part = attribution_part(baseline, current, attributions, options, explain_model)
    return comparison if part is None else replace(comparison, attribution=part)


def with_attributions(prepared: pd.DataFrame, logged: pd.DataFrame) -> pd.DataFrame:
    """``prepared`` (a log part as the baseline sees it) with ``logged``'s attribution columns.

    Preparing a log part drops its bookkeeping columns, the logged attributions
    among them; attribution drift reads them back from here.
    """
    kept = [
        c
        for c in logged.columns
        if isinstance(c, str) and c.startswith(ATTRIBUTION_PREFIX) and c not in prepared.columns
    ]
    if not kept:
        return prepared
    return prepared.assign(**{c: logged[c].to_numpy() for c in kept})


def _split_attributions(part: pd.DataFrame, counter: ImportanceCounter) -> pd.DataFrame:
    """Count a part's ``attribution_<column>`` columns and hand back the rest."""
    logged = [c for c in part.columns if isinstance(c, str) and c.startswith(ATTRIBUTION_PREFIX)]
    if not logged:
        return part
    # A value that is not a number (a damaged log) counts as not attributed.
    values = part[logged].apply(pd.to_numeric, errors="coerce")
    counter.update(values.set_axis([c[len(ATTRIBUTION_PREFIX) :] for c in logged], axis=1))
    return part.drop(columns=logged)


def attribution_part(
    baseline: DataProfile,
    current: DataProfile,
    logged: ImportanceCounter,
    options: DriftOptions,
    model=None,
):
    """Attribution drift of a window, or why it was skipped; None when nothing asks for it.

    The window's global importance comes from its logged attributions when it has
    any, else from ``model`` on the window's row sample (at most 1,000 rows with
    the tree explainer, 200 with sampled Shapley values, against the baseline's
    row sample as background). It is compared with the baseline's (see
    :func:`~mlflow_observe.core.explain.attribution_drift`) over the features the
    baseline attributed.
    """
    impact = baseline.impact
    recorded = impact.attribution if impact is not None else None
    if not recorded:
        if logged.n_rows:
            return AttributionSkipped(
                "the baseline recorded no global importance: record it with a model "
                "(log_baseline(..., model=...) or mlflow_observe.log_model)",
                logged.n_rows,
            )
        return None
    features = list(recorded)
    source, method = "logged", None
    counter = logged
    if logged.n_rows == 0:
        if model is None:
            # Attribution columns with no value in them: the window had none attributed.
            return (
                AttributionSkipped("no row of the window was attributed") if logged.sums else None
            )
        source = "computed"
        try:
            counter, method = _window_importance(baseline, current, features, model)
        except Exception as exc:  # a model that cannot run on the sample: said, not fatal
            return AttributionSkipped(f"attributions failed on the window's sample: {exc!r}")
    unattributed = [f for f in features if not counter.counts.get(f)]
    if source == "logged" and unattributed:
        return AttributionSkipped(
            f"the logged attributions lack the features {unattributed[:10]} the baseline "
            "attributed; a share cannot be compared without every feature",
            counter.n_rows,
        )
    if counter.n_rows < options.attribution_min_rows:
        return AttributionSkipped(
            f"{counter.n_rows} attributed rows, fewer than attribution_min_rows="
            f"{options.attribution_min_rows}",
            counter.n_rows,
        )
    window = counter.importance()
    return attribution_drift(
        recorded,
        {f: window.get(f, 0.0) for f in features},
        threshold=options.attribution_threshold,
        max_share_change=options.attribution_max_share_change,
        n_reference=impact.attribution_rows or None,
        n_current=counter.n_rows,
        source=source,
        method=method or impact.attribution_method,
    )


def _window_importance(baseline, current, features, model):
    """The window's global importance from ``model`` on its row sample."""
    inputs = [c for c in baseline.feature_names if c in features]
    rows = current.sample.to_frame(inputs)
    # The baseline's background, as its own importance had (the same rows for the same seed).
    background = baseline.sample.to_frame(inputs, like=rows)
    counter = ImportanceCounter()
    if rows.empty or background.empty:
        return counter, None
    random_state = baseline.settings.get("random_state", 0)
    attributions = attribute(
        model,
        rows,
        background,
        max_rows=importance_rows(model, len(inputs)),
        random_state=random_state,
    )
    counter.update(attributions.values)
    return counter, attributions.method


def compare_window(
    baseline: DataProfile,
    current: DataProfile,
    columns,
    options: DriftOptions | None = None,
    *,
    segments=None,
    predict=None,
) -> WindowComparison:
    """The step after counting, for every engine: the core's comparison, then the backends'.

    ``current`` is the window counted into ``baseline.empty_like()`` and
    ``columns`` the window's column names. See
    :func:`~mlflow_observe.core.drift.window.compare_counted`.
    """
    options = options or DriftOptions()
    comparison = compare_counted(
        baseline, current, columns, options, segments=segments, predict=predict
    )
    if not options.detectors:
        return comparison
    # Imports alibi-detect only now, and only because a detector was asked for.
    from mlflow_observe.backends.alibi import alibi_drift

    detectors = alibi_drift(
        baseline,
        current,
        options.detectors,
        present_columns=list(columns),
        random_state=baseline.settings.get("random_state", 0),
    )
    return replace(comparison, detectors=detectors)


def explain_errors(
    baseline: DataProfile, window: pd.DataFrame, y_true, y_pred, *, task: str, model=None
) -> ErrorAttribution | None:
    """Which features account for a labelled window's errors (see
    :mod:`mlflow_observe.core.explain.errors`); None when there is nothing to read them from.

    The attributions are the window's logged ``attribution_<column>`` values, else
    ``model``'s on a sample of the window: at most half the sampled method's (or
    the tree explainer's) rows from the wrong rows and half from the right ones,
    so that rare errors are still seen, against the baseline's row sample.
    """
    bad, groups = error_groups(y_true, y_pred, task)
    logged = [c for c in window.columns if isinstance(c, str) and c.startswith(ATTRIBUTION_PREFIX)]
    if logged:
        values = window[logged].set_axis([c[len(ATTRIBUTION_PREFIX) :] for c in logged], axis=1)
        return error_attribution(values, bad, task=task, groups=groups, source="logged")
    if model is None:
        return None
    impact = baseline.impact
    features = list(impact.attribution) if impact is not None and impact.attribution else None
    inputs = [
        c
        for c in baseline.feature_names
        if c in window.columns and (features is None or c in features)
    ]
    if not inputs:
        return None
    rng = np.random.default_rng(baseline.settings.get("random_state", 0))
    per_group = importance_rows(model, len(inputs)) // 2
    chosen = []
    for flag in (0.0, 1.0):
        rows = np.flatnonzero(bad == flag)
        chosen.append(rng.choice(rows, min(len(rows), per_group), replace=False))
    picked = np.sort(np.concatenate(chosen)).astype(int)
    rows = window.iloc[picked][inputs].reset_index(drop=True)
    background = baseline.sample.to_frame(inputs, like=rows)
    try:
        attributions = attribute(
            model, rows, background, random_state=baseline.settings.get("random_state", 0)
        )
    except Exception as exc:  # said in the result, never fatal to the degradation check
        return ErrorAttribution(
            task, groups, 0, 0, [], source="computed", note=f"attributions failed: {exc!r}"
        )
    return error_attribution(
        attributions.values.reset_index(drop=True),
        bad[picked],
        task=task,
        groups=groups,
        source="computed",
    )


def build_profile(data, **options) -> DataProfile:
    """Learn a baseline profile from reference data, with pandas or Spark.

    A pandas DataFrame goes to
    :func:`mlflow_observe.core.profile.data_profile.build_profile` (see it for
    every option); a Spark DataFrame is profiled by Spark
    (:func:`mlflow_observe.engines.spark.build_profile_spark`: its bin edges come
    from approximate quantiles, then exact counts).

    Examples
    --------
    >>> import pandas as pd
    >>> build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]})).n_rows
    3
    """
    if is_spark_dataframe(data):
        from mlflow_observe.engines.spark import build_profile_spark

        options.pop("n_jobs", None)  # Spark decides its own parallelism
        return build_profile_spark(data, **options)
    return data_profile.build_profile(data, **options)


def _parts(data, chunk_size):
    """The window as a sequence of DataFrames."""
    if isinstance(data, pd.DataFrame):
        step = chunk_size or max(len(data), 1)
        for start in range(0, max(len(data), 1), step):
            yield data.iloc[start : start + step]
        return
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "The production data must be a pandas DataFrame or an iterable of DataFrames or "
            f"Arrow record batches. Got {type(data).__name__}."
        )
    for part in data:
        if hasattr(part, "to_pandas") and not isinstance(part, pd.DataFrame):
            part = part.to_pandas()
        if not isinstance(part, pd.DataFrame):
            raise TypeError(
                f"Each part of the window must be a DataFrame or an Arrow record "
                f"batch. Got {type(part).__name__}."
            )
        yield part


build_profile.__signature__ = inspect.signature(data_profile.build_profile)
