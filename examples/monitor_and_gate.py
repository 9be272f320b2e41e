"""A day in production: serve, monitor hour by hour, catch the drift, gate the retrained model.

    .venv/bin/python examples/monitor_and_gate.py     (after `python3 tasks.py demo`)

1. trains a churn classifier and logs it with ``mlflow_observe.log_model`` (its
   baseline records the training data, predictions and probabilities),
   registered as ``churn`` version 1 with the alias ``champion``;
2. serves ``models:/churn@champion`` with ``mlflow models serve`` on 127.0.0.1
   and replays a full day of traffic through it (each request carries its
   ``event_time``): from 14:00 the customers change, staying 18 months longer;
   labels arrive for the morning only;
3. runs the monitor over the day in 1-hour windows with two alert rules and
   a local webhook: each window is a run nested under ``churn v1 monitoring``,
   whose metric charts are the day's time series; the afternoon raises alerts;
4. gates two candidates on the afternoon's labelled holdout: version 2,
   trained again on the old customers, is refused (its training data no longer
   looks like production); version 3, retrained on recent customers, passes
   and becomes the champion;
5. prints version 1's audit trail: baseline, windows, alerts, gate decisions.

Everything stays on this machine: a SQLite tracking store and the log under
./.demo (or --store).
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import threading
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import requests
from _serving import free_port, serving
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

import mlflow_observe as mo

DAY = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)  # yesterday, a full day
DRIFT_FROM_HOUR = 14
CALLS_PER_HOUR, ROWS_PER_CALL = 6, 40
ALERTS = ["drift/share_drifted_columns>=0.5:critical", "drift/prediction_drift>=1:warning"]


def make_customers(n: int, seed: int, tenure_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_months": rng.gamma(4.0, 6.0, n) + tenure_shift,
            "monthly_spend": rng.normal(60.0, 15.0, n) + tenure_shift / 2,
            "support_calls": rng.poisson(1.5, n).astype(float),
        }
    )


def churned(frame: pd.DataFrame, seed: int = 0) -> pd.Series:
    """Who churns: likelier with few months and many support calls (not a sure thing)."""
    score = 1.5 - 0.08 * frame["tenure_months"] + 0.4 * frame["support_calls"]
    chance = 1 / (1 + np.exp(-2.0 * score))
    return pd.Series(
        np.random.default_rng(seed).random(len(frame)) < chance, index=frame.index
    ).astype(int)


def train_and_log(customers: pd.DataFrame, run_name: str) -> str:
    """Train, log the wrapped model with its baseline, register it; return the version."""
    labels = churned(customers)
    model = LogisticRegression(max_iter=1000).fit(customers, labels)
    reference = customers.assign(
        churned=labels,
        prediction=model.predict(customers),
        probability_1=model.predict_proba(customers)[:, 1],
    )
    # Predictions and probabilities in the baseline let the monitor estimate accuracy
    # before labels arrive (the log stores them under these names).
    profile = mo.build_profile(
        reference, targets="churned", predictions="prediction", probabilities=["probability_1"]
    )
    with mlflow.start_run(run_name=run_name):
        info = mo.log_model(
            model,
            name="model",
            baseline=profile,
            registered_model_name="churn",
            input_example=customers.head(3),
        )
    return str(info.registered_model_version)


def replay_day(url: str) -> pd.DataFrame:
    """Send a day of requests, each stamped with its event time; return what was sent."""
    sent = []
    for hour in range(24):
        shift = 18.0 if hour >= DRIFT_FROM_HOUR else 0.0
        customers = make_customers(
            CALLS_PER_HOUR * ROWS_PER_CALL, seed=1000 + hour, tenure_shift=shift
        )
        for call in range(CALLS_PER_HOUR):
            part = customers.iloc[call * ROWS_PER_CALL : (call + 1) * ROWS_PER_CALL]
            moment = DAY + pd.Timedelta(hours=hour, minutes=call * 60 // CALLS_PER_HOUR)
            request_id = f"{moment:%H%M}"
            response = requests.post(
                f"{url}/invocations",
                timeout=30,
                json={
                    "dataframe_split": part.to_dict(orient="split"),
                    "params": {"request_id": request_id, "event_time": moment.isoformat()},
                },
            )
            response.raise_for_status()
            sent.append(
                part.assign(request_id=[f"{request_id}-{i}" for i in range(len(part))], hour=hour)
            )
    return pd.concat(sent, ignore_index=True)


class WebhookReceiver(http.server.ThreadingHTTPServer):
    """Stands in for Slack or PagerDuty: keeps each alert it receives."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/observe"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def main(store: Path) -> None:
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    warnings.filterwarnings("ignore", category=FutureWarning)  # MLflow's stage deprecation
    store = store / "monitor-and-gate"
    shutil.rmtree(store, ignore_errors=True)  # each run tells the same story from scratch
    store.mkdir(parents=True)
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    log_dir = store / "prediction-log"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("churn training")
    client = MlflowClient()

    # 1. The champion.
    champion = train_and_log(make_customers(4000, seed=0), "train v1")
    client.set_registered_model_alias("churn", "champion", champion)
    print(f"1. logged churn v{champion} (alias champion) with its baseline")

    # 2. A day of traffic through the served model; labels for the morning arrive later.
    with serving(
        "models:/churn@champion",
        tracking_uri,
        log_dir,
        MLFLOW_OBSERVE_MODEL_VERSION=champion,
        MLFLOW_OBSERVE_FLUSH_SECONDS="0.5",
    ) as url:
        sent = replay_day(url)
        time.sleep(1.5)  # the workers write every 0.5 s here
    morning = sent[sent["hour"] < 12]
    mo.log_labels(
        str(log_dir),
        pd.DataFrame(
            {"request_id": morning["request_id"], "label": churned(morning, seed=5).to_numpy()}
        ),
    )
    print(
        f"2. replayed {len(sent)} predictions over {DAY:%Y-%m-%d} through {url}; "
        f"labels for the {len(morning)} morning predictions"
    )

    # 3. The monitor, as cron would run it every hour (here: once over the whole day).
    hooks = WebhookReceiver()
    result = mo.monitor(
        "models:/churn@champion",
        str(log_dir),
        window="1h",
        since=DAY,
        until=DAY + pd.Timedelta(days=1),
        alerts=ALERTS,
        webhook=hooks.url,
    )
    alerting = [w for w in result.windows if w.level]
    first = next(w for w in result.windows if w.level == "critical")
    # One page per incident (a rule firing on consecutive windows), one resolve when it clears.
    pages = [p for p in hooks.received if p["event"] == "trigger"]
    print(
        f"3. monitored {len(result.evaluated)} hourly windows; first critical alert at "
        f"{first.window.start:%H:%M}; {len(alerting)} windows alerted, "
        f"{len(pages)} incident(s) paged once each, {len(hooks.received) - len(pages)} resolved"
    )
    for w in result.windows[DRIFT_FROM_HOUR - 4 : DRIFT_FROM_HOUR + 2]:
        kind = "realised" if "degradation/accuracy" in w.metrics else "estimated"
        accuracy = w.metrics.get(
            "degradation/accuracy", w.metrics.get("degradation/estimated_accuracy", float("nan"))
        )
        print(
            f"   {w.window.start:%H:%M}  drift share "
            f"{w.metrics['drift/share_drifted_columns']:.2f}  accuracy {accuracy:.3f} "
            f"({kind})  alert: {w.level or '-'}"
        )
    again = mo.monitor(
        "models:/churn@champion",
        str(log_dir),
        window="1h",
        since=DAY,
        until=DAY + pd.Timedelta(days=1),
    )
    print(
        f"   run again: {len(again.evaluated)} new windows ({again.already_evaluated} "
        "evaluated before)"
    )

    # 4. The gate, on a labelled holdout of recent (afternoon-like) customers.
    holdout = make_customers(1500, seed=7, tenure_shift=18.0)
    holdout = holdout.assign(churned=churned(holdout, seed=8))
    thresholds = ["drift/share_drifted_columns<=0.3", "degradation/accuracy_delta>=-0.05"]
    stale = train_and_log(make_customers(4000, seed=1), "train v2 (old customers)")
    refused = mo.gate(
        f"models:/churn/{stale}",
        data=holdout,
        against="champion",
        thresholds=thresholds,
        promote="champion",
    )
    fresh = train_and_log(
        make_customers(4000, seed=2, tenure_shift=18.0), "train v3 (recent customers)"
    )
    accepted = mo.gate(
        f"models:/churn/{fresh}",
        data=holdout,
        against="champion",
        thresholds=thresholds,
        promote="champion",
    )
    holder = client.get_model_version_by_alias("churn", "champion").version
    for label, verdict in (
        (f"v{stale} (old customers)", refused),
        (f"v{fresh} (retrained)", accepted),
    ):
        print(f"4. gate {label}: {verdict.status}")
        for check in verdict.checks:
            print(
                f"     {'pass' if check.passed else 'FAIL'}  {check.threshold}: "
                f"{check.candidate_value:.3f}"
            )
    print(f"   champion is now v{holder}")

    # 5. The audit trail of the version that served the day.
    print("5. the audit trail (mlflow-observe history -m models:/churn/<version>):")
    for version in (champion, stale, fresh):
        events = mo.history(f"models:/churn/{version}")
        windows = sum(e.kind == "window" for e in events)
        print(f"   churn v{version}: {len(events)} events, {windows} monitored windows")
        first_alert = next((e for e in events if e.kind == "alert"), None)
        for event in events:
            if event.kind in ("baseline", "gate") or event is first_alert:
                print(f"     {event.time[:19]}  {event.kind:<8} {event.summary[:100]}")
    print(f"\nMLflow UI: .venv/bin/mlflow ui --backend-store-uri {tracking_uri}")
    print("  experiment 'churn monitoring' -> run 'churn v1 monitoring' -> Model metrics")
    hooks.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path(".demo"))
    main(parser.parse_args().store)
