"""Tag keys that link runs, baselines and evaluations, all under ``observe.``.

Versions up to 0.1.0 wrote some of them under ``mlflow_observe.`` (:data:`LEGACY`
maps each key to the one they wrote). Runs they tagged keep working: read a tag
with :func:`read_tag`, and search for one with every filter of
:func:`search_filters`. Only the ``observe.`` keys are written.
"""

from __future__ import annotations

from collections.abc import Mapping

BASELINE = "observe.baseline"  # "true" on a run that recorded a baseline
BASELINE_ARTIFACT = "observe.baseline.artifact"
BASELINE_RUN_ID = "observe.baseline.run_id"
BASELINE_URI = "observe.baseline.uri"
PLUGIN_VERSION = "observe.plugin_version"
DRIFT_STATUS = "observe.drift.status"
DRIFTED_COLUMNS = "observe.drift.drifted_columns"
# The feature ranked first by impact x drift (when the baseline recorded feature impact).
TOP_IMPACT_FEATURE = "observe.drift.top_impact_feature"
# The evaluated data: its rows, and the timestamps of its first and last rows (distinct
# from a monitored window's bounds, MONITOR_WINDOW_START and MONITOR_WINDOW_END).
DATA_N_ROWS = "observe.data.n_rows"
DATA_FIRST_ROW = "observe.data.first_row"
DATA_LAST_ROW = "observe.data.last_row"
DEGRADATION_STATUS = "observe.degradation.status"
DEGRADATION_KIND = "observe.degradation.kind"

# Each key above, and the key earlier versions wrote for it.
LEGACY = {
    BASELINE: "mlflow_observe.baseline",
    BASELINE_ARTIFACT: "mlflow_observe.baseline_artifact",
    BASELINE_RUN_ID: "mlflow_observe.baseline_run_id",
    BASELINE_URI: "mlflow_observe.baseline_uri",
    PLUGIN_VERSION: "mlflow_observe.version",
    DRIFT_STATUS: "mlflow_observe.drift.status",
    DRIFTED_COLUMNS: "mlflow_observe.drift.drifted_columns",
    TOP_IMPACT_FEATURE: "mlflow_observe.drift.top_impact_feature",
    DATA_N_ROWS: "mlflow_observe.window.n_rows",
    DATA_FIRST_ROW: "mlflow_observe.window.start",
    DATA_LAST_ROW: "mlflow_observe.window.end",
    DEGRADATION_STATUS: "mlflow_observe.degradation.status",
    DEGRADATION_KIND: "mlflow_observe.degradation.kind",
}


def read_tag(run_tags: Mapping, key: str, default=None):
    """The value of tag ``key`` in ``run_tags``, or of the key earlier versions wrote for it.

    Examples
    --------
    >>> read_tag({"mlflow_observe.drift.status": "drift"}, DRIFT_STATUS)
    'drift'
    >>> read_tag({DRIFT_STATUS: "ok", "mlflow_observe.drift.status": "drift"}, DRIFT_STATUS)
    'ok'
    >>> read_tag({}, DRIFT_STATUS, "?")
    '?'
    """
    if key in run_tags:
        return run_tags[key]
    legacy = LEGACY.get(key)
    return run_tags[legacy] if legacy is not None and legacy in run_tags else default


def has_tag(run_tags: Mapping, key: str) -> bool:
    """Whether ``run_tags`` has ``key`` or the key earlier versions wrote for it."""
    return key in run_tags or LEGACY.get(key, key) in run_tags


def search_filters(key: str, value: str) -> list[str]:
    """MLflow search filters for runs whose tag ``key`` is ``value``: one per spelling of the key.

    MLflow's filters have no ``or``: search with each and join the runs found.

    Examples
    --------
    >>> search_filters(BASELINE, "true")
    ["tags.`observe.baseline` = 'true'", "tags.`mlflow_observe.baseline` = 'true'"]
    """
    keys = [key] + ([LEGACY[key]] if key in LEGACY else [])
    return [f"tags.`{k}` = {quoted(value)}" for k in keys]


def quoted(value) -> str:
    """A value quoted for an MLflow search filter.

    >>> quoted("it's")
    "'it\\\\'s'"
    """
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# Monitoring, alerts and gates. Short keys: they are the columns people sort and
# filter by in the MLflow UI's run list and in the model registry.
MODEL_NAME = "observe.model.name"
MODEL_VERSION = "observe.model.version"
ROLE = "observe.role"  # "monitor" (a version's time series), "window" or "gate"
ROLE_MONITOR, ROLE_WINDOW, ROLE_GATE = "monitor", "window", "gate"
MONITOR_WIDTH = "observe.monitor.window"  # e.g. "1h"
MONITOR_ORIGIN = "observe.monitor.origin"  # start of window index 0
MONITOR_LAST_WINDOW = "observe.monitor.last_window_end"
MONITOR_LOGS = "observe.monitor.logs"
# The monitor's window [start, end); observe.data.first_row/last_row are the first and
# last rows' timestamps, which the drift evaluator records on any run.
MONITOR_WINDOW_START = "observe.window.start"
MONITOR_WINDOW_END = "observe.window.end"
WINDOW_INDEX = "observe.window.index"
WINDOW_COMPLETE = "observe.window.complete"  # "true" once every result is logged
WINDOW_ERROR = "observe.window.error"  # why a window could not be evaluated
ALERT_LEVEL = "observe.alert.level"
ALERT_RULES = "observe.alert.rules"
ALERT_WEBHOOK = "observe.alert.webhook"
GATE_STATUS = "observe.gate.status"  # passed or failed
GATE_REASONS = "observe.gate.reasons"
GATE_RUN_ID = "observe.gate.run_id"
GATE_ACTION = "observe.gate.action"
# Every gate decision on the version, newest last: JSON [{run_id, time, status, promotion}]
# (the oldest dropped to fit a tag); the other gate tags describe the latest one.
GATE_HISTORY = "observe.gate.history"
# What became of the promotion the gate decided: "none" (nothing asked, or the gate
# failed), "pending" (decision recorded, alias not moved yet), "done" or "failed".
GATE_PROMOTION = "observe.gate.promotion"
PROMOTION_NONE, PROMOTION_PENDING, PROMOTION_DONE, PROMOTION_FAILED = (
    "none",
    "pending",
    "done",
    "failed",
)
# MLflow's own: the run description shown on the run page, and the parent link.
DESCRIPTION = "mlflow.note.content"
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
# The fleet view: a model version's latest monitored state, written on the version after
# each monitor (and gate) so that MLflow's Models page lists it; the registered model gets
# the same keys for its worst version (and WORST_VERSION names it). The prediction
# log a version is monitored from is MONITOR_LOGS on the version (set by log_model or
# `mlflow-observe logs set-location`; `monitor --all` reads it).
STATUS = "observe.status"  # critical, warning, ok or unmonitored
STATUS_CRITICAL, STATUS_WARNING, STATUS_OK, STATUS_UNMONITORED = (
    "critical",
    "warning",
    "ok",
    "unmonitored",
)
LAST_WINDOW = "observe.last_window"  # end of the last monitored window, ISO 8601 UTC
ROWS_LAST_DAY = "observe.rows_last_day"
DRIFT_SHARE = "observe.drift_share"
HEADLINE = "observe.headline"  # the performance key read, e.g. degradation/estimated_accuracy
HEADLINE_VALUE = "observe.headline.value"
HEADLINE_DELTA = "observe.headline.delta"
MONITOR_RUN_ID = "observe.monitor.run_id"
WORST_VERSION = "observe.worst_version"
ROLE_FLEET = "fleet"
