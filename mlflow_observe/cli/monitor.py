"""``mlflow-observe monitor``: evaluate the new windows of a model version's prediction log."""

from __future__ import annotations

import json
import sys

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided
from mlflow_observe.monitoring.payloads import (
    FORMATS,
    GENERIC,
    PAGERDUTY_ROUTING_KEY_ENV,
    WebhookFormatError,
    check_webhook_format,
    webhook_target,
)
from mlflow_observe.monitoring.rules import (
    CRITICAL,
    WARNING,
    AlertRule,
    RuleSyntaxError,
)
from mlflow_observe.monitoring.webhook import (
    WebhookURLError,
    check_webhook_timeout,
    check_webhook_url,
)
from mlflow_observe.monitoring.windows import WindowError, parse_duration


@click.command("monitor")
@options.MODEL_URI
@click.option(
    "--logs",
    metavar="PATH",
    required=True,
    help="The prediction log directory (MLFLOW_OBSERVE_LOG_DIR of the model server).",
)
@click.option(
    "--window",
    default="1h",
    show_default=True,
    help="Window width: 15m, 1h, 1d, 2h30m... Only windows that have ended are evaluated.",
)
@click.option(
    "--since",
    metavar="TIME",
    default=None,
    help="Start of the range (ISO 8601, UTC). Default: the end of the last "
    "evaluated window, or the first logged prediction.",
)
@click.option(
    "--until", metavar="TIME", default=None, help="End of the range (ISO 8601, UTC). Default: now."
)
@click.option(
    "--alert",
    "alerts",
    metavar="RULE",
    multiple=True,
    help="METRIC OP VALUE [for DURATION][:LEVEL], e.g. 'drift/share_drifted_columns>=0.3:critical', "
    "'degradation/accuracy_delta<=-0.02:warning' (the realised value when labels arrived, "
    "the estimate otherwise), 'traffic/rows==0 for 2h' (held on every window of the last 2h), "
    "'traffic/rows_ratio>=3' (a spike against the median of the previous windows), "
    "'integrity/n_findings>=1:warning'. "
    "OP: >= <= > < == !=; LEVEL: warning or critical, default critical. METRIC must be one "
    "a window can have (checked before anything runs). Repeatable.",
)
@click.option(
    "--fail-on",
    type=click.Choice([CRITICAL, WARNING]),
    default=CRITICAL,
    show_default=True,
    help="The alert level that makes the exit code 1.",
)
@click.option(
    "--webhook",
    metavar="URL",
    default=None,
    help="POST to this http(s) URL when an incident opens (a rule starts firing) and when it "
    "clears: one page per incident, not per window; a failed delivery is retried by the next "
    "run (redirects are not followed: a 3xx is a failed delivery). Default with "
    "--webhook-format pagerduty: PagerDuty's Events API v2 endpoint.",
)
@click.option(
    "--webhook-format",
    type=click.Choice(FORMATS),
    default=GENERIC,
    show_default=True,
    help="The payload: generic JSON, a Slack incoming-webhook message (text and blocks), or "
    "a PagerDuty Events API v2 event (trigger, then resolve with the same dedup_key).",
)
@click.option(
    "--pagerduty-routing-key",
    metavar="KEY",
    envvar=PAGERDUTY_ROUTING_KEY_ENV,
    show_envvar=True,
    default=None,
    help="The integration (routing) key of a PagerDuty Events API v2 integration; required "
    "by --webhook-format pagerduty. Never stored or printed.",
)
@click.option(
    "--webhook-timeout",
    type=options.FINITE_FLOAT,
    default=10.0,
    show_default=True,
    help="Total seconds for one webhook delivery, both attempts included.",
)
@click.option(
    "--traffic-reference",
    type=click.IntRange(3),
    default=24,
    show_default=True,
    help="traffic/rows_ratio divides a window's rows by the median rows of this many previous "
    "windows: 'traffic/rows_ratio<=0.5' pages on a drop by half, '>=3' on a tripling.",
)
@click.option(
    "--min-rows",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Windows with fewer predictions are skipped (and listed as such).",
)
@options.MONITORING_EXPERIMENT
@options.LOG_ENGINE
@options.OUTPUT
@options.VERBOSE
def monitor(
    model_uri,
    logs,
    window,
    since,
    until,
    alerts,
    fail_on,
    webhook,
    webhook_timeout,
    webhook_format,
    pagerduty_routing_key,
    traffic_reference,
    min_rows,
    experiment_name,
    engine,
    output,
):
    """Evaluate every window of the prediction log not evaluated yet, and raise alerts.

    Each window gets a run (drift, integrity, degradation: realised where labels
    arrived, estimated otherwise) nested under the version's monitor run, whose
    metric charts are the time series. Running it twice adds nothing.

    Scheduled runs: no new complete window is exit 0 ("nothing to evaluate");
    windows without predictions are not an error (a 'traffic/rows==0 for 2h'
    rule is what pages for a model that stopped receiving traffic).

    \b
    Exit codes:
      0  no alert at the --fail-on level fired (or nothing to evaluate)
      1  an alert at the --fail-on level (default critical) fired
      2  usage error (e.g. a malformed or non-finite --alert rule, a rule on a
         metric no window has, a --window, a --webhook that is not http(s),
         --webhook-format pagerduty without a routing key, slack without --webhook)
      3  could not decide: unknown model or alias, no baseline, a --logs location
         that does not exist, no prediction of the model ever logged there,
         tracking server unreachable, --engine spark without Spark, or a
         window that could not be evaluated (the others are; it is redone next time)
    """
    from mlflow_observe.monitoring.monitor import monitor as run_monitor

    try:
        rules = [AlertRule.parse(rule) for rule in alerts]
        width = parse_duration(window)
        if webhook is not None:
            check_webhook_url(webhook)
        check_webhook_timeout(webhook_timeout)
        check_webhook_format(webhook_format, pagerduty_routing_key)
        webhook_target(webhook, webhook_format)
    except (RuleSyntaxError, WindowError, WebhookURLError, WebhookFormatError) as exc:
        raise click.UsageError(str(exc)) from exc
    with decided():
        result = run_monitor(
            model_uri,
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
            experiment_name=experiment_name,
            min_rows=min_rows,
            engine=engine,
        )
    _print(result, output)
    levels = {CRITICAL} if fail_on == CRITICAL else {CRITICAL, WARNING}
    if result.level in levels:
        sys.exit(options.EXIT_FAILED)
    sys.exit(options.EXIT_UNDECIDED if result.failed else options.EXIT_OK)


