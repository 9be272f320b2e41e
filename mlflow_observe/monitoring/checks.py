"""Every check on one batch of production rows, logged to the active run.

Drift and integrity always; degradation when the baseline recorded the model's
performance: realised on the rows whose labels have arrived (when there are
enough of them), estimated from the model's probabilities otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.engines import is_spark_dataframe
from mlflow_observe.evaluation import evaluate_degradation, evaluate_drift
from mlflow_observe.logs.schema import LABEL

# Fewer labelled rows than this: performance is estimated instead of measured.
MIN_LABELLED_ROWS = 100


@dataclass
class CheckResults:
    """Metrics of one batch (``drift/``, ``integrity/``, ``degradation/``) and what was left out."""

    metrics: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    degradation_kind: str | None = None
    # The degradation table's records (value, band, baseline per metric), for the charts.
    performance: list = field(default_factory=list)


def run_checks(
    frame, baseline: DataProfile, *, drift_options=None, min_labelled_rows: int = MIN_LABELLED_ROWS
) -> CheckResults:
    """Run drift, integrity and (where possible) degradation on ``frame`` in the active run.

    ``frame`` is a pandas DataFrame, or a Spark DataFrame counted by Spark.
    """
    if is_spark_dataframe(frame):
        return _run_checks_spark(
            frame, baseline, drift_options=drift_options, min_labelled_rows=min_labelled_rows
        )
    results = CheckResults()
    if baseline.targets and baseline.targets not in frame.columns and LABEL in frame.columns:
        # Labels joined from the log are named 'label'; the baseline knows them by its name.
        frame = frame.rename(columns={LABEL: baseline.targets})
    if baseline.targets in frame.columns and frame[baseline.targets].isna().all():
        frame = frame.drop(columns=[baseline.targets])  # no label has arrived yet
    drift = evaluate_drift(frame, baseline, **(drift_options or {}))
    results.metrics.update(drift.metrics)
    label = next((c for c in (baseline.targets, LABEL) if c and c in frame.columns), None)
    _add_degradation(
        results,
        baseline,
        options={k: v for k, v in (drift_options or {}).items() if k == "attribution_model"},
        label=label,
        n_labelled=int(frame[label].notna().sum()) if label else 0,
        labelled=lambda: frame[frame[label].notna()],
        unlabelled=lambda: frame.drop(columns=[label]) if label else frame,
        min_labelled_rows=min_labelled_rows,
    )
    return results


def _add_degradation(
    results: CheckResults,
    baseline: DataProfile,
    *,
    options=None,
    label,
    n_labelled,
    labelled,
    unlabelled,
    min_labelled_rows,
) -> None:
    """Degradation, realised on the labelled rows when there are enough, else estimated.

    ``labelled`` and ``unlabelled`` build the rows to judge (for pandas or Spark) on demand.
    """
    if baseline.performance is None:
        results.notes.append(
            "degradation: the baseline has no recorded performance "
            "(record it with targets= and predictions=)."
        )
        return
    if n_labelled >= min_labelled_rows:
        data, results.degradation_kind = labelled(), "realised"
    else:
        if label:
            results.notes.append(
                f"degradation: {n_labelled} labelled rows (fewer than "
                f"{min_labelled_rows}): performance estimated, not measured."
            )
        data, results.degradation_kind = unlabelled(), "estimated"
    try:
        degradation = evaluate_degradation(data, baseline, **(options or {}))
        results.metrics.update(degradation.metrics)
        table = degradation.artifacts.get("degradation_table")
        results.performance = list(table.content) if table is not None else []
    except MlflowException as exc:  # e.g. no probabilities to estimate from
        results.degradation_kind = None
        results.notes.append(f"degradation: not evaluated: {exc.message}")


def _run_checks_spark(frame, baseline: DataProfile, *, drift_options, min_labelled_rows):
    """:func:`run_checks` on a Spark DataFrame: the same steps, with Spark's counts."""
    from pyspark.sql import functions as F

    results = CheckResults()
    if baseline.targets and baseline.targets not in frame.columns and LABEL in frame.columns:
        frame = frame.withColumnRenamed(LABEL, baseline.targets)
    label = next((c for c in (baseline.targets, LABEL) if c and c in frame.columns), None)
    is_labelled = F.col(f"`{label}`").isNotNull() if label else None
    n_labelled = frame.filter(is_labelled).count() if label else 0
    if label and n_labelled == 0:
        frame, label = frame.drop(label), None  # no label has arrived yet
    drift = evaluate_drift(frame, baseline, **(drift_options or {}))
    results.metrics.update(drift.metrics)
    _add_degradation(
        results,
        baseline,
        options={k: v for k, v in (drift_options or {}).items() if k == "attribution_model"},
        label=label,
        n_labelled=n_labelled,
        labelled=lambda: frame.filter(is_labelled),
        unlabelled=lambda: frame.drop(label) if label else frame,
        min_labelled_rows=min_labelled_rows,
    )
    return results
