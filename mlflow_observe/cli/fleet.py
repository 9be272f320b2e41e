"""``mlflow-observe monitor --all``: the whole fleet, one line per version, one exit code."""

from __future__ import annotations

import json
import sys

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided
from mlflow_observe.monitoring.rules import CRITICAL, WARNING


def monitor_fleet(*, fail_on: str, output: str, **monitor_options) -> None:
    """Monitor every version with a log location, print the summary, exit with the fleet's code.

    Exit 1 when any version raised an alert at ``fail_on``, else 3 when any
    version could not be monitored (or had a window that could not be
    evaluated) or the fleet view could not be refreshed, else 0.
    """
    from mlflow_observe.monitoring.fleet_monitor import monitor_all

    with decided():
        result = monitor_all(**monitor_options)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print(result)
    levels = {CRITICAL} if fail_on == CRITICAL else {CRITICAL, WARNING}
    if any(e.level in levels for e in result.entries):
        sys.exit(options.EXIT_FAILED)
    if result.undecided or result.refresh_error:
        sys.exit(options.EXIT_UNDECIDED)
    sys.exit(options.EXIT_OK)


def _print(result) -> None:
    click.echo(f"{'model':<20} {'version':>7} {'windows':>7} {'alert':<9} {'status':<16} error")
    for entry in result.entries:
        windows = f"{entry.windows_evaluated}" + (
            f"+{entry.windows_failed}!" if entry.windows_failed else ""
        )
        error = entry.error or (
            f"{entry.windows_failed} window(s) could not be evaluated"
            if entry.windows_failed
            else ""
        )
        click.echo(
            f"{entry.model:<20} {entry.version:>7} {windows:>7} {entry.level or '':<9} "
            f"{entry.status:<16} {error.splitlines()[0] if error else ''}"
        )
    monitored = sum(e.status == "monitored" for e in result.entries)
    click.echo(
        f"{monitored} of {len(result.entries)} version(s) monitored; worst alert: "
        f"{result.level or 'none'}; "
        + (
            f"fleet run {result.fleet_run_id}"
            if result.fleet_run_id
            else f"fleet view not refreshed: {result.refresh_error}"
        )
    )
