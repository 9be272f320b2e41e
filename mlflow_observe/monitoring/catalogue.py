"""The metric keys a monitored window can have: what alert rules and gate thresholds may name.

A rule on a key no window ever has can never fire; it is refused before
anything runs, naming the closest known keys.
"""

from __future__ import annotations

import difflib

from mlflow_observe.backends import ALIBI_DETECTORS, ALIBI_EMBEDDING_STATISTICS
from mlflow_observe.core.drift.integrity import IntegrityResult
from mlflow_observe.core.drift.options import (
    EMBEDDING_STATISTICS,
    METHODS,
    PVALUE_METHODS,
    UNSTRUCTURED_METHODS,
)
from mlflow_observe.core.naming import assign_metric_names
from mlflow_observe.core.performance.metrics import (
    CLASSIFICATION_METRICS,
    ESTIMATED_METRICS,
    REGRESSION_METRICS,
)
from mlflow_observe.monitoring.rules import RuleSyntaxError, estimated_twin

TRAFFIC_ROWS = "traffic/rows"  # rows the window received (every window, even skipped ones)
# Rows over the median rows of the previous windows (monitoring/traffic.py): spikes and drops.
TRAFFIC_ROWS_RATIO = "traffic/rows_ratio"
# Every integrity finding's metrics, from the check itself: a new check is a rule at once.
INTEGRITY_KEYS = tuple(IntegrityResult(findings=[]).metrics())
# The traffic those rows stand for: the sum of their sample_weight (traffic/rows unless the
# log's writer shed load by sampling).
TRAFFIC_ROWS_REPRESENTED = "traffic/rows_represented"

WINDOW_KEYS = (
    "drift/share_drifted_columns",
    "drift/n_drifted_columns",
    "drift/n_evaluated_columns",
    "drift/dataset_drift",
    "drift/rows_logged",
    "drift/rows_represented",
    "drift/prediction_drift",
    "drift/target_drift",
    "drift/multivariate/domain_auc",
    "drift/multivariate/domain_drifted",
    "drift/multivariate/reconstruction_error",
    "drift/multivariate/reconstruction_drifted",
    "drift/n_segments",
    "drift/n_drifted_segments",
    "drift/impact/top_score",
    "drift/impact/prediction_shift",
    "drift/attribution/ndcg",
    "drift/attribution/drifted",
    "drift/attribution/n_rows",
    *INTEGRITY_KEYS,
    "degradation/degraded",
    "degradation/n_segments",
    "degradation/n_degraded_segments",
    "degradation/n_labelled",
    "degradation/n_unlabelled",
    "degradation/n_invalid_probabilities",
    "degradation/rows_represented",
    TRAFFIC_ROWS,
    TRAFFIC_ROWS_RATIO,
    TRAFFIC_ROWS_REPRESENTED,
)
# Every compared column logs its distance, its test's p-value and ``drifted`` in every window.
_STATISTICS = (
    *(f"{m}_pvalue" if m in PVALUE_METHODS else m for m in METHODS if m != "auto"),
    "drifted",
)
# A text column logs its domain classifier's AUC; an embedding, that and its distances.
_TEXT_STATISTICS = ("text_domain_auc", "drifted")
# ... and, with the alibi:mmd detector, its MMD on the vectors.
_EMBEDDING_STATISTICS = (
    "embedding_domain_auc",
    *EMBEDDING_STATISTICS,
    "drifted",
    *ALIBI_EMBEDDING_STATISTICS,
)
_UNSTRUCTURED_STATISTICS = (
    *UNSTRUCTURED_METHODS,
    *EMBEDDING_STATISTICS,
    *ALIBI_EMBEDDING_STATISTICS,
)


class UnknownMetricError(RuleSyntaxError):
    """A rule or threshold names a metric that no window has; the message lists the closest."""


