"""The fleet view: status tags on the registry, the ``observe fleet`` run, ``monitor --all``.

A real SQLite tracking store (and, for the browser, a real `mlflow server`), real
Parquet prediction logs written by the log writer, the real `mlflow-observe` command.
"""

import json
import os
import shutil
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from helpers import (
    DAY,
    HOURS,
    ROWS_PER_HOUR,
    customers,
    log_version,
    write_traffic,
)
from mlflow import MlflowClient

import mlflow_observe as mo

UNTIL = DAY + pd.Timedelta(hours=HOURS)
RULE = "drift/share_drifted_columns>=0.5:critical"


def cli(*args, uri, timeout=600):
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    return subprocess.run(
        [executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )


def make_fleet(root):
    """churn (drifts from hour 3), calm (never drifts), lost (its log location does not
    exist) and shelf (no log location recorded): four registered models, one version each."""
    mlflow.set_experiment("training")
    logs = {name: root / f"log-{name}" for name in ("churn", "calm")}
    churn, _ = log_version(customers(3000, seed=0), "churn", log_location=str(logs["churn"]))
    write_traffic(logs["churn"], churn, 1, registered="churn")
    calm, _ = log_version(customers(3000, seed=0), "calm")
    write_traffic(logs["calm"], calm, 1, registered="calm", drift_from=None)
    lost, _ = log_version(customers(3000, seed=0), "lost", log_location=str(root / "no-such-dir"))
    log_version(customers(3000, seed=0), "shelf")
    return logs, lost


def monitor_all_args(*extra):
    return [
        "monitor",
        "--all",
        "--window",
        "1h",
        "--since",
        str(DAY),
        "--until",
        str(UNTIL),
        "--alert",
        RULE,
        "--min-rows",
        "100",
        *extra,
    ]


def last_window_metrics(client, name):
    """The last window's metrics, read from the model's own monitoring experiment."""
    experiment = client.get_experiment_by_name(f"{name} monitoring")
    (last,) = client.search_runs(
        [experiment.experiment_id],
        "tags.`observe.role` = 'window'",
        order_by=["tags.`observe.window.start` DESC"],
        max_results=1,
    )
    return last.data.metrics


@pytest.mark.server
def test_monitor_all_the_fleet_journey(tracking_uri, tmp_path):
    logs, lost = make_fleet(tmp_path)
    client = MlflowClient()
    # calm's location is recorded after registration, from the command line.
    where = cli(
        "logs",
        "set-location",
        "-m",
        "models:/calm/1",
        "--logs",
        str(logs["calm"]),
        uri=tracking_uri,
    )
    assert where.returncode == 0, where.stderr
    assert client.get_model_version("calm", "1").tags["observe.monitor.logs"] == str(logs["calm"])
    assert client.get_model_version("churn", "1").tags["observe.monitor.logs"] == str(logs["churn"])

    first = cli(*monitor_all_args("--output", "json"), uri=tracking_uri)
    assert first.returncode == 1, first.stderr  # churn raised a critical alert
    result = json.loads(first.stdout)
    entries = {e["model"]: e for e in result["versions"]}
    assert set(entries) == {"churn", "calm", "lost", "shelf"}
    assert entries["churn"]["status"] == "monitored"
    assert entries["churn"]["windows_evaluated"] == HOURS
    assert entries["churn"]["level"] == "critical"
    assert entries["calm"]["status"] == "monitored"
    assert entries["calm"]["windows_evaluated"] == HOURS and entries["calm"]["level"] is None
    # lost: evaluated nothing, its error names the missing location; the others went on.
    assert entries["lost"]["status"] == "error" and entries["lost"]["windows_evaluated"] == 0
    assert str(tmp_path / "no-such-dir") in entries["lost"]["error"]
    assert entries["shelf"]["status"] == "no log location" and entries["shelf"]["error"] is None

    # The version tags: MLflow's Models page shows each version's state.
    churn = client.get_model_version("churn", "1").tags
    churn_metrics = last_window_metrics(client, "churn")
    assert churn["observe.status"] == "critical" and churn["observe.alert.level"] == "critical"
    assert pd.Timestamp(churn["observe.last_window"]) == UNTIL
    assert churn["observe.rows_last_day"] == str(HOURS * ROWS_PER_HOUR)
    assert float(churn["observe.drift_share"]) == pytest.approx(
        churn_metrics["drift/share_drifted_columns"], abs=1e-4
    )
    assert float(churn["observe.drift_share"]) >= 0.5
    assert churn["observe.headline"] == "degradation/estimated_accuracy"  # no labels arrived
    assert float(churn["observe.headline.value"]) == pytest.approx(
        churn_metrics["degradation/estimated_accuracy"], rel=1e-3
    )
    calm = client.get_model_version("calm", "1").tags
    calm_metrics = last_window_metrics(client, "calm")
    assert calm["observe.status"] == "ok" and calm["observe.alert.level"] == "none"
    assert float(calm["observe.drift_share"]) == pytest.approx(
        calm_metrics["drift/share_drifted_columns"], abs=1e-4
    )
    assert float(calm["observe.drift_share"]) < 0.5
    for name in ("lost", "shelf"):
        version_tags = client.get_model_version(name, "1").tags
        assert version_tags["observe.status"] == "unmonitored"
        assert version_tags["observe.last_window"] == ""
    # The registered models: the roll-up of their worst version.
    model = client.get_registered_model("churn").tags
    assert model["observe.status"] == "critical" and model["observe.worst_version"] == "1"
    assert pd.Timestamp(model["observe.last_window"]) == UNTIL
    assert client.get_registered_model("calm").tags["observe.status"] == "ok"
    assert client.get_registered_model("lost").tags["observe.status"] == "unmonitored"

    # The fleet run: one run, an HTML page and a table, worst first, and fleet metrics.
    experiment = client.get_experiment_by_name("observe fleet")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "observe fleet" and run.info.run_id == result["fleet_run_id"]
    table = client.load_table(
        experiment.experiment_id, "fleet_table.json", run_ids=[run.info.run_id]
    )
    assert list(table["model"])[0] == "churn" and list(table["status"])[:2] == ["critical", "ok"]
    assert set(table["model"]) == {"churn", "calm", "lost", "shelf"}
    assert str(tmp_path / "no-such-dir") in table.set_index("model").loc["lost", "error"]
    page = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/fleet.html")
    assert page.index(">churn<") < page.index(">calm<") < page.index(">lost<")
    assert "no-such-dir" in page
    metrics = run.data.metrics
    assert metrics["fleet/n_versions"] == 4 and metrics["fleet/n_models"] == 4
    assert metrics["fleet/n_critical"] == 1 and metrics["fleet/n_alerting"] == 1
    assert metrics["fleet/n_ok"] == 1 and metrics["fleet/n_unmonitored"] == 2
    assert metrics["fleet/max_drift_share"] == pytest.approx(
        float(churn["observe.drift_share"]), abs=1e-4
    )

    # The status view agrees, worst first.
    status = mo.status()
    assert list(status["model"][:2]) == ["churn", "calm"]

    # Again: nothing new, so no alert; lost still cannot be monitored: exit 3.
    again = cli(*monitor_all_args(), uri=tracking_uri)
    assert again.returncode == 3, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "version", "windows"]
    lost_line = next(line for line in lines if line.startswith("lost "))
    assert "error" in lost_line and "no-such-dir" in lost_line
    churn_line = next(line for line in lines if line.startswith("churn "))
    assert churn_line.split()[2] == "0"  # every window was evaluated before
    assert "2 of 4 version(s) monitored" in lines[-1]
    # Still one fleet run, refreshed: each metric has a second point.
    (run,) = client.search_runs([experiment.experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "fleet/n_versions")) == 2
    assert (
        len(
            client.load_table(
                experiment.experiment_id, "fleet_table.json", run_ids=[run.info.run_id]
            )
        )
        == 4
    )

    # lost's location fixed (and given traffic): the fleet is monitored, exit 0 without alerts.
    lost_dir = tmp_path / "log-lost"
    write_traffic(lost_dir, lost, 1, registered="lost", drift_from=None)
    moved = cli(
        "logs", "set-location", "-m", "models:/lost/1", "--logs", str(lost_dir), uri=tracking_uri
    )
    assert moved.returncode == 0, moved.stderr
    fixed = cli(*monitor_all_args("--output", "json"), uri=tracking_uri)
    assert fixed.returncode == 0, fixed.stderr
    entries = {e["model"]: e for e in json.loads(fixed.stdout)["versions"]}
    assert (
        entries["lost"]["status"] == "monitored" and entries["lost"]["windows_evaluated"] == HOURS
    )
    assert client.get_model_version("lost", "1").tags["observe.status"] == "ok"
