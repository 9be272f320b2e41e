"""Alert formats, incidents and traffic rules, against real local receivers.

Payloads are checked against what Slack (incoming webhooks, Block Kit) and
PagerDuty (Events API v2) document; incidents against a real tracking store
(SQLite, and a real `mlflow server` for the scheduled runs), with each
`mlflow-observe monitor` call a separate process, as cron runs it.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import DAY, Receiver, customers, log_version, running_mlflow_server, write_traffic
from mlflow import MlflowClient

import mlflow_observe as mo
from mlflow_observe.cli import cli as main
from mlflow_observe.core.drift.integrity import check_integrity
from mlflow_observe.core.profile.data_profile import build_profile
from mlflow_observe.monitoring.catalogue import check_metrics, metric_catalogue
from mlflow_observe.monitoring.incidents import INCIDENTS_TAG, IncidentBook, dedup_key
from mlflow_observe.monitoring.payloads import (
    PAGERDUTY_ROUTING_KEY_ENV,
    Notice,
    WebhookFormatError,
    build_payload,
    check_webhook_format,
)
from mlflow_observe.monitoring.rules import AlertRule
from mlflow_observe.monitoring.traffic import rows_ratio
from mlflow_observe.monitoring.windows import Window

ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, as PagerDuty issues them

# -- what the services document --------------------------------------------------------


def assert_slack_message(message):
    """An incoming-webhook message as Slack's Block Kit reference describes it."""
    assert isinstance(message["text"], str) and message["text"]  # the notification fallback
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        assert kind in ("header", "section", "context", "actions", "divider")
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] in ("mrkdwn", "plain_text")
                assert 1 <= len(block["text"]["text"]) <= 3000
            for item in block.get("fields", []):
                assert item["type"] in ("mrkdwn", "plain_text") and len(item["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if kind == "context":
            assert 1 <= len(block["elements"]) <= 10
        for text in _mrkdwn_texts(block):
            # '<' and '>' only as link delimiters, '&' only as an escape.
            stripped = text
            for _ in range(stripped.count("<")):
                left = stripped.find("<")
                right = stripped.find(">", left)
                assert right > left and "|" in stripped[left:right], text
                stripped = stripped[:left] + stripped[right + 1 :]
            assert ">" not in stripped
            assert all(
                stripped[i:].startswith(("&amp;", "&lt;", "&gt;"))
                for i, c in enumerate(stripped)
                if c == "&"
            )


def _mrkdwn_texts(block):
    texts = []
    if block.get("text", {}).get("type") == "mrkdwn":
        texts.append(block["text"]["text"])
    texts += [f["text"] for f in block.get("fields", []) if f["type"] == "mrkdwn"]
    texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def assert_pagerduty_event(event, action):
    """An Events API v2 alert event as PagerDuty documents it."""
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == action and action in ("trigger", "acknowledge", "resolve")
    assert isinstance(event["dedup_key"], str) and 1 <= len(event["dedup_key"]) <= 255
    if action != "trigger":
        return
    payload = event["payload"]
    assert 1 <= len(payload["summary"]) <= 1024
    assert payload["source"]
    assert payload["severity"] in ("critical", "error", "warning", "info")
    pd.Timestamp(payload["timestamp"])  # ISO 8601
    assert isinstance(payload["custom_details"], dict)
    json.dumps(event)  # plain JSON all the way down
    for link in event.get("links", []):
        assert link["href"].startswith(("http://", "https://"))


# -- payloads, without any server --------------------------------------------------------


def _notice(action="trigger", *, rule="drift/share_drifted_columns>=0.3:critical", **changes):
    alert = AlertRule.parse(rule).check({"drift/share_drifted_columns": 0.67})
    fields = {
        "action": action,
        "dedup_key": dedup_key("abc123", rule, "2026-11-26T03:00:00+00:00"),
        "rule": rule,
        "level": AlertRule.parse(rule).level,
        "model_name": "churn",
        "model_version": "7",
        "window": {
            "start": "2026-11-26T03:00:00+00:00",
            "end": "2026-11-26T04:00:00+00:00",
            "run_id": "r1",
            "n_rows": 240,
            "alert": asdict(alert),
        },
        "incident_start": "2026-11-26T03:00:00+00:00",
        "experiment_id": "5",
        "monitor_run_id": "m1",
        "tracking_uri": "http://127.0.0.1:5000",
    }
    fields.update(changes)
    return Notice(**fields)


def test_slack_message_names_the_model_window_level_rule_and_links_the_run():
    message = build_payload(_notice(), "slack")
    assert_slack_message(message)
    texts = json.dumps(message)
    assert "churn" in texts and "2026-11-26T03:00:00+00:00" in texts and "Critical" in texts
    # The rule's '>=' is escaped in mrkdwn; the value is shown.
    assert "share_drifted_columns&gt;=0.3" in texts and "0.67" in texts
    assert "<http://127.0.0.1:5000/#/experiments/5/runs/r1|" in texts
    resolved = build_payload(_notice("resolve"), "slack")
    assert_slack_message(resolved)
    assert resolved["blocks"][0]["text"]["text"].startswith("Resolved: churn v7")
    # A file-based tracking URI has no UI to link to.
    local = build_payload(_notice(tracking_uri="sqlite:///mlflow.db"), "slack")
    assert_slack_message(local)
    assert "experiments/5" not in json.dumps(local)


def test_slack_limits_hold_on_long_names_and_odd_characters():
    rule = "drift/" + "x" * 400 + "/ks_pvalue<0.05:warning"
    notice = _notice(rule=rule, model_name="a&b<c>" * 60, tracking_uri="https://mlflow.example")
    message = build_payload(notice, "slack")
    assert_slack_message(message)
    assert len(message["blocks"][0]["text"]["text"]) == 150  # clipped, not refused by Slack
    assert "a&amp;b&lt;c&gt;" in json.dumps(message)


def test_pagerduty_trigger_and_resolve_share_the_dedup_key(monkeypatch):
    trigger = build_payload(_notice(), "pagerduty", routing_key=ROUTING_KEY)
    assert_pagerduty_event(trigger, "trigger")
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["custom_details"]["model"] == "models:/churn/7"
    assert trigger["payload"]["custom_details"]["alert"]["value"] == 0.67
    assert trigger["links"][0]["href"] == "http://127.0.0.1:5000/#/experiments/5/runs/r1"
    warning = _notice(rule="integrity/n_findings>=1:warning")
    assert build_payload(warning, "pagerduty", routing_key=ROUTING_KEY)["payload"]["severity"] == (
        "warning"
    )
    resolve = build_payload(_notice("resolve"), "pagerduty", routing_key=ROUTING_KEY)
    assert_pagerduty_event(resolve, "resolve")
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    # A rule too long for a 255-character key is hashed into one.
    long_rule = "drift/" + "y" * 300 + "/drifted>=1:critical"
    long_key = dedup_key("abc123", long_rule, "2026-11-26T03:00:00+00:00")
    assert len(long_key) <= 255 and long_key != dedup_key("abc123", long_rule + "x", "t")
    # The routing key: the argument, else the environment, else a usage error.
    monkeypatch.delenv(PAGERDUTY_ROUTING_KEY_ENV, raising=False)
    with pytest.raises(WebhookFormatError, match="--pagerduty-routing-key"):
        check_webhook_format("pagerduty")
    with pytest.raises(WebhookFormatError, match="--pagerduty-routing-key"):
        check_webhook_format("pagerduty", "   ")
    monkeypatch.setenv(PAGERDUTY_ROUTING_KEY_ENV, ROUTING_KEY)
    assert check_webhook_format("pagerduty") == ROUTING_KEY
    assert check_webhook_format("pagerduty", "other") == "other"
    with pytest.raises(WebhookFormatError, match="Got 'teams'"):
        check_webhook_format("teams")


def test_generic_payload_keeps_its_fields_and_says_trigger_or_resolve():
    payload = build_payload(_notice(), "generic")
    assert payload["event"] == "trigger" and payload["status"] == "firing"
    for key in ("level", "model", "model_name", "model_version", "window_start", "window_end"):
        assert payload[key]
    assert payload["alerts"][0]["metric"] == "drift/share_drifted_columns"
    assert payload["run_url"].endswith("/runs/r1")
    no_value = _notice("resolve")
    no_value.window["alert"]["value"] = None
    resolved = build_payload(no_value, "generic")
    assert resolved["status"] == "resolved" and "not computed" in resolved["summary"]


# -- traffic against its own past -------------------------------------------------------


def test_rows_ratio_is_rows_over_the_median_of_the_previous_windows():
    rng = np.random.default_rng(3)
    counts = rng.poisson(200, 60).astype(float)
    history = {i: c for i, c in enumerate(counts) if i % 7 != 3}  # some windows unknown
    for step in range(30, 60):
        expected = counts[step] / np.median(
            [history[i] for i in range(step - 24, step) if i in history]
        )
        assert rows_ratio(history, step, counts[step], reference=24) == pytest.approx(expected)
    # NaN and inf are unknown windows, not numbers; fewer than 3 known: no ratio.
    odd = {0: float("nan"), 1: float("inf"), 2: 100.0, 3: 120.0}
    assert rows_ratio(odd, 4, 55.0) is None
    assert rows_ratio({**odd, 1: 80.0}, 4, 50.0) == pytest.approx(0.5)
    assert rows_ratio({}, 0, 10.0) is None
    assert rows_ratio({0: 0.0, 1: 0.0, 2: 0.0, 3: 5.0}, 4, 10.0) is None  # median 0
    # Only the previous `reference` windows count: an old burst is forgotten.
    assert rows_ratio({0: 1e6, 1: 10.0, 2: 10.0, 3: 10.0}, 4, 30.0, reference=3) == 3.0
    with pytest.raises(ValueError, match="must be an int >= 3"):
        mo.monitor("models:/m/1", ".", traffic_reference=2)


def test_integrity_findings_are_rule_metrics():
    """Every integrity check has a metric in the catalogue; a mixed-type column counts."""
    reference = pd.DataFrame({"plan": ["a", "b"] * 50, "x": np.arange(100.0)})
    baseline = build_profile(reference)
    window = baseline.empty_like()
    current = pd.DataFrame({"plan": ["a", 3, "b", None] * 5, "x": [1.0, np.inf, np.nan, 2.0] * 5})
    window.update(current)
    result = check_integrity(baseline, window, list(current.columns))
    metrics = result.metrics()
    checks = {f.check for f in result.findings}
    assert "mixed_types" in checks and metrics["integrity/n_columns_with_mixed_types"] == 1.0
    assert metrics["integrity/n_findings"] == len(result.findings)
    catalogue = metric_catalogue(baseline)
    assert set(metrics) <= set(catalogue)
    check_metrics(["integrity/n_columns_with_mixed_types", "traffic/rows_ratio"], catalogue)


# -- the incident state machine on a real store ---------------------------------------------


def _window_outcome(hour, fired_value, rules, run_id=None):
    start = DAY + pd.Timedelta(hours=hour)
    metrics = {} if fired_value is None else {"traffic/rows": fired_value}
    return SimpleNamespace(
        window=Window(hour, start, start + pd.Timedelta(hours=1)),
        run_id=run_id,
        n_rows=int(fired_value or 0),
        alerts=[r.check(metrics) for r in rules],
    )


def _book(client, run_id, url, fmt="generic"):
    series = client.get_run(run_id)
    return IncidentBook(
        client,
        series,
        SimpleNamespace(name="churn", version="3"),
        series.info.experiment_id,
        mlflow.get_tracking_uri(),
        webhook=url,
        webhook_format=fmt,
        routing_key=ROUTING_KEY,
        timeout=2.0,
    )


def test_an_incident_that_cleared_while_the_receiver_was_down_is_still_told(tracking_uri, caplog):
    client = MlflowClient()
    run_id = mlflow.start_run().info.run_id
    mlflow.end_run()
    rules = [AlertRule.parse("traffic/rows<=50:critical")]
    down = Receiver([503])
    book = _book(client, run_id, down.url)
    assert book.observe(_window_outcome(0, 200, rules)) is None
    assert "failed" in book.observe(_window_outcome(1, 10, rules))  # the trigger: 2 attempts
    # The rule is unknown on a window without the metric: nothing changes, nothing is sent
    # (the receiver failed in this call: it is not tried again, and the line says so).
    due = "the trigger is due (the receiver failed earlier in this run; the next run retries it)"
    assert due in book.observe(_window_outcome(2, None, rules))
    assert due in book.observe(_window_outcome(3, 200, rules))  # cleared
    assert len(down.posts) == 2
    # The warning names the receiver's host, not its path (a Slack webhook's secret).
    assert "stays due and is retried" in caplog.text and down.url not in caplog.text
    assert [e for _, e in book.pending] == ["trigger", "resolve"]
    state = json.loads(client.get_run(run_id).data.tags[INCIDENTS_TAG])
    assert state["incidents"][0]["cleared"]["start"] == (DAY + pd.Timedelta(hours=3)).isoformat()
    down.shutdown()
    # The next call, another receiver up: trigger then resolve, both marked as retried.
    up = Receiver([202])
    later = _book(client, run_id, up.url, "pagerduty")
    later.deliver()
    assert [p["event_action"] for p in up.posts] == ["trigger", "resolve"]
    for post, action in zip(up.posts, ["trigger", "resolve"], strict=True):
        assert_pagerduty_event(post, action)
    assert up.posts[0]["dedup_key"] == up.posts[1]["dedup_key"]
    assert up.posts[0]["payload"]["custom_details"]["retried"] is True
    assert all(d.retried and d.delivered for d in later.deliveries)
    assert json.loads(client.get_run(run_id).data.tags[INCIDENTS_TAG])["incidents"] == []
    # Fires again after the resolve went out: a new incident, a new key.
    assert "trigger" in later.observe(_window_outcome(5, 0, rules))
    assert up.posts[-1]["dedup_key"] != up.posts[0]["dedup_key"]
    # Fires, clears, fires again before the resolve is delivered: one incident, no new page.
    up.statuses = [500, 500, 202]
    later._receiver_failed = False
    assert "failed" in later.observe(_window_outcome(6, 200, rules))  # resolve refused
    later._receiver_failed = False
    line = later.observe(_window_outcome(7, 0, rules))
    assert "already paged" in line and later.pending == []
    assert [p["event_action"] for p in up.posts].count("trigger") == 2
    up.shutdown()


def test_a_large_state_goes_to_an_artifact_and_a_damaged_one_starts_over(tracking_uri, caplog):
    client = MlflowClient()
    run_id = mlflow.start_run().info.run_id
    mlflow.end_run()
    rules = [AlertRule.parse(f"traffic/rows<={100 + i}:warning") for i in range(12)]
    receiver = Receiver([204])
    book = _book(client, run_id, receiver.url)
    book.observe(_window_outcome(0, 10, rules))
    assert len(receiver.posts) == 12  # twelve incidents, one trigger each
    tag = json.loads(client.get_run(run_id).data.tags[INCIDENTS_TAG])
    assert tag == {"version": 1, "artifact": "incidents.json"}  # too large for a tag
    again = _book(client, run_id, receiver.url)
    assert len(again.incidents) == 12
    again.observe(_window_outcome(1, 10, rules))
    assert len(receiver.posts) == 12  # the next call read them back: nothing paged again
    again.observe(_window_outcome(2, 500, rules))
    assert [p["event"] for p in receiver.posts[12:]] == ["resolve"] * 12
    assert json.loads(client.get_run(run_id).data.tags[INCIDENTS_TAG])["incidents"] == []
    # A damaged state: a warning, and monitoring goes on from no incident.
    client.set_tag(run_id, INCIDENTS_TAG, "{not json")
    fresh = _book(client, run_id, receiver.url)
    assert fresh.incidents == {} and "cannot be read" in caplog.text
    receiver.shutdown()


# -- scheduled runs against a real mlflow server ---------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """churn v1 with three logs: calm, quiet x3, calm; a day with a burst and a drop; calm."""
    with running_mlflow_server(tmp_path_factory.mktemp("server")) as url:
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("training")
        model, version = log_version(customers(3000, seed=0))
        logs = {}
        logs["incident"] = tmp_path_factory.mktemp("incident")
        write_traffic(logs["incident"], model, version, rows=[200, 200, 20, 20, 20, 200])
        rng = np.random.default_rng(11)
        bursts = rng.poisson(200, 30)
        bursts[26], bursts[28] = 4 * bursts[26], bursts[28] // 5
        logs["bursts"] = tmp_path_factory.mktemp("bursts")
        write_traffic(logs["bursts"], model, version, rows=bursts)
        logs["calm"] = tmp_path_factory.mktemp("calm")
        write_traffic(logs["calm"], model, version, rows=rng.poisson(200, 48))
        yield {"url": url, "logs": logs, "bursts": bursts, "version": version}
        mlflow.set_tracking_uri(None)


def _monitor_cli(fleet, *args, env=None):
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    return subprocess.run(
        [executable, "monitor", "-m", "models:/churn/1", "--window", "1h", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": fleet["url"],
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            **(env or {}),
        },
    )


def _at(hours):
    return str(DAY + pd.Timedelta(hours=hours))


@pytest.mark.server
@pytest.mark.parametrize("fmt", ["generic", "slack", "pagerduty"])
def test_one_trigger_and_one_resolve_per_incident_across_scheduled_runs(fleet, fmt):
    receiver = Receiver([202 if fmt == "pagerduty" else 200])
    common = [
        "--logs",
        str(fleet["logs"]["incident"]),
        "--alert",
        "traffic/rows<=50:critical",
        "--min-rows",
        "1000000",  # traffic only: no window is evaluated, every traffic rule is checked
        "--webhook",
        receiver.url,
        "--webhook-format",
        fmt,
        "--experiment-name",
        f"incidents {fmt}",
        "--output",
        "json",
    ]
    env = {PAGERDUTY_ROUTING_KEY_ENV: ROUTING_KEY}
    # Cron at 04:00: calm, calm, quiet, quiet. One trigger, on the first quiet window.
    first = _monitor_cli(fleet, *common, "--since", _at(0), "--until", _at(4), env=env)
    assert first.returncode == 1, first.stderr
    result = json.loads(first.stdout)
    assert [w["level"] for w in result["windows"]] == [None, None, "critical", "critical"]
    assert len(receiver.posts) == 1
    assert [d["event"] for d in result["deliveries"]] == ["trigger"]
    assert result["incidents"][0]["due"] == [] and result["incidents"][0]["since"] == _iso(2)
    assert "already paged" in result["windows"][3]["webhook"]
    # Cron at 06:00, a new process: the incident goes on (no page), then clears (a resolve).
    second = _monitor_cli(fleet, *common, "--until", _at(6), env=env)
    assert second.returncode == 1, second.stderr
    result = json.loads(second.stdout)
    # Windows too small to evaluate are looked at again (their traffic may still grow);
    # the incidents count each window once.
    assert [w["level"] for w in result["windows"]][-2:] == ["critical", None]
    assert [d["event"] for d in result["deliveries"]] == ["resolve"]
    assert result["incidents"] == []
    receiver.shutdown()
    trigger, resolve = receiver.posts
    assert all(h["Content-Type"] == "application/json" for h in receiver.headers)
    if fmt == "generic":
        assert (trigger["event"], resolve["event"]) == ("trigger", "resolve")
        assert trigger["window_start"] == _iso(2) and resolve["window_start"] == _iso(5)
        assert trigger["alerts"][0]["value"] == 20.0 and resolve["alerts"][0]["value"] == 200.0
        assert trigger["dedup_key"] == resolve["dedup_key"]
    elif fmt == "slack":
        assert_slack_message(trigger)
        assert_slack_message(resolve)
        assert "Critical alert: churn v1" in trigger["blocks"][0]["text"]["text"]
        assert resolve["blocks"][0]["text"]["text"].startswith("Resolved: churn v1")
        # A skipped window has no run of its own: the link opens the monitor run.
        link = f"<{fleet['url']}/#/experiments/"
        assert link in json.dumps(trigger) and result["monitor_run_id"] in json.dumps(trigger)
    else:
        assert_pagerduty_event(trigger, "trigger")
        assert_pagerduty_event(resolve, "resolve")
        assert trigger["payload"]["severity"] == "critical"
        assert trigger["dedup_key"] == resolve["dedup_key"]
        assert trigger["payload"]["custom_details"]["window_start"] == _iso(2)
    # The state is on the monitor run, in MLflow, and now empty.
    tag = MlflowClient().get_run(result["monitor_run_id"]).data.tags[INCIDENTS_TAG]
    assert json.loads(tag)["incidents"] == []


def _iso(hours):
    return (DAY + pd.Timedelta(hours=hours)).isoformat()


@pytest.mark.server
def test_a_receiver_that_fails_the_trigger_gets_it_on_the_next_run(fleet):
    receiver = Receiver([500, 500, 204])  # both attempts of the first delivery fail
    common = [
        "--logs",
        str(fleet["logs"]["incident"]),
        "--alert",
        "traffic/rows<=50:critical",
        "--min-rows",
        "1000000",
        "--webhook",
        receiver.url,
        "--experiment-name",
        "incidents retried",
    ]
    first = _monitor_cli(fleet, *common, "--since", _at(0), "--until", _at(4))
    assert first.returncode == 1, first.stderr
    assert "webhook: trigger traffic/rows<=50:critical: failed after 2 attempt(s): HTTP 500" in (
        first.stdout
    )
    assert "the trigger of traffic/rows<=50:critical is still due; the next run retries it" in (
        first.stdout
    )
    assert len(receiver.posts) == 2  # the 03:00 window did not knock again in the same run
    second = _monitor_cli(fleet, *common, "--until", _at(6))
    assert second.returncode == 1, second.stderr
    assert "delivered (HTTP 204) (retried from an earlier run)" in second.stdout
    assert [p["event"] for p in receiver.posts] == ["trigger", "trigger", "trigger", "resolve"]
    assert receiver.posts[2]["retried"] is True and receiver.posts[2]["window_start"] == _iso(2)
    assert receiver.posts[3]["retried"] is False
    receiver.shutdown()


@pytest.mark.server
def test_traffic_bursts_and_drops_page_and_calm_traffic_does_not(fleet):
    bursts = fleet["bursts"]
    result = mo.monitor(
        "models:/churn/1",
        str(fleet["logs"]["bursts"]),
        window="1h",
        since=_at(0),
        until=_at(len(bursts)),
        alerts=["traffic/rows_ratio>=3:warning", "traffic/rows_ratio<=0.5:critical"],
        min_rows=10**6,
        experiment_name="bursts",
    )
    fired = {w.window.index - result.windows[0].window.index: w.level for w in result.windows}
    assert {i: level for i, level in fired.items() if level} == {26: "warning", 28: "critical"}
    # The ratio is each window's rows over the median of the previous 24 (3 or more known).
    ratios = {
        m.step: m.value
        for m in MlflowClient().get_metric_history(result.monitor_run_id, "traffic/rows_ratio")
    }
    assert sorted(ratios) == list(range(3, len(bursts)))
    for step in range(3, len(bursts)):
        expected = bursts[step] / np.median(bursts[max(0, step - 24) : step])
        assert ratios[step] == pytest.approx(expected)
    calm = mo.monitor(
        "models:/churn/1",
        str(fleet["logs"]["calm"]),
        window="1h",
        since=_at(0),
        until=_at(48),
        alerts=["traffic/rows_ratio>=3:warning", "traffic/rows_ratio<=0.5:critical"],
        min_rows=10**6,
        experiment_name="calm traffic",
    )
    assert len(calm.windows) == 48 and calm.level is None
    assert all(not a.fired for w in calm.windows for a in w.alerts)


def test_help_documents_every_alerting_option():
    runner = CliRunner()
    text = " ".join(runner.invoke(main, ["monitor", "--help"]).output.split())
    for option in (
        "--webhook-format [generic|slack|pagerduty]",
        "--pagerduty-routing-key KEY",
        "MLFLOW_OBSERVE_PAGERDUTY_ROUTING_KEY",
        "--traffic-reference",
        "traffic/rows_ratio",
        "one page per incident",
        "--webhook-timeout",
    ):
        assert option in text, option
    refused = runner.invoke(
        main,
        ["monitor", "-m", "models:/churn/1", "--logs", ".", "--webhook-format", "pagerduty"],
        env={PAGERDUTY_ROUTING_KEY_ENV: ""},
    )
    assert refused.exit_code == 2 and "routing key" in refused.output
    no_url = runner.invoke(
        main, ["monitor", "-m", "models:/churn/1", "--logs", ".", "--webhook-format", "slack"]
    )
    assert no_url.exit_code == 2 and "incoming webhook's URL" in no_url.output
