"""The fleet in MLflow itself: status tags on the registry, and the ``observe fleet`` run.

After a monitor (or a gate), each version of the model gets its latest state as
tags (``observe.status``, ``observe.alert.level``, ``observe.last_window``...),
the registered model gets the same keys for its worst version, so MLflow's
*Models* page is the fleet dashboard; and the one run named ``observe fleet``
(experiment ``observe fleet``) gets the whole fleet as an HTML page, the same
table as an MLflow table artifact and fleet-level metrics over time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from mlflow_observe.monitoring.runs import create_run, get_or_create_experiment, search_runs
from mlflow_observe.monitoring.status import COLUMNS, fleet_frame
from mlflow_observe.report.fleet import render_fleet
from mlflow_observe.tracking import tags

_logger = logging.getLogger(__name__)

FLEET_EXPERIMENT = "observe fleet"
FLEET_RUN = "observe fleet"
FLEET_REPORT = "fleet.html"
FLEET_TABLE = "fleet_table.json"
# MLflow's tag listing a run's table artifacts (what mlflow.log_table sets).
_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"
_RANK = {
    tags.STATUS_CRITICAL: 0,
    tags.STATUS_WARNING: 1,
    tags.STATUS_OK: 2,
    tags.STATUS_UNMONITORED: 3,
}


def version_status(row) -> str:
    """A fleet row's ``observe.status``: its alert level, ``ok`` or ``unmonitored``.

    >>> version_status({"level": "warning", "last_window": pd.Timestamp("2026-11-26", tz="UTC")})
    'warning'
    >>> version_status({"level": None, "last_window": None})
    'unmonitored'
    """
    if row["level"] in (tags.STATUS_CRITICAL, tags.STATUS_WARNING):
        return row["level"]
    return tags.STATUS_UNMONITORED if _missing(row["last_window"]) else tags.STATUS_OK


def version_tags(row) -> dict:
    """The ``observe.*`` tags of one fleet row (a row of :func:`fleet_frame`), as strings.

    A value the row does not have is written as an empty string, so a tag never
    keeps a number from an earlier window that the latest one lacks.

    >>> row = {"level": None, "last_window": pd.Timestamp("2026-11-26 06:00", tz="UTC"),
    ...        "rows_last_day": 1440.0, "drift_share": 0.0, "headline": None,
    ...        "headline_value": None, "headline_delta": None, "monitor_run_id": "abc"}
    >>> version_tags(row)[tags.STATUS], version_tags(row)[tags.LAST_WINDOW]
    ('ok', '2026-11-26T06:00:00+00:00')
    >>> version_tags(row)[tags.ALERT_LEVEL], version_tags(row)[tags.DRIFT_SHARE]
    ('none', '0')
    """
    row = {k: (None if _missing(v) else v) for k, v in dict(row).items()}
    return {
        tags.STATUS: version_status(row),
        tags.ALERT_LEVEL: row["level"] or "none",
        tags.LAST_WINDOW: "" if _missing(row["last_window"]) else row["last_window"].isoformat(),
        tags.ROWS_LAST_DAY: _text(row["rows_last_day"], ".0f"),
        tags.DRIFT_SHARE: _text(row["drift_share"], ".4g"),
        tags.HEADLINE: row["headline"] or "",
        tags.HEADLINE_VALUE: _text(row["headline_value"], ".4g"),
        tags.HEADLINE_DELTA: _text(row["headline_delta"], "+.4g"),
        tags.MONITOR_RUN_ID: row["monitor_run_id"] or "",
    }


def model_tags(rows: pd.DataFrame) -> dict:
    """The registered model's roll-up: its worst version's tags, and which version that is.

    ``observe.last_window`` is the latest window monitored on any version.
    """
    ranked = sorted(
        (r for _, r in rows.iterrows()),
        key=lambda r: (_RANK[version_status(r)], -_number(r["drift_share"], -1.0)),
    )
    worst = ranked[0]
    windows = [r["last_window"] for r in ranked if not _missing(r["last_window"])]
    rollup = {
        k: v
        for k, v in version_tags(worst).items()
        if k in (tags.STATUS, tags.ALERT_LEVEL, tags.DRIFT_SHARE, tags.HEADLINE_DELTA)
    }
    rollup[tags.WORST_VERSION] = str(worst["version"])
    rollup[tags.LAST_WINDOW] = max(windows).isoformat() if windows else ""
    return rollup


def record_status(frame: pd.DataFrame, client: MlflowClient | None = None) -> int:
    """Write every row's tags on its version, and the roll-up on each registered model.

    Only tags whose value changed are written. Returns the number of tags written.
    """
    client = client or MlflowClient()
    written = 0
    for name, rows in frame.groupby("model", sort=False):
        current = {
            str(v.version): dict(v.tags or {})
            for v in client.search_model_versions(f"name = {tags.quoted(name)}")
        }
        for _, row in rows.iterrows():
            have = current.get(str(row["version"]), {})
            for key, value in version_tags(row).items():
                if have.get(key) != value:
                    client.set_model_version_tag(name, str(row["version"]), key, value)
                    written += 1
        have = dict(client.get_registered_model(name).tags or {})
        for key, value in model_tags(rows).items():
            if have.get(key) != value:
                client.set_registered_model_tag(name, key, value)
                written += 1
    return written


def fleet_metrics(frame: pd.DataFrame) -> dict:
    """Fleet-level numbers: versions, how many alert (critical, warning), are ok, unmonitored.

    >>> frame = pd.DataFrame({"model": ["a", "b"], "level": ["critical", None],
    ...                       "last_window": [pd.Timestamp("2026-11-26", tz="UTC"), None],
    ...                       "drift_share": [0.5, None]})
    >>> fleet_metrics(frame)["fleet/n_alerting"], fleet_metrics(frame)["fleet/n_unmonitored"]
    (1.0, 1.0)
    """
    statuses = [version_status(r) for _, r in frame.iterrows()]
    shares = pd.to_numeric(frame["drift_share"], errors="coerce").dropna()
    metrics = {
        "fleet/n_models": float(frame["model"].nunique()),
        "fleet/n_versions": float(len(frame)),
        "fleet/n_critical": float(statuses.count(tags.STATUS_CRITICAL)),
        "fleet/n_warning": float(statuses.count(tags.STATUS_WARNING)),
        "fleet/n_alerting": float(
            statuses.count(tags.STATUS_CRITICAL) + statuses.count(tags.STATUS_WARNING)
        ),
        "fleet/n_ok": float(statuses.count(tags.STATUS_OK)),
        "fleet/n_unmonitored": float(statuses.count(tags.STATUS_UNMONITORED)),
    }
    if len(shares):  # a number or absent: no monitored version, no maximum
        metrics["fleet/max_drift_share"] = float(shares.max())
    return metrics


def publish_fleet_run(
    frame: pd.DataFrame, client: MlflowClient | None = None, *, errors: dict | None = None
) -> str:
    """Refresh the ``observe fleet`` run: ``fleet.html``, ``fleet_table.json``, ``fleet/*``.

    ``errors`` (``{(model, version): message}``) are shown on the page (from
    ``monitor --all``). Returns the run id.
    """
    client = client or MlflowClient()
    experiment_id = get_or_create_experiment(client, FLEET_EXPERIMENT)
    found = search_runs(
        client,
        [experiment_id],
        f"tags.`{tags.ROLE}` = {tags.quoted(tags.ROLE_FLEET)}",
        order_by=["attributes.start_time ASC"],
    )
    run_id = (
        found[0].info.run_id
        if found
        else create_run(
            client,
            experiment_id,
            FLEET_RUN,
            {tags.ROLE: tags.ROLE_FLEET, tags.DESCRIPTION: _DESCRIPTION},
        ).info.run_id
    )
    now = pd.Timestamp.now(tz="UTC")
    table = fleet_table(frame, errors or {})
    page = render_fleet(table, links=_links(frame), generated=now)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, FLEET_REPORT), "w", encoding="utf-8") as handle:
            handle.write(page)
        # mlflow.log_table appends to an existing table; the fleet table is replaced, in the
        # same format (split-oriented JSON, listed in mlflow.loggedArtifacts as a table).
        table.to_json(
            os.path.join(tmp, FLEET_TABLE), orient="split", index=False, date_format="iso"
        )
        with contextlib.redirect_stdout(sys.stderr):
            client.log_artifact(run_id, os.path.join(tmp, FLEET_REPORT))
            client.log_artifact(run_id, os.path.join(tmp, FLEET_TABLE))
    listed = json.loads(client.get_run(run_id).data.tags.get(_LOGGED_ARTIFACTS, "[]"))
    if {"path": FLEET_TABLE, "type": "table"} not in listed:
        listed.append({"path": FLEET_TABLE, "type": "table"})
        client.set_tag(run_id, _LOGGED_ARTIFACTS, json.dumps(listed))
    step = len(client.get_metric_history(run_id, "fleet/n_versions"))
    stamp = int(now.timestamp() * 1000)
    client.log_batch(
        run_id, metrics=[Metric(k, v, stamp, step) for k, v in fleet_metrics(frame).items()]
    )
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id


def refresh(
    name: str | None = None, client: MlflowClient | None = None, *, errors: dict | None = None
) -> tuple[pd.DataFrame, str]:
    """Tags on the versions of model ``name`` (every model when None), then the fleet run.

    Returns the fleet frame (:func:`~mlflow_observe.monitoring.status.fleet_frame`) and
    the fleet run's id.
    """
    client = client or MlflowClient()
    frame = fleet_frame(client=client)
    mine = frame if name is None else frame[frame["model"] == name]
    if len(mine):
        record_status(mine, client)
    return frame, publish_fleet_run(frame, client, errors=errors)


def refresh_quietly(name: str, client: MlflowClient | None = None) -> None:
    """:func:`refresh` after one model's monitor or gate: a failure is a warning, never theirs."""
    try:
        refresh(name, client)
    except Exception as exc:  # the monitor's and the gate's own results stand
        _logger.warning("Could not refresh the fleet view for %r: %r", name, exc)


def fleet_url(experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run, when the tracking URI is an http(s) server."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


_DESCRIPTION = (
    "The fleet at a glance: every registered model version with a baseline, worst first. "
    f"Open `{FLEET_REPORT}` in the artifacts; `{FLEET_TABLE}` is the same table, and the "
    "`fleet/*` metrics count the versions by status over time. Refreshed by "
    "`mlflow-observe monitor` and `gate`."
)


def fleet_table(frame: pd.DataFrame, errors: dict) -> pd.DataFrame:
    """The table the fleet run shows: :func:`fleet_frame`'s columns, each row's
    ``status``, and ``errors`` (``{(model, version): message}``) in an ``error`` column."""
    table = frame[COLUMNS].copy()
    table.insert(2, "status", [version_status(r) for _, r in frame.iterrows()])
    table["error"] = [errors.get((r["model"], str(r["version"])), "") for _, r in frame.iterrows()]
    table["last_window"] = ["" if _missing(v) else v.isoformat() for v in table["last_window"]]
    return table.astype(object).where(table.notna(), None)


def _links(frame: pd.DataFrame) -> list:
    links = []
    for _, row in frame.iterrows():
        run, experiment = row["monitor_run_id"], row["experiment_id"]
        unknown = _missing(run) or _missing(experiment)
        links.append(None if unknown else fleet_url(experiment, run))
    return links


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _number(value, default: float) -> float:
    return default if _missing(value) else float(value)


def _text(value, spec: str) -> str:
    return "" if _missing(value) else format(float(value), spec)
