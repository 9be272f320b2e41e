"""A monitored metric over time, without the UI: one row per window of the version's monitor run."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from mlflow_observe.monitoring.catalogue import check_metrics, metric_catalogue
from mlflow_observe.monitoring.rules import estimated_twin
from mlflow_observe.monitoring.runs import (
    default_experiment_name,
    model_version_runs,
    search_runs,
    tag_filter,
)
from mlflow_observe.monitoring.windows import as_utc, parse_duration
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.baselines import load_baseline
from mlflow_observe.tracking.registry import resolve_model_version

COLUMNS = ["window_start", "value", "level", "metric"]


class TrendError(LookupError):
    """The version has no monitor run to read a trend from."""


def trend(model_uri: str, metric: str, *, experiment_name: str | None = None) -> pd.DataFrame:
    """One monitored metric of a model version, window by window.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
    metric : str
        A key a window can have, e.g. ``drift/share_drifted_columns`` or
        ``traffic/rows``. A realised performance key (``degradation/accuracy``)
        reads the estimate on the windows without labels; the ``metric`` column
        says which key each value came from.
    experiment_name : str, optional
        The monitoring experiment; default ``'<model name> monitoring'``.

    Returns
    -------
    pandas.DataFrame
        Columns ``window_start`` (UTC), ``value``, ``level`` (the window's alert
        level: ``critical``, ``warning`` or None) and ``metric``, one row per
        window that has the metric, in time order.

    Examples
    --------
    With a tracking server that holds monitored windows (the tests run this)::

        mo.trend("models:/churn@champion", "drift/share_drifted_columns")
        #                window_start  value     level                        metric
        # 0 2026-11-26 00:00:00+00:00   0.00      None  drift/share_drifted_columns
    """
    client = MlflowClient()
    model = resolve_model_version(model_uri, client)
    try:
        catalogue, any_column = metric_catalogue(load_baseline(model.uri)), False
    except Exception:  # no baseline: any column's key may have been recorded
        catalogue, any_column = metric_catalogue(), True
    check_metrics([metric], catalogue, what="trend", any_column=any_column)
    name = experiment_name or default_experiment_name(model.name)
    experiment = client.get_experiment_by_name(name)
    found = (
        model_version_runs(
            client, model.name, model.version, tags.ROLE_MONITOR, [experiment.experiment_id]
        )
        if experiment is not None
        else []
    )
    if not found:
        raise TrendError(
            f"{model.label} has no monitor run in the experiment {name!r}: monitor it first "
            "(mlflow-observe monitor), or give --experiment-name."
        )
    series = found[0]
    origin = as_utc(series.data.tags[tags.MONITOR_ORIGIN])
    width = parse_duration(series.data.tags[tags.MONITOR_WIDTH])
    values: dict[int, tuple] = {}
    for key in [k for k in (estimated_twin(metric), metric) if k]:  # realised wins
        for point in sorted(
            client.get_metric_history(series.info.run_id, key), key=lambda m: m.timestamp
        ):
            values[point.step] = (point.value, key)
    levels = _levels(client, series)
    rows = []
    for step in sorted(values):
        start = origin + step * width
        value, key = values[step]
        rows.append([start, value, levels.get(start), key])
    frame = pd.DataFrame(
        {
            "window_start": pd.to_datetime([r[0] for r in rows], utc=True),
            "value": pd.Series([r[1] for r in rows], dtype="float64"),
            # object, so that a window without an alert reads None (not NaN)
            "level": pd.Series([r[2] for r in rows], dtype=object),
            "metric": pd.Series([r[3] for r in rows], dtype=object),
        },
        columns=COLUMNS,
    )
    return frame


def _levels(client, series) -> dict:
    """``{window start: alert level}`` from the monitor run's complete window runs."""
    runs = search_runs(
        client,
        [series.info.experiment_id],
        tag_filter(
            **{
                tags.PARENT_RUN_ID: series.info.run_id,
                tags.ROLE: tags.ROLE_WINDOW,
                tags.WINDOW_COMPLETE: "true",
            }
        ),
    )
    return {
        as_utc(r.data.tags[tags.MONITOR_WINDOW_START]): r.data.tags.get(tags.ALERT_LEVEL)
        for r in runs
    }


def plot_trend(frame: pd.DataFrame, metric: str):
    """A matplotlib figure of :func:`trend`'s frame: the line over windows, alerts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.5))
    axes.plot(frame["window_start"], frame["value"], marker="o", color="#4477aa", lw=1.5)
    colours = {"critical": "#cc3311", "warning": "#ee7733"}
    for level, colour in colours.items():
        part = frame[frame["level"] == level]
        if len(part):
            axes.scatter(part["window_start"], part["value"], color=colour, zorder=3, label=level)
    estimated = frame[frame["metric"] != metric]
    if len(estimated):
        axes.scatter(
            estimated["window_start"],
            estimated["value"],
            facecolors="none",
            edgecolors="#555555",
            zorder=4,
            label="estimated",
        )
    axes.set_title(metric)
    axes.set_xlabel("window start (UTC)")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
