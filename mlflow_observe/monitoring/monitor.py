"""Monitor a model version over time: evaluate each new window of its prediction log.

The layout in MLflow (one experiment per registered model, ``<model> monitoring``):

- one **monitor run** per model version (``churn v7 monitoring``): every window's
  metrics are logged to it with ``step`` = window index and ``timestamp`` =
  window start, so its run page draws each metric over time, and it holds the
  charts of the whole series (:mod:`mlflow_observe.monitoring.series`);
- one **window run** per window, nested under it (``churn v7 2026-11-27 13:00``),
  holding that window's report, tables, plots and ``alerts.json``, its metrics
  at the same step and timestamp, so *Compare* draws them over windows.

A window is evaluated once: its run gets ``observe.window.complete = true``
only after everything is logged, and windows with such a run are skipped the
next time, so running the monitor twice adds nothing and a run interrupted
half-way is redone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import urllib.parse
import warnings
from dataclasses import asdict, dataclass, field

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from mlflow_observe.logs.compaction import compact_logs
from mlflow_observe.logs.frames import rows_represented
from mlflow_observe.logs.reader import LogWindowError, iter_log_batches, read_logs
from mlflow_observe.logs.schema import MODEL_VERSION, TIMESTAMP
from mlflow_observe.monitoring import series as charts
from mlflow_observe.monitoring.catalogue import (
    TRAFFIC_ROWS,
    TRAFFIC_ROWS_REPRESENTED,
    check_metrics,
    metric_catalogue,
)
from mlflow_observe.monitoring.checks import run_checks
from mlflow_observe.monitoring.fleet import refresh_quietly
from mlflow_observe.monitoring.incidents import IncidentBook
from mlflow_observe.monitoring.payloads import GENERIC, check_webhook_format, webhook_target
from mlflow_observe.monitoring.rules import AlertRule, estimated_twin, worst_level
from mlflow_observe.monitoring.runs import (
    create_run,
    default_experiment_name,
    experiment_url,
    get_or_create_experiment,
    mlflow_user,
    model_version_runs,
    resumed_run,
    search_runs,
    tag_filter,
)
from mlflow_observe.monitoring.spark_windows import read_rows_spark, window_rows
from mlflow_observe.monitoring.traffic import DEFAULT_REFERENCE, check_reference, traffic_metrics
from mlflow_observe.monitoring.webhook import check_webhook_timeout, check_webhook_url
from mlflow_observe.monitoring.windows import (
    Window,
    WindowError,
    as_utc,
    format_duration,
    parse_duration,
    split_windows,
)
from mlflow_observe.tracking import deadline, tags
from mlflow_observe.tracking.baselines import load_baseline
from mlflow_observe.tracking.predictor import attribution_model
from mlflow_observe.tracking.registry import ModelVersionRef, resolve_model_version
from mlflow_observe.tracking.results import metric_position

_logger = logging.getLogger(__name__)

EVALUATED, SKIPPED, FAILED = "evaluated", "skipped", "failed"
# Without --since, a first run starts at the first row of this last stretch of the log:
# a stray row stamped long ago never makes it walk years of empty windows.
DEFAULT_LOOKBACK = pd.Timedelta(days=7)
ENGINES = ("pandas", "spark")
ALERTS_ARTIFACT = "alerts.json"
REPORT_ARTIFACT = "drift_report.html"


@dataclass
class WindowOutcome:
    """What the monitor did with one window."""

    window: Window
    status: str  # evaluated, skipped or failed (the reason in notes)
    n_rows: int
    run_id: str | None = None
    metrics: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)
    level: str | None = None
    notes: list = field(default_factory=list)
    webhook: str | None = None
    chart_record: dict | None = None  # what the monitor run's charts keep of it

    def to_dict(self) -> dict:
        return {
            "index": self.window.index,
            "start": self.window.start.isoformat(),
            "end": self.window.end.isoformat(),
            "status": self.status,
            "n_rows": self.n_rows,
            "run_id": self.run_id,
            "level": self.level,
            "alerts": [asdict(a) for a in self.alerts if a.fired],
            "notes": self.notes,
            "webhook": self.webhook,
            "metrics": self.metrics,
        }


@dataclass
class MonitorResult:
    """The windows a monitor call looked at, and the alerts they raised."""

    model: ModelVersionRef
    experiment_id: str
    monitor_run_id: str
    windows: list
    already_evaluated: int = 0
    deliveries: list = field(default_factory=list)  # incidents.DeliveryRecord, in order
    incidents: list = field(default_factory=list)  # the incidents still open or due

    @property
    def evaluated(self) -> list:
        return [w for w in self.windows if w.status == EVALUATED]

    @property
    def skipped(self) -> list:
        return [w for w in self.windows if w.status == SKIPPED]

    @property
    def failed(self) -> list:
        """Windows that could not be evaluated (read or evaluation error); redone next time."""
        return [w for w in self.windows if w.status == FAILED]

    @property
    def level(self) -> str | None:
        """The worst alert level raised by this call (``critical``, ``warning`` or None)."""
        return worst_level([a for w in self.windows for a in w.alerts])

    @property
    def status(self) -> str:
        """``'nothing to evaluate'`` when no complete window was new, else ``'evaluated'``."""
        return "nothing to evaluate" if not self.windows else EVALUATED

    @property
    def experiment_url(self) -> str:
        """The experiment's runs table in the MLflow UI (model-training view)."""
        return experiment_url(mlflow.get_tracking_uri(), self.experiment_id)

    def to_dict(self) -> dict:
        return {
            "model": self.model.uri,
            "status": self.status,
            "experiment_id": self.experiment_id,
            "experiment_url": self.experiment_url,
            "monitor_run_id": self.monitor_run_id,
            "level": self.level,
            "already_evaluated": self.already_evaluated,
            "windows": [w.to_dict() for w in self.windows],
            "deliveries": [asdict(d) for d in self.deliveries],
            "incidents": self.incidents,
        }


