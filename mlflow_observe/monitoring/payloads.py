"""What an alert looks like on the wire: generic JSON, Slack incoming webhooks, PagerDuty Events v2.

One :class:`Notice` (an incident opening or clearing) is turned into the body
the receiver expects:

- ``generic``: a flat JSON object (the fields are listed in docs/monitoring.md);
- ``slack``: an incoming-webhook message, ``text`` (the notification's fallback)
  and Block Kit ``blocks`` (a header, the model, version, window and level as
  fields, the rule with its value, and a link to the window run in the MLflow
  UI when the tracking URI is http(s)), kept within Slack's documented limits
  (a header's text 150 characters, a section's text 3,000, a field's 2,000, 10
  fields a section, 50 blocks a message);
- ``pagerduty``: an Events API v2 event (``routing_key``, ``event_action``
  ``trigger`` or ``resolve``, ``dedup_key`` of at most 255 characters and, on a
  trigger, ``payload.summary`` of at most 1,024 characters, ``source``,
  ``severity``, ``timestamp``, ``custom_details``); a resolve carries the same
  ``dedup_key`` as its trigger.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from mlflow_observe._version import __version__

GENERIC, SLACK, PAGERDUTY = "generic", "slack", "pagerduty"
FORMATS = (GENERIC, SLACK, PAGERDUTY)
TRIGGER, RESOLVE = "trigger", "resolve"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_ROUTING_KEY_ENV = "MLFLOW_OBSERVE_PAGERDUTY_ROUTING_KEY"
# Our levels in PagerDuty's severities (critical, error, warning, info).
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning"}
SLACK_HEADER_MAX, SLACK_SECTION_MAX, SLACK_FIELD_MAX = 150, 3000, 2000
PAGERDUTY_SUMMARY_MAX, PAGERDUTY_DEDUP_MAX = 1024, 255


class WebhookFormatError(ValueError):
    """A webhook format that does not exist, or a PagerDuty format without its routing key."""


@dataclass(frozen=True)
class Notice:
    """An incident opening (``trigger``) or clearing (``resolve``), with the window it happened on.

    ``window`` holds ``start``, ``end``, ``run_id``, ``n_rows`` and ``alert``
    (the rule's outcome on that window: ``rule``, ``metric``, ``value``,
    ``evaluated_metric``, ``source``...).
    """

    action: str
    dedup_key: str
    rule: str
    level: str
    model_name: str
    model_version: str
    window: dict
    incident_start: str
    experiment_id: str
    monitor_run_id: str
    tracking_uri: str
    retried: bool = False

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.model_version}"

    @property
    def run_url(self) -> str | None:
        """The window run in the MLflow UI (the monitor run for a window too small to have
        one), when the tracking server is reached over http(s)."""
        run_id = self.window.get("run_id") or self.monitor_run_id
        return run_url(self.tracking_uri, self.experiment_id, run_id)

    def describe(self) -> str:
        """One line: what fired (or cleared), on which value, on which window."""
        alert = self.window.get("alert") or {}
        value = alert.get("value")
        shown = "not computed" if value is None else f"{value:.4g}"
        source = f", {alert['source']}" if alert.get("source") else ""
        key = alert.get("evaluated_metric") or alert.get("metric") or ""
        verb = "fired" if self.action == TRIGGER else "cleared"
        return (
            f"{self.label}: {self.rule} {verb} ({key}={shown}{source}) on the window "
            f"{self.window['start']} to {self.window['end']}"
        )


def check_webhook_format(webhook_format: str, routing_key: str | None = None) -> str | None:
    """Check the format, and return the PagerDuty routing key it needs (None for the others).

    The key comes from ``routing_key``, else from the environment variable
    ``MLFLOW_OBSERVE_PAGERDUTY_ROUTING_KEY``.

    >>> check_webhook_format("slack") is None
    True
    >>> check_webhook_format("teams")
    Traceback (most recent call last):
    ...
    mlflow_observe.monitoring.payloads.WebhookFormatError: The 'webhook_format' parameter of monitor must be one of ('generic', 'slack', 'pagerduty'). Got 'teams' instead.
    """  # noqa: E501
    if webhook_format not in FORMATS:
        raise WebhookFormatError(
            f"The 'webhook_format' parameter of monitor must be one of {FORMATS}. "
            f"Got {webhook_format!r} instead."
        )
    if webhook_format != PAGERDUTY:
        return None
    key = routing_key if routing_key is not None else os.environ.get(PAGERDUTY_ROUTING_KEY_ENV)
    key = (key or "").strip()
    if not key:
        raise WebhookFormatError(
            "The PagerDuty format needs the routing key of an Events API v2 integration: "
            f"pass --pagerduty-routing-key or set {PAGERDUTY_ROUTING_KEY_ENV}."
        )
    return key


def webhook_target(webhook: str | None, webhook_format: str) -> str | None:
    """Where the events go: ``webhook``, PagerDuty's endpoint for its format, else an error.

    >>> webhook_target(None, "pagerduty")
    'https://events.pagerduty.com/v2/enqueue'
    >>> webhook_target(None, "generic") is None
    True
    >>> webhook_target(None, "slack")
    Traceback (most recent call last):
    ...
    mlflow_observe.monitoring.payloads.WebhookFormatError: The Slack format needs the incoming webhook's URL: pass it with --webhook (webhook= in Python).
    """  # noqa: E501
    if webhook is not None:
        return webhook
    if webhook_format == PAGERDUTY:
        return PAGERDUTY_URL
    if webhook_format == SLACK:
        raise WebhookFormatError(
            "The Slack format needs the incoming webhook's URL: pass it with --webhook "
            "(webhook= in Python)."
        )
    return None


def run_url(tracking_uri: str, experiment_id: str, run_id: str | None) -> str | None:
    """The run's page in the MLflow UI, or None when the tracking URI is not http(s).

    >>> run_url("http://127.0.0.1:5000/", "3", "abc")
    'http://127.0.0.1:5000/#/experiments/3/runs/abc'
    >>> run_url("sqlite:///mlflow.db", "3", "abc") is None
    True
    """
    scheme = urllib.parse.urlsplit(str(tracking_uri)).scheme.lower()
    if scheme not in ("http", "https") or not run_id:
        return None
    return f"{str(tracking_uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def build_payload(notice: Notice, webhook_format: str, *, routing_key: str | None = None) -> dict:
    """The body to POST for ``notice`` in ``webhook_format`` (see the module docstring)."""
    if webhook_format == SLACK:
        return slack_payload(notice)
    if webhook_format == PAGERDUTY:
        return pagerduty_payload(notice, routing_key or "")
    return generic_payload(notice)


def generic_payload(notice: Notice) -> dict:
    """A flat JSON object: the incident, the model, the window and the rule's outcome."""
    window = notice.window
    return {
        "source": "mlflow-observe",
        "version": __version__,
        "event": notice.action,
        "status": "firing" if notice.action == TRIGGER else "resolved",
        "dedup_key": notice.dedup_key,
        "rule": notice.rule,
        "level": notice.level,
        "summary": notice.describe(),
        "model": notice.model_uri,
        "model_name": notice.model_name,
        "model_version": notice.model_version,
        "window_start": window["start"],
        "window_end": window["end"],
        "incident_start": notice.incident_start,
        "n_rows": window.get("n_rows"),
        "experiment_id": notice.experiment_id,
        "run_id": window.get("run_id"),
        "monitor_run_id": notice.monitor_run_id,
        "tracking_uri": notice.tracking_uri,
        "run_url": notice.run_url,
        "retried": notice.retried,
        "alerts": [window["alert"]] if window.get("alert") else [],
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text) -> str:
    """Text escaped for Slack's mrkdwn: ``&``, ``<`` and ``>`` are its control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: Notice) -> dict:
    """A Slack incoming-webhook message: ``text`` and Block Kit ``blocks``."""
    window = notice.window
    alert = window.get("alert") or {}
    resolved = notice.action == RESOLVE
    title = (
        f"Resolved: {notice.label}, {notice.rule}"
        if resolved
        else f"{notice.level.capitalize()} alert: {notice.label}, {notice.rule}"
    )
    value = alert.get("value")
    shown = "not computed" if value is None else f"{value:.4g}"
    detail = f"`{_mrkdwn(notice.rule)}`: {_mrkdwn(alert.get('evaluated_metric') or notice.rule)}"
    detail += f" = {shown}"
    if alert.get("source"):
        detail += f" ({_mrkdwn(alert['source'])})"
    heading = "*Rule that cleared*" if resolved else "*Rule that fired*"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, SLACK_HEADER_MAX)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _clip(f"*{name}*\n{_mrkdwn(text)}", SLACK_FIELD_MAX)}
                for name, text in (
                    ("Model", notice.model_name),
                    ("Version", notice.model_version),
                    ("Window (UTC)", f"{window['start']} to {window['end']}"),
                    ("Level", "resolved" if resolved else notice.level),
                )
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"{heading}\n{detail}", SLACK_SECTION_MAX)},
        },
    ]
    url = notice.run_url
    if url:
        link = f"<{url}|Open the window run in MLflow>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    context = f"mlflow-observe {__version__} · incident since {notice.incident_start}"
    if notice.retried:
        context += " · delivered late (an earlier attempt failed)"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
    return {"text": _clip(notice.describe(), SLACK_SECTION_MAX), "blocks": blocks}


def pagerduty_payload(notice: Notice, routing_key: str) -> dict:
    """A PagerDuty Events API v2 event; a resolve needs only its trigger's ``dedup_key``."""
    event = {
        "routing_key": routing_key,
        "event_action": notice.action,
        "dedup_key": notice.dedup_key,
    }
    if notice.action == RESOLVE:
        return event
    window = notice.window
    alert = window.get("alert") or {}
    url = notice.run_url
    event["payload"] = {
        "summary": _clip(notice.describe(), PAGERDUTY_SUMMARY_MAX),
        "source": f"mlflow-observe/{notice.model_name}/v{notice.model_version}",
        "severity": PAGERDUTY_SEVERITY[notice.level],
        "timestamp": window["end"],
        "component": notice.model_name,
        "group": "mlflow-observe",
        "class": alert.get("metric") or notice.rule,
        "custom_details": {
            key: value
            for key, value in generic_payload(notice).items()
            if key not in ("summary", "source", "alerts")
        }
        | {"alert": alert},
    }
    event["client"] = "mlflow-observe"
    if url:
        event["client_url"] = url
        event["links"] = [{"href": url, "text": "The window run in MLflow"}]
    return event
