"""Tag keys: written under observe.*, and runs tagged by earlier versions still found and read."""

import mlflow
from helpers import make_frame
from mlflow import MlflowClient

import mlflow_observe as mo
from mlflow_observe.monitoring.history import history
from mlflow_observe.monitoring.runs import tagged_runs
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.baselines import ARTIFACT_PATH

# What versions up to 0.1 wrote on a baseline run and on a monitored window's run.
OLD_BASELINE_TAGS = {
    "mlflow_observe.baseline": "true",
    "mlflow_observe.baseline_artifact": ARTIFACT_PATH,
    "mlflow_observe.version": "0.1.0",
}
OLD_WINDOW_TAGS = {
    "mlflow_observe.version": "0.1.0",
    "mlflow_observe.drift.status": "drift",
    "mlflow_observe.drift.drifted_columns": "num_a",
    "mlflow_observe.window.n_rows": "1234",
    "mlflow_observe.window.start": "2026-11-25T00:01:00+00:00",
    "mlflow_observe.window.end": "2026-11-25T00:59:00+00:00",
    "mlflow_observe.degradation.status": "degraded",
    "mlflow_observe.degradation.kind": "estimated",
}


def test_every_key_is_under_observe_and_maps_to_the_one_written_before():
    assert all(key.startswith("observe.") for key in tags.LEGACY)
    assert all(old.startswith("mlflow_observe.") for old in tags.LEGACY.values())
    assert len(set(tags.LEGACY.values())) == len(tags.LEGACY)
    # the evaluated rows' timestamps are not the monitored window's bounds
    assert tags.DATA_FIRST_ROW != tags.MONITOR_WINDOW_START
    assert tags.DATA_LAST_ROW != tags.MONITOR_WINDOW_END


def test_a_baseline_tagged_by_an_earlier_version_is_found_and_read(tracking_uri):
    client = MlflowClient()
    reference = make_frame(2000, seed=1)
    # The baseline as an earlier version recorded it: the artifact and the old tags only.
    with mlflow.start_run() as old:
        mlflow.log_text(mo.build_profile(reference).to_json(), ARTIFACT_PATH)
    for key, value in OLD_BASELINE_TAGS.items():
        client.set_tag(old.info.run_id, key, value)
    # ... and one recorded now.
    with mlflow.start_run() as new:
        mo.log_baseline(reference)
    written = client.get_run(new.info.run_id).data.tags
    assert written[tags.BASELINE] == "true" and written[tags.PLUGIN_VERSION] == mo.__version__
    assert not any(key.startswith("mlflow_observe.") for key in written)

    experiment = [old.info.experiment_id]
    found = tagged_runs(client, experiment, tags.BASELINE, "true")
    assert [r.info.run_id for r in found] == [old.info.run_id, new.info.run_id]
    old_tags = found[0].data.tags
    assert tags.read_tag(old_tags, tags.BASELINE) == "true"
    assert tags.read_tag(old_tags, tags.BASELINE_ARTIFACT) == ARTIFACT_PATH
    assert tags.read_tag(old_tags, tags.PLUGIN_VERSION) == "0.1.0"

    # An evaluation against the old baseline run works and writes the new keys.
    window = make_frame(2000, seed=2, shift=1.0)
    result = mo.evaluate_drift(window, baseline=old.info.run_id, log_plots=False)
    run_tags = client.get_run(result._run_id).data.tags
    assert run_tags[tags.BASELINE_RUN_ID] == old.info.run_id
    assert run_tags[tags.DRIFT_STATUS] in ("warning", "drift")  # num_a moved: not "ok"
    assert run_tags[tags.DATA_N_ROWS] == "2000"
    assert "num_a" in run_tags[tags.DRIFTED_COLUMNS].split(", ")


def test_history_reads_runs_tagged_by_an_earlier_version(tracking_uri):
    client = MlflowClient()
    with mlflow.start_run() as training:
        pass
    for key, value in OLD_BASELINE_TAGS.items():
        client.set_tag(training.info.run_id, key, value)
    client.create_registered_model("churn")
    client.create_model_version(
        "churn", f"runs:/{training.info.run_id}/model", run_id=training.info.run_id
    )
    with mlflow.start_run() as window:
        pass
    window_tags = {
        tags.ROLE: tags.ROLE_WINDOW,
        tags.MODEL_NAME: "churn",
        tags.MODEL_VERSION: "1",
        tags.WINDOW_COMPLETE: "true",
        tags.MONITOR_WINDOW_START: "2026-11-25T00:00:00+00:00",
        tags.MONITOR_WINDOW_END: "2026-11-25T01:00:00+00:00",
        **OLD_WINDOW_TAGS,
    }
    for key, value in window_tags.items():
        client.set_tag(window.info.run_id, key, value)

    events = history("models:/churn/1")
    by_kind = {e.kind: e for e in events}
    assert by_kind["baseline"].summary.endswith(f"by run {training.info.run_name}")  # found
    assert by_kind["window"].summary == (
        "window 2026-11-25T00:00:00+00:00 .. 2026-11-25T01:00:00+00:00: "
        "1234 rows, drift drift, degradation degraded"
    )
    read = client.get_run(window.info.run_id).data.tags
    assert tags.read_tag(read, tags.DATA_FIRST_ROW) == "2026-11-25T00:01:00+00:00"
    assert tags.read_tag(read, tags.DATA_LAST_ROW) == "2026-11-25T00:59:00+00:00"
    assert tags.read_tag(read, tags.DEGRADATION_KIND) == "estimated"
    assert tags.read_tag(read, tags.DRIFTED_COLUMNS) == "num_a"
    # without the old tags the same run reads as unknown, not as a false "ok"
    for key in OLD_WINDOW_TAGS:
        client.delete_tag(window.info.run_id, key)
    (event,) = [e for e in history("models:/churn/1") if e.kind == "window"]
    assert event.summary.endswith("? rows, drift ?")