def metric_catalogue(baseline=None) -> list[str]:
    """Every metric key a window evaluated against ``baseline`` can have.

    Without a baseline, the per-column and performance keys are those of any
    column and any task.

    >>> "drift/share_drifted_columns" in metric_catalogue()
    True
    """
    keys = list(WINDOW_KEYS)
    for detector in ALIBI_DETECTORS:
        name = detector.split(":", 1)[1]
        keys += [f"drift/alibi/{name}/{s}" for s in ("pvalue", "drifted", "distance")]
    if baseline is not None:
        parts = getattr(baseline, "unstructured", {})
        names = assign_metric_names([*baseline.columns, *parts])
        for column, name in names.items():
            if column in parts:
                kind = parts[column].kind
                statistics = _TEXT_STATISTICS if kind == "text" else _EMBEDDING_STATISTICS
            else:
                statistics = _STATISTICS
            keys += [f"drift/{name}/{statistic}" for statistic in statistics]
        impact = getattr(baseline, "impact", None)
        if impact is not None and impact.attribution:
            reserved = ["ndcg", "drifted", "n_rows"]
            attribution_names = assign_metric_names([*reserved, *impact.attribution])
            keys += [f"drift/attribution/{attribution_names[f]}" for f in impact.attribution]
    performance = getattr(baseline, "performance", None) if baseline is not None else {}
    if baseline is None:
        realised = list(CLASSIFICATION_METRICS) + list(REGRESSION_METRICS)
    else:
        realised = list(performance.metrics) if performance is not None else []
    estimated = [m for m in realised if m in ESTIMATED_METRICS or m in ("mae", "rmse")]
    for prefix, names in (("", realised), ("estimated_", estimated)):
        for metric in names:
            keys += [
                f"degradation/{prefix}{metric}{suffix}"
                for suffix in ("", "_delta", "_relative_change")
            ]
    return keys


def is_per_column_key(metric: str) -> bool:
    """``drift/<column>/<statistic>``: the column part is the baseline's to know.

    >>> is_per_column_key("drift/tenure/ks_pvalue"), is_per_column_key("drift/dataset_drift")
    (True, False)
    """
    parts = metric.split("/")
    return (
        len(parts) >= 3
        and parts[0] == "drift"
        and (parts[-1] in _STATISTICS or parts[-1] in _UNSTRUCTURED_STATISTICS)
    )


def check_metrics(metrics, catalogue, *, what: str = "alert rule", any_column=False) -> None:
    """Raise :class:`UnknownMetricError` for the first metric not in ``catalogue``.

    A performance metric written without ``estimated_`` is known when either
    the realised or the estimated key is (the rule follows whichever a window has).
    With ``any_column`` (no baseline to name the columns), every
    ``drift/<column>/<statistic>`` key is accepted.

    >>> check_metrics(["drift/share_drifted_columns"], metric_catalogue())
    >>> check_metrics(["drift/share_drifted_column"], metric_catalogue())
    Traceback (most recent call last):
    ...
    mlflow_observe.monitoring.catalogue.UnknownMetricError: The alert rule names 'drift/share_drifted_column', which no monitored window has, so it could never fire. Did you mean 'drift/share_drifted_columns' or 'drift/n_drifted_columns' or 'drift/target_drift'? (All metric keys: docs/reference/metrics.md.)
    """
    known = set(catalogue)
    for metric in metrics:
        if metric in known or estimated_twin(metric) in known:
            continue
        if any_column and is_per_column_key(metric):
            continue
        close = difflib.get_close_matches(metric, list(known), n=3, cutoff=0.6)
        hint = (
            "Did you mean " + " or ".join(repr(c) for c in close) + "?"
            if close
            else "No known metric is close."
        )
        raise UnknownMetricError(
            f"The {what} names {metric!r}, which no monitored window has, so it could never "
            f"{'fire' if what == 'alert rule' else 'pass'}. {hint} "
            "(All metric keys: docs/reference/metrics.md.)"
        )
