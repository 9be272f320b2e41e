"""Tag keys that link runs, baselines and evaluations."""

PREFIX = "mlflow_observe"
BASELINE = f"{PREFIX}.baseline"  # "true" on a run that recorded a baseline
BASELINE_ARTIFACT = f"{PREFIX}.baseline_artifact"
BASELINE_RUN_ID = f"{PREFIX}.baseline_run_id"
BASELINE_URI = f"{PREFIX}.baseline_uri"
VERSION = f"{PREFIX}.version"
DRIFT_STATUS = f"{PREFIX}.drift.status"
DRIFTED_COLUMNS = f"{PREFIX}.drift.drifted_columns"
WINDOW_ROWS = f"{PREFIX}.window.n_rows"
WINDOW_START = f"{PREFIX}.window.start"
WINDOW_END = f"{PREFIX}.window.end"
