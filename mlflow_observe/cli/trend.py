"""``mlflow-observe trend``: one monitored metric over the windows, without the UI."""

from __future__ import annotations

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided


@click.command("trend")
@options.MODEL_URI
@click.option(
    "--metric",
    metavar="KEY",
    required=True,
    help="A metric key a window has, e.g. drift/share_drifted_columns, traffic/rows, "
    "degradation/accuracy (the estimate on windows without labels).",
)
@options.MONITORING_EXPERIMENT
@click.option(
    "--output",
    type=click.Choice(["table", "csv", "png"]),
    default="table",
    show_default=True,
    help="How to give the trend: a table, CSV (to stdout or --out), or a PNG chart (--out).",
)
@click.option(
    "--out",
    "path",
    metavar="PATH",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Write the CSV or PNG to this file (needed for png).",
)
@options.VERBOSE
def trend(model_uri, metric, experiment_name, output, path):
    """Print a monitored metric of a model version window by window, with each window's alert.

    \b
    Exit codes:
      0  printed (or written)
      2  usage error (a metric no window has, --output png without --out)
      3  unknown model or alias, no monitor run, tracking server unreachable
    """
    from mlflow_observe.monitoring.trend import plot_trend
    from mlflow_observe.monitoring.trend import trend as read_trend

    if output == "png" and not path:
        raise click.UsageError("--output png writes an image: give --out PATH.")
    with decided():
        frame = read_trend(model_uri, metric, experiment_name=experiment_name)
    if output == "png":
        figure = plot_trend(frame, metric)
        figure.savefig(path, dpi=110)
        click.echo(f"{len(frame)} window(s) of {metric} drawn in {path}")
        return
    if output == "csv":
        text = frame.assign(window_start=frame["window_start"].map(lambda t: t.isoformat()))
        csv = text.to_csv(index=False)
        if path:
            with open(path, "w") as handle:
                handle.write(csv)
            click.echo(f"{len(frame)} window(s) of {metric} written to {path}")
        else:
            click.echo(csv, nl=False)
        return
    click.echo(f"{'window start (UTC)':<20} {'value':>12}  {'alert':<9} metric")
    for row in frame.itertuples(index=False):
        click.echo(
            f"{row.window_start:%Y-%m-%d %H:%M:%S} {row.value:>12.4g}  {row.level or '':<9} "
            f"{row.metric}"
        )
