"""``mlflow-observe explain``: why a served prediction came out as it did."""

from __future__ import annotations

import json

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided


@click.command("explain")
@options.MODEL_URI
@click.option(
    "--request-id",
    "request_ids",
    metavar="ID",
    multiple=True,
    help="A logged prediction's request id (repeat for several). A multi-row call's id "
    "finds all its rows.",
)
@click.option(
    "--logs",
    "log_uri",
    metavar="DIR",
    default=None,
    help="The prediction log to find the request ids in (the server's MLFLOW_OBSERVE_LOG_DIR).",
)
@click.option(
    "--data",
    "data_path",
    metavar="PATH",
    default=None,
    type=click.Path(exists=True, dir_okay=True),
    help="Explain the rows of this Parquet or CSV file instead of logged requests.",
)
@click.option(
    "--probability",
    is_flag=True,
    help="Explain the probability of the last class (scikit-learn classifiers) rather than "
    "the prediction.",
)
@click.option(
    "--permutations",
    default=16,
    show_default=True,
    type=click.IntRange(2, None),
    help="Feature orderings sampled per row (cost grows with it; linear models are exact "
    "with any).",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Print a table of the largest attributions, or the JSON account.",
)
@click.option(
    "--plot",
    "plot_path",
    metavar="PATH",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Write the first row's waterfall plot to this PNG file.",
)
@click.option(
    "--log",
    "log_run",
    is_flag=True,
    help="Log the explanation (JSON, table, waterfalls) on a new MLflow run.",
)
@click.option("--top", default=5, show_default=True, help="Features shown per row in the table.")
@options.VERBOSE
def explain(
    model_uri,
    request_ids,
    log_uri,
    data_path,
    probability,
    permutations,
    output,
    plot_path,
    log_run,
    top,
):
    """Attribute predictions to features: a logged request's, or a file's rows.

    Each feature gets its share of the prediction minus the base value (the mean
    prediction over the baseline's row sample); the shares add up exactly. The
    model's baseline provides the background rows.

    \b
    Examples:
      mlflow-observe explain -m models:/churn@champion --logs /var/log/churn \\
          --request-id order-42
      mlflow-observe explain -m models:/churn/3 --data suspicious.parquet --probability
    """
    import pandas as pd

    from mlflow_observe.explanation import explain as explain_rows
    from mlflow_observe.explanation import logged_rows

    with decided():
        if bool(request_ids) == bool(data_path):
            raise click.UsageError("Give either --request-id (with --logs) or --data.")
        if request_ids and not log_uri:
            raise click.UsageError("--request-id needs --logs, the prediction log to search.")
        ids = None
        if request_ids:
            rows = logged_rows(log_uri, request_ids)
            ids = rows.pop("request_id").tolist()
        elif str(data_path).endswith(".csv"):
            rows = pd.read_csv(data_path)
        else:
            rows = pd.read_parquet(data_path)
        explanation = explain_rows(
            model_uri,
            rows,
            output="probability" if probability else "prediction",
            n_permutations=permutations,
            request_ids=ids,
            log=log_run,
        )
        if plot_path:
            from mlflow_observe.report.plots import figure_to_png

            with open(plot_path, "wb") as handle:
                handle.write(figure_to_png(explanation.plot(0)))
    # Outside decided(): the result goes to stdout.
    if output == "json":
        click.echo(json.dumps(explanation.to_dict(), indent=2, default=str))
        return
    table = explanation.to_frame().groupby("row", sort=False).head(top)
    predictions = explanation.attributions.predictions
    click.echo(f"{explanation.output}: base value {explanation.base_value:.4g}")
    for row, lines in table.groupby("row", sort=False):
        label = lines["request_id"].iloc[0] or f"row {row}"
        click.echo(f"\n{label}: {predictions[row]:.4g}")
        for line in lines.itertuples():
            click.echo(f"  {line.attribution:+.4g}  {line.feature} = {line.value}")