def _print(result, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    for delivery in result.deliveries:
        click.echo(f"webhook: {delivery}")
    for rule, event in [(i["rule"], e) for i in result.incidents for e in i["due"]]:
        click.echo(f"webhook: the {event} of {rule} is still due; the next run retries it")
    if not result.windows:
        click.echo(
            f"{result.model.label}: nothing to evaluate (no new complete window; "
            f"{result.already_evaluated} evaluated before); monitor run {result.monitor_run_id}"
        )
        return
    click.echo(
        f"{result.model.label}: {len(result.evaluated)} window(s) evaluated, "
        f"{len(result.skipped)} skipped, {len(result.failed)} failed, "
        f"{result.already_evaluated} evaluated before; "
        f"monitor run {result.monitor_run_id}"
    )
    click.echo(
        f"{'window start (UTC)':<20} {'rows':>7} {'status':<10} {'drift share':>11} "
        f"{'alert':<9} run / note"
    )
    for w in result.windows:
        share = w.metrics.get("drift/share_drifted_columns")
        detail = w.run_id or "; ".join(w.notes)
        if w.webhook:
            detail += f" (webhook {w.webhook})"
        click.echo(
            f"{w.window.start:%Y-%m-%d %H:%M:%S} {w.n_rows:>7} {w.status:<10} "
            f"{'' if share is None else f'{share:.2f}':>11} {w.level or '':<9} {detail}"
        )
