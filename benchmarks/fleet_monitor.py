"""The time ``mlflow-observe monitor --all`` takes for a fleet: per window and per model.

    .venv/bin/python benchmarks/fleet_monitor.py                      # 10 models x 24 hourly windows
    .venv/bin/python benchmarks/fleet_monitor.py --models 3 --hours 6  # a quick look

A fresh SQLite tracking store (artifacts beside it) in a temporary directory;
``--models`` registered models, each a logistic regression on three columns
(the tests' churn customers) logged with ``mo.log_model(..., log_location=...)``
and its own prediction log with ``--hours`` hours of synthetic traffic
(``--rows`` predictions an hour, written by the log writer in ten calls an
hour); every other model drifts from the middle of the day. Then one run of the
real command, in its own process::

    mlflow-observe monitor --all --window 1h --since DAY --until DAY+hours \
        --alert 'drift/share_drifted_columns>=0.5:critical' --output json

and the figures: its wall time (process start to exit), each model's time (from
the command's JSON), the time per window (a model's time over its windows), and
the fleet refresh (registry tags and the ``observe fleet`` run). A second run,
with nothing new to evaluate, times what a scheduled run costs on a quiet hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DAY = pd.Timestamp("2026-11-26", tz="UTC")
RULE = "drift/share_drifted_columns>=0.5:critical"


def customers(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.gamma(4.0, 6.0, n) + shift,
            "spend": rng.normal(60.0, 15.0, n) + shift / 3,
            "calls": rng.poisson(1.5, n).astype(float),
        }
    )


def build_fleet(root: Path, models: int, hours: int, rows: int) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    import mlflow_observe as mo
    from mlflow_observe.logs.writer import PredictionLogWriter

    mlflow.set_experiment("training")
    for index in range(models):
        name = f"model-{index:02d}"
        train = customers(3000, seed=index)
        labels = ((1.5 - 0.08 * train["tenure"] + 0.4 * train["calls"]) > 0).astype(int)
        model = LogisticRegression(max_iter=1000).fit(train, labels)
        reference = train.assign(
            churned=labels,
            prediction=model.predict(train),
            probability_1=model.predict_proba(train)[:, 1],
        )
        profile = mo.build_profile(
            reference, targets="churned", predictions="prediction", probabilities=["probability_1"]
        )
        log_dir = root / f"log-{name}"
        with mlflow.start_run():
            info = mo.log_model(
                model,
                name="model",
                baseline=profile,
                registered_model_name=name,
                input_example=train.head(3),
                log_location=str(log_dir),
            )
        writer = PredictionLogWriter(
            str(log_dir),
            model_name=name,
            model_version=str(info.registered_model_version),
            max_event_age_days=None,
            probabilities=lambda x, m=model: pd.DataFrame(m.predict_proba(x), columns=m.classes_),
        )
        drifts = index % 2 == 1
        for hour in range(hours):
            shift = 20.0 if drifts and hour >= hours // 2 else 0.0
            batch = customers(rows, seed=1000 * index + hour, shift=shift)
            for call in range(10):
                part = batch.iloc[call * rows // 10 : (call + 1) * rows // 10]
                stamp = DAY + pd.Timedelta(hours=hour, minutes=6 * call)
                writer.submit(
                    part, model.predict(part), latency_seconds=0.001, event_time=stamp.isoformat()
                )
        writer.close()
        print(f"built {name}", file=sys.stderr, flush=True)


def monitor_all(uri: str, hours: int) -> tuple[float, dict, int]:
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    args = [
        executable,
        "monitor",
        "--all",
        "--window",
        "1h",
        "--since",
        str(DAY),
        "--until",
        str(DAY + pd.Timedelta(hours=hours)),
        "--alert",
        RULE,
        "--output",
        "json",
    ]
    started = time.perf_counter()
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": uri}
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"monitor --all exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout), done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--rows", type=int, default=240, help="predictions an hour")
    parser.add_argument("--out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.create_experiment("training", artifact_location=(root / "artifacts").as_uri())
        started = time.perf_counter()
        build_fleet(root, args.models, args.hours, args.rows)
        build = time.perf_counter() - started
        total, first, code = monitor_all(uri, args.hours)
        quiet_total, quiet, _ = monitor_all(uri, args.hours)
    versions = first["versions"]
    per_model = [v["seconds"] for v in versions]
    per_window = [v["seconds"] / v["windows_evaluated"] for v in versions if v["windows_evaluated"]]
    windows = sum(v["windows_evaluated"] for v in versions)
    figures = {
        "models": args.models,
        "hours": args.hours,
        "rows_per_hour": args.rows,
        "build_seconds": round(build, 1),
        "exit_code": code,
        "windows_evaluated": windows,
        "critical_models": sum(v["level"] == "critical" for v in versions),
        "command_seconds": round(total, 1),
        "per_model_seconds_median": round(statistics.median(per_model), 2),
        "per_model_seconds_max": round(max(per_model), 2),
        "per_window_seconds_median": round(statistics.median(per_window), 3),
        "fleet_refresh_seconds": first["refresh_seconds"],
        "quiet_command_seconds": round(quiet_total, 1),
        "quiet_per_model_seconds_median": round(
            statistics.median(v["seconds"] for v in quiet["versions"]), 2
        ),
        "quiet_fleet_refresh_seconds": quiet["refresh_seconds"],
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