def monitor(
    model_uri: str,
    logs: str,
    *,
    window="1h",
    since=None,
    until=None,
    alerts=(),
    webhook: str | None = None,
    webhook_timeout: float = 10.0,
    webhook_format: str = GENERIC,
    pagerduty_routing_key: str | None = None,
    traffic_reference: int = DEFAULT_REFERENCE,
    experiment_name: str | None = None,
    min_rows: int = 100,
    drift_options: dict | None = None,
    progress: bool | None = None,
    engine: str = "pandas",
    fleet: bool = True,
) -> MonitorResult:
    """Evaluate every complete window of the prediction log not evaluated yet.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>``; an alias is
        resolved once, at the start, to the version it names.
    logs : str
        The prediction log directory (``MLFLOW_OBSERVE_LOG_DIR`` of the server).
    window : str or pandas.Timedelta, default='1h'
        Window width: ``1h``, ``1d``, ``15m``, ``2h30m``... Windows are aligned to
        the first window the version was monitored with.
    since, until : str or datetime, optional
        The range to look at. Default: from the end of the last evaluated
        window (or, the first time, the first row logged in the last 7 days,
        so that a row stamped long ago does not start the series there) until
        now. Only windows that have ended are evaluated.
    alerts : list of str or AlertRule
        Rules such as ``"drift/share_drifted_columns>=0.3:critical"``.
    webhook : str, optional
        ``http(s)`` URL that receives a JSON POST when an incident opens (a rule
        starts firing) and when it clears: one page per incident, not per window
        (:mod:`mlflow_observe.monitoring.incidents`). Other schemes (``file:``,
        ``data:``) raise ``WebhookURLError`` (a ``ValueError``) before anything
        runs; redirects are not followed. With ``webhook_format='pagerduty'``
        it defaults to PagerDuty's Events API v2 endpoint.
    webhook_timeout : float, default=10.0
        Total seconds for one delivery, every attempt included (two attempts at
        most); a receiver that answers slower is a failed delivery, due again
        on the next call.
    webhook_format : {'generic', 'slack', 'pagerduty'}, default='generic'
        The payload: flat JSON, a Slack incoming-webhook message, or a
        PagerDuty Events API v2 event (:mod:`mlflow_observe.monitoring.payloads`).
    pagerduty_routing_key : str, optional
        The Events API v2 integration key; default: the environment variable
        ``MLFLOW_OBSERVE_PAGERDUTY_ROUTING_KEY``. Required by the PagerDuty format.
    traffic_reference : int, default=24
        ``traffic/rows_ratio`` compares a window's rows with the median of this
        many previous windows (:mod:`mlflow_observe.monitoring.traffic`).
    experiment_name : str, optional
        Default ``'<model name> monitoring'``.
    min_rows : int, default=100
        Windows with fewer rows are skipped (and reported as such).
    drift_options : dict, optional
        Drift evaluator config (``method``, ``thresholds``, ``drift_share``...).
    progress : bool, optional
        A progress bar over windows; default: when stderr is a terminal.
    engine : {'pandas', 'spark'}, default='pandas'
        Where the rows are counted: ``pandas`` reads each day of the log into
        this process; ``spark`` reads it with the active or configured Spark
        session and counts each window there
        (:mod:`mlflow_observe.monitoring.spark_windows`).
    fleet : bool, default=True
        When windows were evaluated, write the version's state as registry tags
        and refresh the ``observe fleet`` run
        (:mod:`mlflow_observe.monitoring.fleet`; a failure there is a warning).

    Returns
    -------
    MonitorResult
    """
    if engine not in ENGINES:
        raise ValueError(
            f"The 'engine' parameter of monitor must be one of {ENGINES}. Got {engine!r} instead."
        )
    rules = [r if isinstance(r, AlertRule) else AlertRule.parse(r) for r in alerts]
    width = parse_duration(window)
    for rule in rules:
        if rule.sustained is not None and rule.sustained < width:
            raise WindowError(
                f"The alert rule '{rule}' holds 'for {format_duration(rule.sustained)}', "
                f"shorter than one {format_duration(width)} window: drop 'for', or give a "
                "duration of whole windows."
            )
    routing_key = check_webhook_format(webhook_format, pagerduty_routing_key)
    webhook = webhook_target(webhook, webhook_format)
    if webhook is not None:
        check_webhook_url(webhook)
    webhook_timeout = check_webhook_timeout(webhook_timeout)
    traffic_reference = check_reference(traffic_reference)
    check_log_location(logs)
    session = None
    if engine == "spark":  # before any run is created: a missing Spark changes nothing
        from mlflow_observe.engines.spark import spark_session

        session = spark_session()
    client = MlflowClient()
    model = resolve_model_version(model_uri, client)
    baseline = load_baseline(model.uri)
    drift_options = _with_attribution_model(drift_options, baseline, model.uri)
    # A rule on a key no window has could never fire: refused before any run is created.
    check_metrics([r.metric for r in rules], metric_catalogue(baseline))
    experiment_id = get_or_create_experiment(
        client, experiment_name or default_experiment_name(model.name)
    )
    series = _find_monitor_run(client, experiment_id, model, width)
    done = _evaluated_windows(client, experiment_id, series.info.run_id) if series else {}
    end = as_utc(until) if until is not None else pd.Timestamp.now(tz="UTC")
    start = (
        as_utc(since)
        if since is not None
        else (max(done.values()) if done else _first_row_time(logs, model, end - DEFAULT_LOOKBACK))
    )
    series = series or _create_monitor_run(
        client, experiment_id, model, width, logs, origin=start.floor("D")
    )
    context = _Context(
        client,
        experiment_id,
        series,
        model,
        baseline,
        rules,
        width,
        as_utc(series.data.tags[tags.MONITOR_ORIGIN]),
        str(logs),
        webhook,
        webhook_timeout,
        drift_options,
        traffic_reference=traffic_reference,
        incidents=IncidentBook(
            client,
            series,
            model,
            experiment_id,
            mlflow.get_tracking_uri(),
            webhook=webhook,
            webhook_format=webhook_format,
            routing_key=routing_key,
            timeout=webhook_timeout,
        ),
        headline=charts.headline_metric(baseline),
    )
    if webhook and context.incidents.pending:  # due since an earlier call: retried first
        context.incidents.deliver()
    for rule in rules:  # read the series' past before this call adds to it
        if rule.sustained is not None:
            context.history(rule.metric)
            if estimated_twin(rule.metric):
                context.history(estimated_twin(rule.metric))
    candidates = split_windows(start, end, width, origin=context.origin) if start < end else []
    todo = [w for w in candidates if w.start not in done]
    outcomes = []
    with _progress_bar(total=len(todo), enabled=progress) as bar:
        compacted: dict = {}
        for group in _by_day(todo):
            compact_notes = _compact_finished_days(logs, group[0].start, group[-1].end, compacted)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    frame = (
                        _read_rows(logs, model, group[0].start, group[-1].end)
                        if session is None
                        else read_rows_spark(session, logs, model, group[0].start, group[-1].end)
                    )
            except Exception as exc:  # one unreadable day never blocks the next ones
                _logger.warning("Could not read the log for %s: %r", group[0], exc)
                outcomes += [
                    WindowOutcome(w, FAILED, 0, notes=[f"Could not read the log: {exc!r}"])
                    for w in group
                ]
                bar.update(len(group))
                continue
            read_notes = [str(w.message) for w in caught if "prediction log file" in str(w.message)]
            read_notes = compact_notes + read_notes
            for current in group:
                bar.set_postfix_str(f"{current.start:%Y-%m-%d %H:%M}", refresh=False)
                if session is None:
                    rows = _slice(frame, current)
                    n_rows = len(rows)
                else:
                    rows = window_rows(frame, current) if frame is not None else None
                    n_rows = rows.count() if rows is not None else 0
                if n_rows < min_rows:
                    outcomes.append(_skip_window(context, current, n_rows, min_rows))
                else:
                    outcomes.append(_evaluate_window(context, current, rows, n_rows, read_notes))
                bar.update(1)
    _refresh_charts(context, outcomes)
    client.set_terminated(series.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
    if fleet and outcomes:
        refresh_quietly(model.name, client)
    return MonitorResult(
        model,
        experiment_id,
        series.info.run_id,
        outcomes,
        already_evaluated=len(candidates) - len(todo),
        deliveries=context.incidents.deliveries,
        incidents=context.incidents.open_incidents(),
    )


def _with_attribution_model(drift_options, baseline, model_uri: str):
    """The drift options with the model version loaded for attribution drift.

    Only when the baseline recorded its global importance and the options name no
    model: the model attributes the row sample of a window whose log holds no
    attributions. A model that cannot be loaded leaves attribution drift to the
    logged attributions, with a warning.
    """
    options = dict(drift_options or {})
    impact = baseline.impact
    if impact is None or not impact.attribution or options.get("attribution_model") is not None:
        return drift_options
    try:
        options["attribution_model"] = attribution_model(model_uri)
    except Exception as exc:  # the monitor goes on without computed attributions
        warnings.warn(
            f"Attribution drift reads logged attributions only: {model_uri} could not be "
            f"loaded ({exc!r}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return drift_options
    return options


@dataclass(frozen=True)
class _Context:
    """What every window of one monitor call shares."""

    client: MlflowClient
    experiment_id: str
    series: object  # the monitor run
    model: ModelVersionRef
    baseline: object
    rules: list
    width: pd.Timedelta
    origin: pd.Timestamp
    logs: str
    webhook: str | None
    webhook_timeout: float
    drift_options: dict | None
    # {metric key: {window index: value}} read from the monitor run, for 'for <duration>' rules.
    seen: dict = field(default_factory=dict)
    traffic_reference: int = DEFAULT_REFERENCE
    incidents: IncidentBook | None = None  # one page per incident, state on the monitor run
    headline: str | None = None  # the headline performance metric (charts, dashboard/)

    @property
    def series_id(self) -> str:
        return self.series.info.run_id

    def step(self, current: Window) -> int:
        return int((current.start - self.origin) // self.width)

    def history(self, key: str) -> dict:
        """``{window index: value}`` of ``key`` on the monitor run (read once per call)."""
        if key not in self.seen:
            self.seen[key] = {
                m.step: m.value for m in self.client.get_metric_history(self.series_id, key)
            }
        return self.seen[key]

    def remember(self, step: int, metrics: dict) -> None:
        for key, value in metrics.items():
            if key in self.seen:
                self.seen[key][step] = value

    def check_rules(self, current: Window, metrics: dict, rules=None) -> list:
        """Every rule on this window; a ``for <duration>`` rule also on the windows before."""
        step = self.step(current)
        outcomes = []
        for rule in self.rules if rules is None else rules:
            previous = None
            if rule.sustained is not None:
                count = math.ceil(rule.sustained / self.width)
                keys = [rule.metric] + (
                    [estimated_twin(rule.metric)] if estimated_twin(rule.metric) else []
                )
                earlier = []
                for index in range(step - count + 1, step):
                    value = next(
                        (self.history(k)[index] for k in keys if index in self.history(k)), None
                    )
                    earlier.append(value)
                previous = earlier
            outcomes.append(rule.check(metrics, previous))
        return outcomes


# -- the runs -------------------------------------------------------------------------


def _find_monitor_run(client, experiment_id, model: ModelVersionRef, width):
    """The version's monitor run, if it has one (and it uses the same window width)."""
    found = model_version_runs(
        client, model.name, model.version, tags.ROLE_MONITOR, [experiment_id]
    )
    if not found:
        return None
    run = found[0]
    recorded = parse_duration(run.data.tags[tags.MONITOR_WIDTH])
    if recorded != width:
        raise WindowError(
            f"{model.label} is monitored in {format_duration(recorded)} windows (run "
            f"{run.info.run_id}); got --window {format_duration(width)}. Keep "
            f"{format_duration(recorded)}, or give another --experiment-name for a second "
            "series."
        )
    return run


def _create_monitor_run(client, experiment_id, model: ModelVersionRef, width, logs, origin):
    """A new monitor run; window index 0 starts at ``origin``."""
    return create_run(
        client,
        experiment_id,
        f"{model.label} monitoring",
        {
            tags.ROLE: tags.ROLE_MONITOR,
            tags.MODEL_NAME: model.name,
            tags.MODEL_VERSION: model.version,
            tags.MONITOR_WIDTH: format_duration(width),
            tags.MONITOR_ORIGIN: origin.isoformat(),
            tags.MONITOR_LOGS: str(logs),
            tags.DESCRIPTION: _monitor_description(model, width, logs, None),
            **({tags.BASELINE_RUN_ID: model.run_id} if model.run_id else {}),
        },
    )


def _monitor_description(model, width, logs, latest, series_id=None) -> str:
    text = (
        f"Monitoring of {model.label} ({model.uri}) in {format_duration(width)} "
        f"windows of the prediction log `{logs}`.\n\n"
        "Each metric's chart is a time series: step = window index, time = window start; "
        "the headline metrics are first, under dashboard/. Charts of the whole series: "
        f"{charts.PERFORMANCE_CHART} (performance by window) and {charts.HEATMAP_CHART} "
        "(drift by column and window), in this run's artifacts. "
        "Each window is a child run with its `drift_report.html`, tables and `alerts.json`."
    )
    if latest is not None:
        run_id, experiment_id, current, level = latest
        text += (
            f"\n\nLatest window: {current} — alert: {level or 'none'} — "
            f"[drift report](#/experiments/{experiment_id}/runs/{run_id}/artifacts/"
            f"{REPORT_ARTIFACT}) (run `{run_id}`)"
        )
        if series_id:
            text += "\n\nCharts: " + charts.chart_links(experiment_id, series_id)
    return text


def _evaluated_windows(client, experiment_id, series_id) -> dict:
    """``{window start: window end}`` of the complete window runs under the monitor run."""
    runs = search_runs(
        client,
        [experiment_id],
        tag_filter(
            **{
                tags.PARENT_RUN_ID: series_id,
                tags.ROLE: tags.ROLE_WINDOW,
                tags.WINDOW_COMPLETE: "true",
            }
        ),
    )
    return {
        as_utc(r.data.tags[tags.MONITOR_WINDOW_START]): as_utc(r.data.tags[tags.MONITOR_WINDOW_END])
        for r in runs
    }


def _evaluate_window(
    context: _Context, current: Window, rows, n_rows: int, read_notes=()
) -> WindowOutcome:
    """Evaluate one window in its own run; a failure is recorded on the run and returned."""
    client, model = context.client, context.model
    step = context.step(current)
    run = create_run(
        client,
        context.experiment_id,
        # The time first: the runs table cuts long names, and the time tells windows apart.
        f"{current.start:%H:%M} {current.start:%Y-%m-%d} {model.label}",
        {
            tags.PARENT_RUN_ID: context.series_id,
            tags.ROLE: tags.ROLE_WINDOW,
            tags.MODEL_NAME: model.name,
            tags.MODEL_VERSION: model.version,
            tags.MONITOR_WINDOW_START: current.start.isoformat(),
            tags.MONITOR_WINDOW_END: current.end.isoformat(),
            tags.WINDOW_INDEX: str(step),
        },
    )
    run_id = run.info.run_id
    start_ms = int(current.start.timestamp() * 1000)
    try:
        client.log_batch(
            run_id,
            params=charts.window_params(
                current, index=step, n_rows=n_rows, model_version=model.version
            ),
        )
        # MLflow prints run links to stdout; keep stdout for the caller's output.
        with (
            contextlib.redirect_stdout(sys.stderr),
            resumed_run(run_id),
            metric_position(step, start_ms),
        ):
            checks = run_checks(rows, context.baseline, drift_options=context.drift_options)
        checks.metrics[TRAFFIC_ROWS] = float(n_rows)
        checks.metrics.update(_traffic(context, step, n_rows))
        checks.metrics[TRAFFIC_ROWS_REPRESENTED] = rows_represented(rows, n_rows)
        for key in (TRAFFIC_ROWS, TRAFFIC_ROWS_REPRESENTED):
            client.log_metric(
                run_id, key, float(checks.metrics[key]), timestamp=start_ms, step=step
            )
        outcomes = context.check_rules(current, checks.metrics)
        outcome = WindowOutcome(
            current,
            EVALUATED,
            n_rows,
            run_id=run_id,
            metrics=checks.metrics,
            alerts=outcomes,
            level=worst_level(outcomes),
            notes=[*read_notes, *checks.notes],
        )
        if context.rules:
            client.log_dict(run_id, _alerts_record(outcome, model), ALERTS_ARTIFACT)
        _log_series_metrics(
            client,
            context.series_id,
            {**charts.dashboard_metrics(checks.metrics, context.headline), **checks.metrics},
            step,
            start_ms,
        )
        outcome.chart_record = charts.window_record(
            current, step, checks.metrics, checks.performance, context.headline
        )
        context.remember(step, checks.metrics)
        outcome.webhook = _notify(context, outcome)
        _tag_window(context, outcome)
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        return outcome
    except Exception as exc:  # recorded, and the monitor goes on to the next window
        reason = f"Could not evaluate the window: {exc!r}"
        _logger.warning("%s %s", current, reason)
        with contextlib.suppress(Exception):  # the run stays incomplete: redone next time
            client.set_tag(run_id, tags.WINDOW_ERROR, reason[:5000])
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        return WindowOutcome(current, FAILED, n_rows, run_id=run_id, notes=[*read_notes, reason])
    except BaseException:
        # The run stays incomplete: redone next time.
        with contextlib.suppress(Exception), deadline.last_calls():
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise


def _skip_window(context: _Context, current: Window, n_rows: int, min_rows: int) -> WindowOutcome:
    """A window with too few rows: no evaluation, but its traffic is charted and checked.

    ``traffic/rows`` goes on the monitor run (once per window index), and the
    rules on ``traffic/*`` are checked, so a model that stopped receiving
    predictions raises its no-traffic alert.
    """
    step = context.step(current)
    metrics = {TRAFFIC_ROWS: float(n_rows), **_traffic(context, step, n_rows)}
    known = context.history(TRAFFIC_ROWS)
    if known.get(step) != float(n_rows):
        _log_series_metrics(
            context.client,
            context.series_id,
            metrics,
            step,
            int(current.start.timestamp() * 1000),
        )
    context.remember(step, metrics)
    rules = [r for r in context.rules if r.metric.startswith("traffic/")]
    outcomes = context.check_rules(current, metrics, rules)
    outcome = WindowOutcome(
        current,
        SKIPPED,
        n_rows,
        metrics=metrics,
        alerts=outcomes,
        level=worst_level(outcomes),
        notes=[f"{n_rows} rows, fewer than min_rows={min_rows}"],
    )
    outcome.webhook = _notify(context, outcome)
    if outcome.level:
        fired = "; ".join(a.rule for a in outcomes if a.fired)
        context.client.log_batch(
            context.series_id,
            tags=[
                RunTag(tags.ALERT_LEVEL, outcome.level),
                RunTag(tags.ALERT_RULES, fired[:5000]),
            ],
        )
    return outcome


def _log_series_metrics(client, series_id, metrics, step, timestamp_ms) -> None:
    entries = [Metric(k, float(v), timestamp_ms, step) for k, v in metrics.items()]
    for start in range(0, len(entries), 1000):  # MLflow's limit per log_batch
        client.log_batch(series_id, metrics=entries[start : start + 1000])


def _refresh_charts(context: _Context, outcomes) -> None:
    """Redraw the monitor run's charts with this call's evaluated windows (never fails)."""
    records = [o.chart_record for o in outcomes if o.chart_record]
    if not records:
        return
    try:
        charts.refresh_charts(
            context.client,
            context.series_id,
            records,
            headline=context.headline,
            rules=context.rules,
            label=context.model.label,
        )
    except Exception as exc:  # the windows are logged; a chart is not worth failing for
        _logger.warning("Could not refresh the charts of run %s: %r", context.series_id, exc)


def _alerts_record(outcome: WindowOutcome, model) -> dict:
    return {
        "model": model.uri,
        "window_start": outcome.window.start.isoformat(),
        "window_end": outcome.window.end.isoformat(),
        "level": outcome.level,
        "evaluated_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "user": mlflow_user(),
        "rules": [asdict(a) for a in outcome.alerts],
    }


def _tag_window(context: _Context, outcome: WindowOutcome) -> None:
    fired = [_fired_text(a) for a in outcome.alerts if a.fired]
    window_tags = {tags.DESCRIPTION: _window_description(outcome, context.model)}
    series_tags = {
        tags.MONITOR_LAST_WINDOW: outcome.window.end.isoformat(),
        tags.DESCRIPTION: _monitor_description(
            context.model,
            context.width,
            context.logs,
            (outcome.run_id, context.experiment_id, outcome.window, outcome.level),
            context.series_id,
        ),
    }
    if outcome.level:
        alert = {tags.ALERT_LEVEL: outcome.level, tags.ALERT_RULES: "; ".join(fired)[:5000]}
        window_tags.update(alert)
        series_tags.update(alert)
    if outcome.webhook:
        window_tags[tags.ALERT_WEBHOOK] = outcome.webhook[:5000]
    context.client.log_batch(context.series_id, tags=[RunTag(k, v) for k, v in series_tags.items()])
    # Last: the mark that every result of this window is logged.
    window_tags[tags.WINDOW_COMPLETE] = "true"
    context.client.log_batch(outcome.run_id, tags=[RunTag(k, v) for k, v in window_tags.items()])


def _fired_text(outcome) -> str:
    """The rule, and for a performance rule whether it fired on the realised value or the estimate."""
    if outcome.source:
        return f"{outcome.rule} ({outcome.source}: {outcome.evaluated_metric}={outcome.value:.4g})"
    return outcome.rule


def _window_description(outcome: WindowOutcome, model) -> str:
    metrics = outcome.metrics
    lines = [
        f"{model.label}, window {outcome.window}: {outcome.n_rows} predictions.",
        f"Drifted columns: {int(metrics.get('drift/n_drifted_columns', 0))} of "
        f"{int(metrics.get('drift/n_evaluated_columns', 0))}; "
        f"dataset drift: {'yes' if metrics.get('drift/dataset_drift') else 'no'}. "
        f"Report: `{REPORT_ARTIFACT}`.",
    ]
    if outcome.level:
        lines.append(
            f"Alert ({outcome.level}): "
            + "; ".join(_fired_text(a) for a in outcome.alerts if a.fired)
        )
    lines += outcome.notes
    return "\n\n".join(lines)


def _notify(context: _Context, outcome: WindowOutcome) -> str | None:
    """Open, continue or clear the window's incidents and deliver what is due."""
    return context.incidents.observe(outcome) if context.incidents is not None else None


def _traffic(context: _Context, step: int, n_rows: int) -> dict:
    """``traffic/rows_ratio`` against the previous windows of the series (when defined)."""
    history = context.history(TRAFFIC_ROWS)
    return traffic_metrics(history, step, n_rows, reference=context.traffic_reference)


# -- reading the log --------------------------------------------------------------------


def check_log_location(logs) -> None:
    """A local log location that does not exist raises ``LogWindowError`` naming it.

    Remote locations (``s3://``, ``gs://``...) are checked when read.
    """
    text = str(logs)
    scheme = urllib.parse.urlsplit(text).scheme
    if scheme not in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        return
    path = urllib.parse.urlsplit(text).path if scheme == "file" else text
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        raise LogWindowError(
            f"The prediction log location {text!r} {what}: give --logs the directory the "
            "model server writes to (its MLFLOW_OBSERVE_LOG_DIR)."
        )


def _first_row_time(logs: str, model: ModelVersionRef, not_before) -> pd.Timestamp:
    """The time of the model's first row logged since ``not_before`` (one day of the log read)."""
    for batch in iter_log_batches(logs, not_before, model=model.name, columns=[TIMESTAMP]):
        first = batch.column(TIMESTAMP).to_pandas()
        # Files are in day order; within the first day take the minimum over that day.
        day = max(pd.Timestamp(first.min()).floor("D"), not_before)
        frame = _read_rows(
            logs,
            model,
            day,
            pd.Timestamp(first.min()).floor("D") + pd.Timedelta(days=1),
            columns=[TIMESTAMP],
        )
        return as_utc(frame[TIMESTAMP].min()) if len(frame) else as_utc(first.min())
    raise LogWindowError(
        f"No predictions of model {model.name!r} in the log {logs!r} since {not_before} "
        f"(the last {format_duration(DEFAULT_LOOKBACK)}): pass --since to look further back."
    )


def _read_rows(logs, model: ModelVersionRef, start, end, columns=None) -> pd.DataFrame:
    """The model version's rows in ``[start, end)``, labels and served attributions joined.

    Empty when none.
    """
    whole = columns is None
    try:
        frame = read_logs(
            logs,
            start,
            end,
            model=model.name,
            columns=columns,
            with_labels=whole,
            with_attributions=whole,
        )
    except LogWindowError:
        return pd.DataFrame({TIMESTAMP: pd.Series([], dtype="datetime64[us, UTC]")})
    if MODEL_VERSION in frame.columns and frame[MODEL_VERSION].notna().any():
        # Rows from a server that knew its version: keep this version's only.
        frame = frame[frame[MODEL_VERSION].astype(str) == model.version]
    return frame


def _slice(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    stamps = frame[TIMESTAMP]
    return frame[(stamps >= window.start) & (stamps < window.end)].reset_index(drop=True)


def _compact_finished_days(logs, start, end, done: dict) -> list[str]:
    """Compact the day partitions of ``[start, end)`` that have ended (UTC) before reading them.

    The same atomic compaction as ``mlflow-observe logs compact``: readers never
    see a row twice or miss one. A location that cannot be written (read-only,
    no permission) is read as it is: the reason is returned as a note for the
    windows, never an error. ``done`` (day -> notes) keeps each day to one attempt.
    """
    today = pd.Timestamp.now(tz="UTC").floor("D")
    notes: list[str] = []
    day = start.floor("D")
    while day < end and day < today:
        key = day.date().isoformat()
        if key not in done:
            done[key] = []
            try:
                compact_logs(logs, day=key)
            except Exception as exc:  # reading goes on from the files as they are
                note = f"Could not compact the log's day {key} before reading it: {exc!r}"
                _logger.warning(note)
                done[key] = [note]
        notes += done[key]
        day += pd.Timedelta(days=1)
    return notes


def _by_day(windows):
    """Consecutive windows grouped so that the log is read once per day, not per window."""
    groups, current = [], []
    for w in windows:
        if current and (
            w.start.floor("D") != current[0].start.floor("D") or w.start != current[-1].end
        ):
            groups.append(current)
            current = []
        current.append(w)
    return groups + ([current] if current else [])


def _progress_bar(*, total, enabled):
    """A bar that advances by one window as each is done (shown when stderr is a terminal)."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(total=total, unit="window", desc="monitor", disable=disable, mininterval=0)


def to_json(result: MonitorResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)
