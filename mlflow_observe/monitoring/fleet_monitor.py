"""Monitor the whole fleet: every registered model version with a baseline and a log location.

Each version is monitored as :func:`~mlflow_observe.monitoring.monitor.monitor`
does it, one after the other; a version that fails (a log location that does not
exist, a tracking error) is reported and the others go on. Then the registry tags
and the ``observe fleet`` run are refreshed once for the whole fleet.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlflow_observe.logs.reader import LogWindowError
from mlflow_observe.monitoring import fleet
from mlflow_observe.monitoring.monitor import MonitorResult, monitor
from mlflow_observe.monitoring.payloads import GENERIC, check_webhook_format, webhook_target
from mlflow_observe.monitoring.rules import CRITICAL, WARNING, AlertRule
from mlflow_observe.monitoring.runs import default_experiment_name, search_runs, tag_filter
from mlflow_observe.monitoring.status import versions_with_baseline
from mlflow_observe.monitoring.traffic import DEFAULT_REFERENCE
from mlflow_observe.monitoring.webhook import check_webhook_timeout, check_webhook_url
from mlflow_observe.monitoring.windows import parse_duration
from mlflow_observe.tracking import tags

_logger = logging.getLogger(__name__)

# What became of one version in a fleet run.
MONITORED, NO_LOCATION, ERROR = "monitored", "no log location", "error"
_LEVELS = {CRITICAL: 0, WARNING: 1}


@dataclass
class FleetEntry:
    """One version of the fleet: where its log is, and what monitoring it gave."""

    model: str
    version: str
    logs: str | None
    status: str  # monitored, no log location or error
    result: MonitorResult | None = None
    error: str | None = None
    seconds: float = 0.0  # wall time of this version's monitoring

    @property
    def level(self) -> str | None:
        return self.result.level if self.result is not None else None

    @property
    def windows_evaluated(self) -> int:
        return len(self.result.evaluated) if self.result is not None else 0

    @property
    def windows_failed(self) -> int:
        return len(self.result.failed) if self.result is not None else 0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "logs": self.logs,
            "status": self.status,
            "windows_evaluated": self.windows_evaluated,
            "windows_skipped": len(self.result.skipped) if self.result is not None else 0,
            "windows_failed": self.windows_failed,
            "level": self.level,
            "monitor_run_id": self.result.monitor_run_id if self.result is not None else None,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class FleetMonitorResult:
    """Every version :func:`monitor_all` looked at, and the fleet run it refreshed."""

    entries: list = field(default_factory=list)
    fleet_run_id: str | None = None
    refresh_error: str | None = None
    refresh_seconds: float = 0.0  # wall time of the tags and the fleet run

    @property
    def level(self) -> str | None:
        """The worst alert level any version raised in this call."""
        levels = [e.level for e in self.entries if e.level]
        return min(levels, key=_LEVELS.__getitem__) if levels else None

    @property
    def undecided(self) -> list:
        """Versions that could not be monitored, or had a window that could not be evaluated."""
        return [e for e in self.entries if e.status == ERROR or e.windows_failed]

    def to_records(self) -> list[dict]:
        return [e.to_dict() for e in self.entries]

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "fleet_run_id": self.fleet_run_id,
            "refresh_error": self.refresh_error,
            "refresh_seconds": round(self.refresh_seconds, 3),
            "versions": self.to_records(),
        }


def log_location(client: MlflowClient, version) -> str | None:
    """Where a version's prediction log is: its ``observe.monitor.logs`` tag, else the
    location its last monitor run read, else the tag on the run that logged it."""
    found = (version.tags or {}).get(tags.MONITOR_LOGS)
    if found:
        return found
    experiment = client.get_experiment_by_name(default_experiment_name(version.name))
    if experiment is not None:
        runs = search_runs(
            client,
            [experiment.experiment_id],
            tag_filter(
                **{
                    tags.ROLE: tags.ROLE_MONITOR,
                    tags.MODEL_NAME: version.name,
                    tags.MODEL_VERSION: str(version.version),
                }
            ),
            order_by=["attributes.start_time DESC"],
        )
        for run in runs:
            if run.data.tags.get(tags.MONITOR_LOGS):
                return run.data.tags[tags.MONITOR_LOGS]
    if version.run_id:
        try:
            return client.get_run(version.run_id).data.tags.get(tags.MONITOR_LOGS) or None
        except MlflowException:
            return None
    return None


def set_log_location(model_uri: str, logs: str, client: MlflowClient | None = None) -> str:
    """Record where a version's prediction log is (its ``observe.monitor.logs`` tag).

    ``mlflow-observe monitor --all`` monitors the version from there. Returns the
    ``models:/<name>/<version>`` URI of the version tagged.
    """
    from mlflow_observe.tracking.registry import resolve_model_version

    client = client or MlflowClient()
    model = resolve_model_version(model_uri, client)
    client.set_model_version_tag(model.name, model.version, tags.MONITOR_LOGS, str(logs))
    return model.uri


def monitor_all(
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
    min_rows: int = 100,
    drift_options: dict | None = None,
    engine: str = "pandas",
    progress: bool | None = None,
) -> FleetMonitorResult:
    """Monitor every registered model version that has a baseline and a log location.

    The log location of a version is its ``observe.monitor.logs`` tag (set by
    ``mo.log_model(..., log_location=...)`` or ``mlflow-observe logs
    set-location``), else the location its monitor run last read. Versions
    without one are listed (status ``no log location``) and left alone.

    Parameters
    ----------
    window, since, until, alerts, webhook, webhook_timeout, webhook_format,
    pagerduty_routing_key, traffic_reference, min_rows, drift_options, engine, progress :
        As for :func:`~mlflow_observe.monitoring.monitor.monitor`, for every version.
        A rule on a metric a version's windows cannot have is that version's error.

    Returns
    -------
    FleetMonitorResult
        One entry per version, in registry order; ``level`` is the worst alert
        raised, ``undecided`` the versions that could not be (fully) monitored.

    Examples
    --------
    With a registry of monitored versions (the tests run this)::

        result = mo.monitor_all(window="1h", alerts=["drift/share_drifted_columns>=0.3"])
        [(e.model, e.version, e.status, e.level) for e in result.entries]
        # [('churn', '3', 'monitored', 'critical'), ('fraud', '1', 'error', None)]
    """
    # Usage errors stop everything, before any version is touched.
    rules = [r if isinstance(r, AlertRule) else AlertRule.parse(r) for r in alerts]
    width = parse_duration(window)
    if webhook is not None:
        check_webhook_url(webhook)
    check_webhook_timeout(webhook_timeout)
    check_webhook_format(webhook_format, pagerduty_routing_key)
    webhook_target(webhook, webhook_format)
    client = MlflowClient()
    result = FleetMonitorResult()
    for version in list(versions_with_baseline(client)):
        name, number = version.name, str(version.version)
        logs = log_location(client, version)
        if not logs:
            result.entries.append(FleetEntry(name, number, None, NO_LOCATION))
            continue
        started = time.perf_counter()
        try:
            outcome = monitor(
                f"models:/{name}/{number}",
                logs,
                window=width,
                since=since,
                until=until,
                alerts=rules,
                webhook=webhook,
                webhook_timeout=webhook_timeout,
                webhook_format=webhook_format,
                pagerduty_routing_key=pagerduty_routing_key,
                traffic_reference=traffic_reference,
                min_rows=min_rows,
                drift_options=drift_options,
                progress=progress,
                engine=engine,
                fleet=False,
            )
        except Exception as exc:  # one version never stops the others
            message = getattr(exc, "message", None) or str(exc)
            if isinstance(exc, LogWindowError) and logs in message:
                message += (
                    f" Record the version's log with 'mlflow-observe logs set-location -m "
                    f"models:/{name}/{number} --logs DIR'."
                )
            _logger.warning("models:/%s/%s could not be monitored: %s", name, number, message)
            entry = FleetEntry(name, number, logs, ERROR, error=message)
        else:
            entry = FleetEntry(name, number, logs, MONITORED, result=outcome)
        entry.seconds = time.perf_counter() - started
        _logger.info(
            "models:/%s/%s: %s, %d window(s) in %.1f s",
            name,
            number,
            entry.status,
            entry.windows_evaluated,
            entry.seconds,
        )
        result.entries.append(entry)
    errors = {(e.model, e.version): e.error for e in result.entries if e.error}
    started = time.perf_counter()
    try:
        _, result.fleet_run_id = fleet.refresh(None, client, errors=errors)
    except Exception as exc:  # the versions' results stand; say the dashboard is stale
        result.refresh_error = getattr(exc, "message", None) or str(exc)
        _logger.warning("Could not refresh the fleet view: %s", result.refresh_error)
    result.refresh_seconds = time.perf_counter() - started
    return result
