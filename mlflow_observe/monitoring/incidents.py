"""Incidents: one page when a rule starts firing, one resolve when it clears, kept in MLflow.

An incident is one alert rule firing on consecutive windows of one monitor
run (one model version). Its life, window by window (docs/monitoring.md draws
it)::

    (none) --fires--> open --clears--> cleared --resolve delivered--> (none)
                       ^                  |
                       +----fires again---+   (before its resolve was delivered)

- A window on which the rule fires opens an incident (a ``trigger`` is due) or
  continues the open one (nothing is sent: one page per incident).
- A window on which the rule was evaluated and did not fire clears it (a
  ``resolve`` is due).
- A window that starts before the end of the last window on which the rule was
  decided (a window with too few rows, looked at again by the next call)
  changes nothing for that rule.
- A window on which the rule could not be evaluated (the metric is missing, a
  ``for`` rule whose earlier windows are unknown, a skipped window for a
  non-traffic rule) changes nothing.

Deliveries that are due are made in order (a trigger before its resolve); one
that fails stays due, and is tried again at the start of the next monitor
call (and says it is a retry). Within one call, after a failed delivery the
receiver is not tried again: the call's webhook time stays one deadline, not
one per window. An incident leaves the state only once its resolve (and so its
trigger) was delivered, so an incident that opened and cleared while the
receiver was down is still announced, trigger then resolve.

The state is JSON in the monitor run's tag ``observe.incidents`` (in an
artifact, ``incidents.json``, when it outgrows a tag), written after every
window's deliveries, so that scheduled monitor calls share it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.parse
from dataclasses import asdict, dataclass, field

import pandas as pd

from mlflow_observe.monitoring.payloads import (
    RESOLVE,
    TRIGGER,
    Notice,
    build_payload,
)
from mlflow_observe.monitoring.webhook import post_json

_logger = logging.getLogger(__name__)

INCIDENTS_TAG = "observe.incidents"
INCIDENTS_ARTIFACT = "incidents.json"
STATE_VERSION = 1
# MLflow 3 keeps tag values of up to 8,000 characters, older stores 5,000: stay under both.
TAG_LIMIT = 5000
_ALERT_FIELDS = ("rule", "metric", "op", "threshold", "level", "value", "fired", "note")
_ALERT_FIELDS += ("evaluated_metric", "source")


@dataclass
class Incident:
    """One rule firing on one monitor run, and what was delivered about it."""

    rule: str
    level: str
    dedup_key: str
    opened: dict  # the window it opened on: start, end, run_id, n_rows, alert
    cleared: dict | None = None  # the window it cleared on, once it did
    sent: list = field(default_factory=list)  # the events delivered: trigger, resolve
    failures: int = 0  # failed deliveries so far
    last_error: str = ""

    @property
    def due(self) -> list:
        """The events still to deliver, in order."""
        wanted = [TRIGGER] + ([RESOLVE] if self.cleared is not None else [])
        return [event for event in wanted if event not in self.sent]

    @property
    def closed(self) -> bool:
        return self.cleared is not None and not self.due


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to deliver an incident's event."""

    event: str
    rule: str
    dedup_key: str
    window_start: str
    delivered: bool
    detail: str
    retried: bool  # an event that was due before this monitor call

    def __str__(self) -> str:
        late = " (retried from an earlier run)" if self.retried else ""
        return f"{self.event} {self.rule}: {self.detail}{late}"


def dedup_key(series_id: str, rule: str, opened: str) -> str:
    """The incident's key: the monitor run, the rule and the window it opened on (<= 255 chars).

    >>> dedup_key("0f3a9c", "drift/share_drifted_columns>=0.3:critical", "2026-11-26T03:00:00+00:00")
    'mlflow-observe/0f3a9c/drift/share_drifted_columns>=0.3:critical/2026-11-26T03:00:00+00:00'
    """
    key = f"mlflow-observe/{series_id}/{rule}/{opened}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(f"{rule}".encode()).hexdigest()[:16]
    return f"mlflow-observe/{series_id}/{digest}/{opened}"[:255]


