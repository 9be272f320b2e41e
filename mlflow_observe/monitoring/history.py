"""The audit trail of one model version: baseline, monitored windows, alerts, gate decisions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd
from mlflow.tracking import MlflowClient

from mlflow_observe.monitoring.runs import all_experiment_ids, model_version_runs
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.registry import resolve_model_version

BASELINE, WINDOW, ALERT, GATE = "baseline", "window", "alert", "gate"


@dataclass(frozen=True)
class Event:
    """One entry of a model version's history."""

    time: str  # ISO 8601, UTC
    kind: str  # baseline, window, alert or gate
    summary: str
    run_id: str | None


def history(model_uri: str) -> list:
    """Everything recorded about a model version, in time order.

    The baseline (when its run was logged), each monitored window and the
    alert it raised (when it was evaluated; the window's range is in the
    summary), and each gate decision (when it was taken), found by their tags
    in every experiment of the tracking server.

    Returns
    -------
    list of Event
    """
    client = MlflowClient()
    model = resolve_model_version(model_uri, client)
    events = []
    if model.run_id:
        run = client.get_run(model.run_id)
        has_baseline = tags.read_tag(run.data.tags, tags.BASELINE) == "true"
        events.append(
            Event(
                _iso(run.info.start_time),
                BASELINE,
                f"{model.label} logged by run {run.info.run_name or model.run_id}"
                + ("" if has_baseline else " (no baseline recorded on the run)"),
                model.run_id,
            )
        )
    experiment_ids = all_experiment_ids(client)
    for run in model_version_runs(
        client, model.name, model.version, tags.ROLE_WINDOW, experiment_ids
    ):
        events.extend(_window_events(run))
    for run in model_version_runs(
        client, model.name, model.version, tags.ROLE_GATE, experiment_ids
    ):
        t = run.data.tags
        if tags.GATE_STATUS not in t:
            continue  # a gate that could not decide
        events.append(
            Event(
                _iso(run.info.end_time or run.info.start_time),
                GATE,
                f"gate {t[tags.GATE_STATUS]}: {t.get(tags.GATE_REASONS, '')}; "
                f"actions: {t.get(tags.GATE_ACTION, 'none')}",
                run.info.run_id,
            )
        )
    return sorted(events, key=lambda e: (e.time, e.kind))


def _window_events(run) -> list:
    t, metrics = run.data.tags, run.data.metrics
    if t.get(tags.WINDOW_COMPLETE) != "true":
        return []
    # Audit order: when the window was evaluated (what was known when), not the window's time.
    end = _iso(run.info.end_time or run.info.start_time)
    share = metrics.get("drift/share_drifted_columns")
    summary = (
        f"window {t[tags.MONITOR_WINDOW_START]} .. {t[tags.MONITOR_WINDOW_END]}: "
        f"{tags.read_tag(t, tags.DATA_N_ROWS, '?')} rows, "
        f"drift {tags.read_tag(t, tags.DRIFT_STATUS, '?')}"
        + (f" (share {share:.2f})" if share is not None else "")
        + (
            f", degradation {tags.read_tag(t, tags.DEGRADATION_STATUS)}"
            if tags.has_tag(t, tags.DEGRADATION_STATUS)
            else ""
        )
    )
    events = [Event(end, WINDOW, summary, run.info.run_id)]
    if tags.ALERT_LEVEL in t:
        events.append(
            Event(
                end, ALERT, f"{t[tags.ALERT_LEVEL]}: {t.get(tags.ALERT_RULES, '')}", run.info.run_id
            )
        )
    return events


def _iso(millis) -> str:
    return pd.Timestamp(millis, unit="ms", tz="UTC").isoformat()


def to_json(events) -> str:
    return json.dumps([asdict(e) for e in events], indent=2)
