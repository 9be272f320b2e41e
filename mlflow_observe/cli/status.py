"""``mlflow-observe status``: the fleet at a glance, worst first."""

from __future__ import annotations

import json

import click
import pandas as pd

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided


@click.command("status")
@click.option(
    "--output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="How to print the fleet.",
)
@options.VERBOSE
def status(output):
    """Every registered model version with a baseline: its aliases, last monitored window,
    traffic, drift, headline performance, alert level and gate status, worst first.

    \b
    Exit codes:
      0  printed
      2  usage error
      3  tracking server unreachable
    """
    from mlflow_observe.monitoring.status import status as read_status

    with decided():
        frame = read_status()
    if output == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    if output == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        click.echo(json.dumps(records, indent=2, default=str))
        return
    click.echo(
        f"{'model':<16} {'version':>7} {'aliases':<12} {'last window (UTC)':<17} {'rows/day':>8} "
        f"{'drift':>6} {'headline':<34} {'value':>7} {'delta':>8} {'alert':<9} gate"
    )

    def number(value, spec):
        return "" if value is None or value != value else format(value, spec)

    for row in frame.itertuples(index=False):
        last = "" if pd.isna(row.last_window) else f"{row.last_window:%Y-%m-%d %H:%M}"
        click.echo(
            f"{row.model:<16} {row.version:>7} {row.aliases or '':<12} {last:<17} "
            f"{number(row.rows_last_day, '.0f'):>8} {number(row.drift_share, '.2f'):>6} "
            f"{row.headline or '':<34} {number(row.headline_value, '.3f'):>7} "
            f"{number(row.headline_delta, '+.3f'):>8} {row.level or '':<9} {row.gate or ''}"
        )