def decided(outcome) -> bool:
    """Whether the rule's outcome says fired or not (False: not known on this window).

    >>> from mlflow_observe.monitoring.rules import AlertRule
    >>> rule = AlertRule.parse("traffic/rows==0 for 2h")
    >>> decided(rule.check({"traffic/rows": 0.0}, previous=[None]))
    False
    >>> decided(rule.check({"traffic/rows": 10.0}, previous=[None]))
    True
    """
    if outcome.fired:
        return True
    return outcome.value is not None and "not known" not in outcome.note


def _alert_record(outcome) -> dict:
    record = asdict(outcome)
    return {key: record.get(key) for key in _ALERT_FIELDS}


class IncidentBook:
    """The open incidents of one monitor run, their deliveries, and their state in MLflow.

    Parameters
    ----------
    client : MlflowClient
    series : mlflow.entities.Run
        The monitor run (its tags hold the state at the start of the call).
    model : ModelVersionRef
    experiment_id, tracking_uri : str
    webhook : str or None
        Where events go; without one, no incident is kept.
    webhook_format : {'generic', 'slack', 'pagerduty'}
    routing_key : str or None
        PagerDuty's routing key (never stored, never printed).
    timeout : float
        The total deadline of one delivery.
    """

    def __init__(
        self,
        client,
        series,
        model,
        experiment_id,
        tracking_uri,
        *,
        webhook,
        webhook_format,
        routing_key=None,
        timeout=10.0,
    ):
        self.client, self.series_id = client, series.info.run_id
        self.model, self.experiment_id, self.tracking_uri = model, experiment_id, tracking_uri
        self.webhook, self.webhook_format = webhook, webhook_format
        self.routing_key, self.timeout = routing_key, timeout
        self.incidents, self.last_decided = _load(client, series)
        self.deliveries: list = []
        self._carried = {(i.dedup_key, e) for i in self.incidents.values() for e in i.due}
        self._receiver_failed = False
        self._stored = self._dump()

    # -- the state machine ---------------------------------------------------------

    def observe(self, outcome) -> str | None:
        """Update the incidents with one window's rule outcomes, deliver what is due, save.

        ``outcome`` is the monitor's ``WindowOutcome`` (window, run_id, n_rows,
        alerts). Returns a line for the window run's ``observe.alert.webhook``
        tag, or None when nothing concerned this window.
        """
        if not self.webhook:
            return None
        facts = {
            "start": outcome.window.start.isoformat(),
            "end": outcome.window.end.isoformat(),
            "run_id": outcome.run_id,
            "n_rows": outcome.n_rows,
        }
        ongoing = []
        for alert in outcome.alerts:
            if not decided(alert):
                continue
            last = self.last_decided.get(alert.rule)
            if last is not None and outcome.window.start < pd.Timestamp(last):
                # Decided on a later window already (a window too small to evaluate is
                # looked at again by the next call): counting it would reorder the incident.
                continue
            self.last_decided[alert.rule] = facts["end"]
            incident = self.incidents.get(alert.rule)
            if alert.fired:
                if incident is None:
                    self.incidents[alert.rule] = Incident(
                        alert.rule,
                        alert.level,
                        dedup_key(self.series_id, alert.rule, facts["start"]),
                        {**facts, "alert": _alert_record(alert)},
                    )
                else:
                    incident.cleared = None  # fired again before its resolve went out
                    if TRIGGER in incident.sent:
                        ongoing.append(incident)
            elif incident is not None and incident.cleared is None:
                incident.cleared = {**facts, "alert": _alert_record(alert)}
        records = self.deliver()
        tried = {r.dedup_key for r in records}
        lines = [str(r) for r in records]
        lines += [
            f"{i.rule}: incident ongoing since {i.opened['start']}, already paged"
            for i in ongoing
            if i.dedup_key not in tried
        ]
        lines += [
            f"{i.rule}: the {i.due[0]} is due (the receiver failed earlier in this run; the next "
            "run retries it)"
            for i in self.incidents.values()
            if i.due and i.dedup_key not in tried and self._receiver_failed
        ]
        return "; ".join(lines) or None

    def deliver(self) -> list:
        """Deliver every event due, oldest incident first; save the state. Returns the records."""
        records = []
        for incident in sorted(self.incidents.values(), key=lambda i: i.opened["start"]):
            for event in incident.due:
                if self._receiver_failed:
                    break
                record = self._send(incident, event)
                records.append(record)
                if not record.delivered:
                    self._receiver_failed = True
                    break
        for key in [k for k, i in self.incidents.items() if i.closed]:
            del self.incidents[key]
        self.deliveries += records
        self.save()
        return records

    @property
    def pending(self) -> list:
        """``(rule, event)`` of the events still due after this call."""
        return [(i.rule, e) for i in self.incidents.values() for e in i.due]

    def open_incidents(self) -> list:
        """The incidents kept after this call, as plain records."""
        return [
            {
                "rule": i.rule,
                "level": i.level,
                "dedup_key": i.dedup_key,
                "since": i.opened["start"],
                "cleared": i.cleared["start"] if i.cleared else None,
                "due": i.due,
                "failures": i.failures,
                "last_error": i.last_error,
            }
            for i in self.incidents.values()
        ]

    # -- delivery and storage ------------------------------------------------------------

    def _send(self, incident: Incident, event: str) -> DeliveryRecord:
        window = incident.opened if event == TRIGGER else incident.cleared
        assert window is not None
        retried = (incident.dedup_key, event) in self._carried
        notice = Notice(
            action=event,
            dedup_key=incident.dedup_key,
            rule=incident.rule,
            level=incident.level,
            model_name=self.model.name,
            model_version=str(self.model.version),
            window=window,
            incident_start=incident.opened["start"],
            experiment_id=self.experiment_id,
            monitor_run_id=self.series_id,
            tracking_uri=self.tracking_uri,
            retried=retried,
        )
        payload = build_payload(notice, self.webhook_format, routing_key=self.routing_key)
        delivery = post_json(self.webhook, payload, timeout=self.timeout)
        if delivery.delivered:
            incident.sent.append(event)
        else:
            incident.failures += 1
            incident.last_error = str(delivery)[:500]
            _logger.warning(
                "Alert webhook %s: the %s of %r %s; it stays due and is retried by the next "
                "monitor run.",
                _where(self.webhook),
                event,
                incident.rule,
                delivery,
            )
        return DeliveryRecord(
            event,
            incident.rule,
            incident.dedup_key,
            window["start"],
            delivery.delivered,
            str(delivery),
            retried,
        )

    def save(self) -> None:
        """Write the state to the monitor run (only when it changed)."""
        text = self._dump()
        if text == self._stored:
            return
        if len(text) > TAG_LIMIT:
            self.client.log_dict(self.series_id, json.loads(text), INCIDENTS_ARTIFACT)
            text = json.dumps({"version": STATE_VERSION, "artifact": INCIDENTS_ARTIFACT})
        self.client.set_tag(self.series_id, INCIDENTS_TAG, text)
        self._stored = self._dump()

    def _dump(self) -> str:
        state = {
            "version": STATE_VERSION,
            "last_decided": self.last_decided,
            "incidents": [asdict(i) for i in self.incidents.values()],
        }
        return json.dumps(state, separators=(",", ":"), default=str)


