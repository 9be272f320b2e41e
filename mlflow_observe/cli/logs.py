"""``mlflow-observe logs``: keep a prediction log small and bounded (compact, expire)."""

import json

import click

from mlflow_observe.cli.errors import decided
from mlflow_observe.cli.options import MODEL_URI, OUTPUT
from mlflow_observe.monitoring.windows import WindowError, parse_duration

LOG_LOCATION = click.option(
    "--logs",
    "uri",
    metavar="DIR",
    required=True,
    envvar="MLFLOW_OBSERVE_LOG_DIR",
    help="The prediction log directory or URI (default: $MLFLOW_OBSERVE_LOG_DIR).",
)


@click.group("logs")
def logs():
    """Maintain a prediction log: merge small files, remove old days.

    Both cover the attributions of sampled predictions beside the log
    (DIR/attributions), and both are safe while servers write and monitors read.
    """


@logs.command("compact")
@LOG_LOCATION
@click.option("--day", metavar="YYYY-MM-DD", default=None, help="Only this day.")
@click.option(
    "--include-today",
    is_flag=True,
    help="Also today's partition (UTC), where writers still add files.",
)
@click.option(
    "--grace",
    metavar="DURATION",
    default="10m",
    show_default=True,
    help="How long merged files stay for readers that listed them before the merge.",
)
@OUTPUT
def compact(uri, day, include_today, grace, output):
    """Merge each finished day's files into a few large ones, atomically.

    Spool files that dead servers left are recovered first. Readers never see a
    row twice or miss one: a merged file names the files it replaces, which
    readers then skip, and those stay for --grace before they are removed (by
    the next compaction). The attributions of sampled predictions
    (DIR/attributions) are compacted too, the same way; the output gives each
    stream's counts (JSON: the log's, and its attribution stream's under
    "attributions", null when there is none).

    \b
    Exit codes:
      0  done
      2  usage error (a malformed --grace or --day)
      3  the log could not be compacted (unreadable, not writable)
    """
    from mlflow_observe.logs.compaction import compact_logs

    try:
        grace_seconds = parse_duration(grace).total_seconds() if grace != "0" else 0.0
    except WindowError as exc:
        raise click.UsageError(str(exc)) from exc
    with decided():
        result = compact_logs(
            uri, day=day, finished_only=not include_today, grace_seconds=grace_seconds
        )
    attributions = result.attributions
    if output == "json":
        record = result.counts()
        record["attributions"] = None if attributions is None else attributions.counts()
        click.echo(json.dumps(record))
        return
    click.echo(
        f"log: {result.days} day(s): {result.files_merged} files merged into "
        f"{result.files_written} ({result.rows} rows), {result.files_removed} replaced "
        f"files removed, {result.rows_recovered} rows recovered from spools"
    )
    if attributions is None:
        click.echo("attributions: none beside the log")
    else:
        click.echo(
            f"attributions: {attributions.days} day(s): {attributions.files_merged} files "
            f"merged into {attributions.files_written} ({attributions.rows} rows), "
            f"{attributions.files_removed} replaced files removed"
        )


@logs.command("expire")
@LOG_LOCATION
@click.option(
    "--older-than",
    metavar="DURATION",
    required=True,
    help="Remove the days that ended longer ago than this (30d, 12w...).",
)
@OUTPUT
def expire(uri, older_than, output):
    """Remove the day partitions older than --older-than.

    The attributions of sampled predictions (DIR/attributions) expire with
    the log's days, at the same cutoff; the output lists each stream's days
    (JSON: "removed_days" and "removed_attribution_days").

    \b
    Exit codes:
      0  done
      2  usage error (a malformed --older-than)
      3  the log could not be changed
    """
    from mlflow_observe.logs.compaction import expire_logs

    try:
        age = parse_duration(older_than)
    except WindowError as exc:
        raise click.UsageError(str(exc)) from exc
    with decided():
        result = expire_logs(uri, age)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "removed_days": list(result.days),
                    "removed_attribution_days": list(result.attribution_days),
                }
            )
        )
        return
    for stream, days in (("log", result.days), ("attributions", result.attribution_days)):
        click.echo(
            f"{stream}: {len(days)} day(s) removed" + (f": {', '.join(days)}" if days else "")
        )


@logs.command("set-location")
@MODEL_URI
@click.option(
    "--logs",
    "uri",
    metavar="DIR",
    required=True,
    help="The prediction log directory or URI the version's server writes to.",
)
def set_location(model_uri, uri):
    """Record where a model version's prediction log is, for 'monitor --all'.

    Sets the version's observe.monitor.logs tag (what mo.log_model(...,
    log_location=...) records at registration).

    \b
    Exit codes:
      0  recorded
      2  usage error
      3  unknown model or version, or tracking server unreachable
    """
    from mlflow_observe.monitoring.fleet_monitor import set_log_location

    with decided():
        tagged = set_log_location(model_uri, uri)
    click.echo(f"{tagged}: prediction log {uri}")
