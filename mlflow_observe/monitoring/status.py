"""The fleet at a glance: every registered model version with a baseline, worst first."""

from __future__ import annotations

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlflow_observe.monitoring.catalogue import TRAFFIC_ROWS
from mlflow_observe.monitoring.runs import default_experiment_name, search_runs, tag_filter
from mlflow_observe.monitoring.windows import as_utc, parse_duration
from mlflow_observe.tracking import tags

COLUMNS = [
    "model",
    "version",
    "aliases",
    "last_window",
    "rows_last_day",
    "drift_share",
    "headline",
    "headline_value",
    "headline_delta",
    "level",
    "gate",
]
# Where each row's numbers come from, for links (fleet_frame only).
LINKS = ["experiment_id", "monitor_run_id", "window_run_id"]
# The headline performance metric: the first a window has (realised before estimated).
HEADLINES = ("accuracy", "roc_auc", "rmse", "mae")
_RANK = {"critical": 0, "warning": 1}


def status() -> pd.DataFrame:
    """Every registered model version that has a baseline, with its latest monitored state.

    Returns
    -------
    pandas.DataFrame
        One row per version, worst first (critical, then warning, then the
        largest drift share): ``model``, ``version``, ``aliases`` (comma
        separated), ``last_window`` (end of the last monitored window, UTC, or
        None), ``rows_last_day`` (predictions in the day of windows before it),
        ``drift_share`` (the last window's ``drift/share_drifted_columns``),
        ``headline`` (the performance key read: realised when labels arrived,
        else estimated), ``headline_value``, ``headline_delta``, ``level`` (the
        last window's alert level) and ``gate`` (``observe.gate.status``).

    Examples
    --------
    With a registry of monitored versions (the tests run this)::

        mo.status()
        #    model version   aliases              last_window  rows_last_day  drift_share ...
        # 0  churn       1  champion 2026-11-26 06:00:00+00:00         1440.0     0.666667 ...
    """
    return fleet_frame()[COLUMNS]


def fleet_frame(name: str | None = None, client: MlflowClient | None = None) -> pd.DataFrame:
    """:func:`status`, with the ids its numbers come from (``experiment_id``,
    ``monitor_run_id``, ``window_run_id``: None where not monitored).

    ``name`` keeps the versions of one registered model.
    """
    client = client or MlflowClient()
    rows, aliases = [], {}
    for version in versions_with_baseline(client, name):
        if version.name not in aliases:  # search results carry no aliases: ask the model
            aliases[version.name] = _aliases(client, version.name)
        row = {
            "model": version.name,
            "version": str(version.version),
            "aliases": ",".join(sorted(aliases[version.name].get(str(version.version), []))),
            "gate": (version.tags or {}).get(tags.GATE_STATUS),
        }
        row.update(_monitored(client, version.name, str(version.version)))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS + LINKS).astype(
        {c: object for c in ("aliases", "headline", "level", "gate", "last_window", *LINKS)}
    )
    if frame.empty:
        return frame
    order = frame.assign(
        _rank=frame["level"].map(lambda v: _RANK.get(v, 2)),
        _share=frame["drift_share"].fillna(-1.0),
    ).sort_values(["_rank", "_share", "model", "version"], ascending=[True, False, True, True])
    return frame.loc[order.index].reset_index(drop=True)


def versions_with_baseline(client: MlflowClient, name: str | None = None):
    """Every registered model version (of model ``name``, if given) whose run has a baseline."""
    for version in _all_versions(client, name):
        if _has_baseline(client, version.run_id):
            yield version


def _all_versions(client, name=None):
    token = None
    where = f"name = {tags.quoted(name)}" if name is not None else None
    while True:
        page = client.search_model_versions(where, max_results=200, page_token=token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _aliases(client, name: str) -> dict:
    """``{version: [alias, ...]}`` of a registered model."""
    by_version: dict = {}
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return by_version
    found = model.aliases or {}
    pairs = found.items() if isinstance(found, dict) else ((a.alias, a.version) for a in found)
    for alias, version in pairs:
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _has_baseline(client, run_id) -> bool:
    if not run_id:
        return False
    try:
        return client.get_run(run_id).data.tags.get(tags.BASELINE) == "true"
    except MlflowException:
        return False


def _monitored(client, name: str, version: str) -> dict:
    """The version's last complete window in its monitoring experiment (empty when none)."""
    empty = {
        "experiment_id": None,
        "monitor_run_id": None,
        "window_run_id": None,
        "last_window": None,
        "rows_last_day": None,
        "drift_share": None,
        "headline": None,
        "headline_value": None,
        "headline_delta": None,
        "level": None,
    }
    experiment = client.get_experiment_by_name(default_experiment_name(name))
    if experiment is None:
        return empty
    series = search_runs(
        client,
        [experiment.experiment_id],
        tag_filter(
            **{tags.ROLE: tags.ROLE_MONITOR, tags.MODEL_NAME: name, tags.MODEL_VERSION: version}
        ),
        order_by=["attributes.start_time ASC"],
    )
    if not series:
        return empty
    monitor_run = series[0]
    empty.update(experiment_id=experiment.experiment_id, monitor_run_id=monitor_run.info.run_id)
    windows = client.search_runs(
        [experiment.experiment_id],
        tag_filter(
            **{
                tags.PARENT_RUN_ID: monitor_run.info.run_id,
                tags.ROLE: tags.ROLE_WINDOW,
                tags.WINDOW_COMPLETE: "true",
            }
        ),
        order_by=[f"tags.`{tags.MONITOR_WINDOW_START}` DESC"],
        max_results=1,
    )
    if not windows:
        return empty
    last = windows[0]
    metrics = last.data.metrics
    end = as_utc(last.data.tags[tags.MONITOR_WINDOW_END])
    origin = as_utc(monitor_run.data.tags[tags.MONITOR_ORIGIN])
    width = parse_duration(monitor_run.data.tags[tags.MONITOR_WIDTH])
    day_start = end - pd.Timedelta(days=1)
    traffic = {
        m.step: m.value for m in client.get_metric_history(monitor_run.info.run_id, TRAFFIC_ROWS)
    }
    rows_last_day = sum(v for step, v in traffic.items() if origin + step * width >= day_start)
    headline = next(
        (
            f"degradation/{prefix}{metric}"
            for metric in HEADLINES
            for prefix in ("", "estimated_")
            if f"degradation/{prefix}{metric}" in metrics
        ),
        None,
    )
    return {
        "experiment_id": experiment.experiment_id,
        "monitor_run_id": monitor_run.info.run_id,
        "window_run_id": last.info.run_id,
        "last_window": end,
        "rows_last_day": float(rows_last_day) if traffic else None,
        "drift_share": metrics.get("drift/share_drifted_columns"),
        "headline": headline,
        "headline_value": metrics.get(headline) if headline else None,
        "headline_delta": metrics.get(f"{headline}_delta") if headline else None,
        "level": last.data.tags.get(tags.ALERT_LEVEL),
    }