def _where(url: str) -> str:
    """The receiver's scheme and host only: a Slack webhook's path is its secret.

    >>> _where("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/...'
    """
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


def _load(client, series) -> tuple:
    """The incidents recorded on the monitor run, and each rule's last window decided (its end)."""
    text = series.data.tags.get(INCIDENTS_TAG)
    if not text:
        return {}, {}
    try:
        state = json.loads(text)
        if "artifact" in state:
            import mlflow

            state = mlflow.artifacts.load_dict(f"{series.info.artifact_uri}/{state['artifact']}")
        if not isinstance(state.get("incidents"), list):
            raise ValueError("no list of incidents")
    except (ValueError, TypeError, AttributeError) as exc:
        # A damaged state must not stop the monitoring: start again, and say what is lost.
        _logger.warning(
            "The incidents recorded on the monitor run %s cannot be read (%r); starting with "
            "none: an incident still firing is paged again.",
            series.info.run_id,
            exc,
        )
        return {}, {}
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"The monitor run {series.info.run_id} records its incidents in version "
            f"{state.get('version')!r} of the format; this version of mlflow-observe reads "
            f"version {STATE_VERSION}. Upgrade mlflow-observe."
        )
    incidents = {record["rule"]: Incident(**record) for record in state["incidents"]}
    return incidents, dict(state.get("last_decided", {}))
