"""``mlflow-observe history``: a model version's audit trail, in time order."""

from __future__ import annotations

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided


@click.command("history")
@options.MODEL_URI
@options.OUTPUT
@options.VERBOSE
def history(model_uri, output):
    """Print a model version's baseline, monitored windows, alerts and gate decisions.

    \b
    Exit codes:
      0  printed
      2  usage error
      3  unknown model or alias, tracking server unreachable
    """
    from mlflow_observe.monitoring.history import history as read_history
    from mlflow_observe.monitoring.history import to_json

    with decided():
        events = read_history(model_uri)
    if output == "json":
        click.echo(to_json(events))
        return
    width = max([len(e.kind) for e in events] + [4])
    for event in events:
        click.echo(
            f"{event.time[:19].replace('T', ' ')}  {event.kind:<{width}}  {event.summary}"
            + (f"  [run {event.run_id}]" if event.run_id else "")
        )
