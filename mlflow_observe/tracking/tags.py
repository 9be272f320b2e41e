"""Tag keys that link runs, baselines and evaluations."""

PREFIX = "mlflow_observe"
BASELINE = f"{PREFIX}.baseline"  # "true" on a run that recorded a baseline
BASELINE_ARTIFACT = f"{PREFIX}.baseline_artifact"
BASELINE_RUN_ID = f"{PREFIX}.baseline_run_id"
BASELINE_URI = f"{PREFIX}.baseline_uri"
VERSION = f"{PREFIX}.version"
DRIFT_STATUS = f"{PREFIX}.drift.status"
DRIFTED_COLUMNS = f"{PREFIX}.drift.drifted_columns"
# The feature ranked first by impact x drift (when the baseline recorded feature impact).
TOP_IMPACT_FEATURE = f"{PREFIX}.drift.top_impact_feature"
WINDOW_ROWS = f"{PREFIX}.window.n_rows"
WINDOW_START = f"{PREFIX}.window.start"
WINDOW_END = f"{PREFIX}.window.end"
DEGRADATION_STATUS = f"{PREFIX}.degradation.status"
DEGRADATION_KIND = f"{PREFIX}.degradation.kind"

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
# The monitor's window [start, end); mlflow_observe.window.start/end are the first and
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
# MLflow's own: the run description shown on the run page, and the parent link.
DESCRIPTION = "mlflow.note.content"
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
