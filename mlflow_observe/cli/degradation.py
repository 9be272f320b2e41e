"""``mlflow-observe degradation``: the degradation evaluator, from files."""

from __future__ import annotations

import json
import sys

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.drift import EXIT_DRIFT, EXIT_OK, run_evaluation


@click.command("degradation")
@options.evaluation_inputs
@click.option(
    "--tolerance",
    type=options.FINITE_FLOAT,
    default=None,
    help="Relative slack beyond the baseline's uncertainty (default 0.02).",
)
@click.option(
    "--fail-on-degradation", is_flag=True, help="Exit with 1 when a metric degraded (for CI/CD)."
)
@options.OUTPUT
@options.VERBOSE
def degradation(
    baseline,
    data,
    predictions,
    targets,
    run_id,
    experiment_id,
    experiment_name,
    tolerance,
    fail_on_degradation,
    output,
):
    """Compare a production file's model performance with a baseline's and log it to MLflow.

    Realised metrics when the file has the label column, estimated ones otherwise.

    \b
    Exit codes:
      0  compared (and, with --fail-on-degradation, nothing degraded)
      1  a metric degraded, with --fail-on-degradation
      2  usage error
      3  could not decide: baseline not found or without labels, unreadable data,
         tracking server unreachable
    """
    from mlflow_observe.evaluation import evaluate_degradation

    config = {"tolerance": tolerance} if tolerance is not None else {}
    result, run_id = run_evaluation(
        evaluate_degradation,
        baseline,
        data,
        predictions,
        targets,
        run_id,
        experiment_id,
        experiment_name,
        config,
    )
    table = result.artifacts["degradation_table"].content
    if output == "json":
        click.echo(
            json.dumps({"run_id": run_id, "metrics": result.metrics, "table": table}, indent=2)
        )
    else:
        degraded = result.metrics.get("degradation/degraded", 0.0) >= 1.0
        click.echo(f"run {run_id}: {'degraded' if degraded else 'no degradation'}")
        click.echo(
            f"{'metric':<22} {'baseline':>9} {'window':>9} {'delta':>9} {'margin':>8}  status"
        )
        for r in table:
            click.echo(
                f"{r['key'].split('/', 1)[1]:<22} {r['baseline']:>9.4f} {r['value']:>9.4f} "
                f"{r['delta']:>+9.4f} {r['margin']:>8.4f}  "
                f"{'degraded' if r['degraded'] else 'ok'}"
            )
    degraded = result.metrics.get("degradation/degraded", 0.0) >= 1.0
    sys.exit(EXIT_DRIFT if (fail_on_degradation and degraded) else EXIT_OK)
