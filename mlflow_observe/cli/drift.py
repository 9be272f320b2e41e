"""``mlflow-observe drift``: the drift evaluator, from files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import click

from mlflow_observe.backends import ALIBI_DETECTORS
from mlflow_observe.cli import options
from mlflow_observe.cli.errors import undecided
from mlflow_observe.core.drift.options import METHODS

_logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DRIFT, EXIT_UNDECIDED = options.EXIT_OK, options.EXIT_FAILED, options.EXIT_UNDECIDED


def read_table(path: str, engine: str = "pandas"):
    """Read the ``--data`` file (CSV or Parquet); a format it cannot tell is a usage error.

    With ``engine="spark"``, a Spark DataFrame read by the active or configured session.
    """
    from mlflow_observe.inputs import read_table as read

    lower = path.lower()
    parquet = os.path.isdir(path) or lower.endswith((".parquet", ".pq"))
    if not parquet and not lower.endswith((".csv", ".csv.gz", ".tsv")):
        raise click.UsageError(
            f"Cannot tell the format of {path!r}: use a .csv, .tsv or .parquet file."
        )
    if engine == "spark":
        from mlflow_observe.engines.spark import spark_session

        reader = spark_session().read
        return (
            reader.parquet(path)
            if parquet
            else reader.csv(
                path, header=True, sep="\t" if lower.endswith(".tsv") else ",", inferSchema=True
            )
        )
    return read(path)


@click.command("drift")
@options.evaluation_inputs
@click.option(
    "--method",
    default=None,
    type=click.Choice(METHODS),
    help="One method for every column (default: auto, chosen per column by kind "
    "and reference size).",
)
@click.option(
    "--threshold",
    type=options.FINITE_FLOAT,
    default=None,
    help="One threshold for every column (default: the method's own).",
)
@click.option(
    "--drift-share",
    type=options.FINITE_FLOAT,
    default=None,
    callback=options.drift_option,
    help="Share of drifted columns at which the dataset drifts, in (0, 1] (default 0.5).",
)
@click.option(
    "--warning-ratio",
    type=options.FINITE_FLOAT,
    default=None,
    callback=options.drift_option,
    help="A column whose distance reaches this share of its threshold warns, in (0, 1] "
    "(default 0.5).",
)
@click.option(
    "--pvalue-warning-ratio",
    type=options.FINITE_FLOAT,
    default=None,
    callback=options.drift_option,
    help="A column whose adjusted p-value falls below this multiple of its threshold warns, "
    ">= 1 (default 1.5: below 0.075 for 0.05).",
)
@click.option(
    "--multivariate",
    is_flag=True,
    help="Also run the multivariate detectors (domain classifier, PCA "
    "reconstruction error) on the baseline's and the window's row samples.",
)
@click.option(
    "--segment-by",
    "segment_by",
    multiple=True,
    metavar="COLUMN",
    help="Also compare each segment (rows sharing a value of COLUMN) with the "
    "baseline; repeat for several columns.",
)
@click.option(
    "--min-segment-size",
    type=click.IntRange(min=1),
    default=None,
    help="Segment values with fewer rows are pooled into (other) (default 200).",
)
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    type=click.Choice(ALIBI_DETECTORS),
    help="Also run an alibi-detect detector on the row samples (repeatable; "
    "needs the alibi extra: pip install 'mlflow-observe[alibi]').",
)
@click.option(
    "--fail-on-drift", is_flag=True, help="Exit with 1 when the dataset drifts (for CI/CD)."
)
@options.ENGINE
@options.OUTPUT
@options.VERBOSE
def drift(
    baseline,
    data,
    predictions,
    targets,
    run_id,
    experiment_id,
    experiment_name,
    method,
    threshold,
    drift_share,
    warning_ratio,
    pvalue_warning_ratio,
    multivariate,
    segment_by,
    min_segment_size,
    detectors,
    fail_on_drift,
    engine,
    output,
):
    """Compare a production file with a baseline and log the result to MLflow.

    \b
    Exit codes:
      0  compared (and, with --fail-on-drift, no dataset drift)
      1  dataset drift, with --fail-on-drift
      2  usage error
      3  could not decide: baseline not found, unreadable data, tracking server unreachable
    """
    from mlflow_observe.evaluation import evaluate_drift

    given = {
        "method": method,
        "threshold": threshold,
        "drift_share": drift_share,
        "warning_ratio": warning_ratio,
        "pvalue_warning_ratio": pvalue_warning_ratio,
    }
    config = {k: v for k, v in given.items() if v is not None}
    if multivariate:
        config["multivariate"] = True
    if segment_by:
        config["segment_by"] = list(segment_by)
    if min_segment_size is not None:
        config["min_segment_size"] = min_segment_size
    if detectors:
        config["detectors"] = list(detectors)
    result, run_id = run_evaluation(
        evaluate_drift,
        baseline,
        data,
        predictions,
        targets,
        run_id,
        experiment_id,
        experiment_name,
        config,
        engine=engine,
    )
    _print(result, run_id, output)
    dataset_drift = result.metrics.get("drift/dataset_drift", 0.0) >= 1.0
    sys.exit(EXIT_DRIFT if (fail_on_drift and dataset_drift) else EXIT_OK)


def run_evaluation(
    evaluate,
    baseline,
    data,
    predictions,
    targets,
    run_id,
    experiment_id,
    experiment_name,
    config,
    *,
    engine="pandas",
):
    """Read the file, run ``evaluate`` in the chosen run; exit 3 when it cannot decide.

    A Spark engine that is not installed or cannot start also exits 3, saying why.
    """
    import mlflow

    if run_id and (experiment_id or experiment_name):
        raise click.UsageError("Give --run-id, or --experiment-id/--experiment-name, not both.")
    if experiment_id and experiment_name:
        raise click.UsageError("Must specify at most one of --experiment-id or --experiment-name.")
    try:
        frame = read_table(data, engine)
        # MLflow prints run links to stdout; keep stdout for the result (--output json).
        with contextlib.redirect_stdout(sys.stderr):
            if experiment_name:
                mlflow.set_experiment(experiment_name)
            with mlflow.start_run(run_id=run_id, experiment_id=experiment_id) as run:
                result = evaluate(
                    frame, baseline, predictions=predictions, targets=targets, **config
                )
    except click.UsageError:
        raise
    except Exception as exc:  # report, then exit "could not decide"
        undecided(exc)
    return result, run.info.run_id


def _print(result, run_id: str, output: str) -> None:
    table = result.artifacts["drift_table"].content
    segments = (
        result.artifacts["drift_segments"].content if "drift_segments" in result.artifacts else None
    )
    if output == "json":
        payload = {"run_id": run_id, "metrics": result.metrics, "columns": table}
        if segments is not None:
            payload["segments"] = segments
        click.echo(json.dumps(payload, indent=2))
        return
    metrics = result.metrics
    click.echo(
        f"run {run_id}: {int(metrics['drift/n_drifted_columns'])} of "
        f"{int(metrics['drift/n_evaluated_columns'])} columns drifted "
        f"(share {metrics['drift/share_drifted_columns']:.2f}); dataset drift: "
        f"{'yes' if metrics['drift/dataset_drift'] else 'no'}"
    )
    width = max([len(str(r["column"])) for r in table] + [6])
    # Multivariate records name longer statistics (reconstruction_error).
    method_width = max([len(str(r["method"] or "")) for r in table] + [11])
    click.echo(
        f"{'column':<{width}}  {'method':<{method_width}} {'statistic':>10} {'p-value':>9} "
        f"{'adjusted':>9}  status"
    )
    for r in table:
        stat = "" if r["statistic"] is None else f"{r['statistic']:.4g}"
        pval = "" if r["pvalue"] is None else f"{r['pvalue']:.3g}"
        adjusted = "" if r.get("pvalue_adjusted") is None else f"{r['pvalue_adjusted']:.3g}"
        method = str(r["method"] or "")
        click.echo(
            f"{str(r['column']):<{width}}  {method:<{method_width}} {stat:>10} "
            f"{pval:>9} {adjusted:>9}  {r['status']}" + (f"  ({r['note']})" if r["note"] else "")
        )
    for s in (segments or [])[:10]:  # most drifted first
        click.echo(
            f"segment {s['column']}={s['value']} ({s['n_rows']} rows): "
            f"{s['n_drifted_columns']} of {s['n_evaluated_columns']} columns drifted, "
            f"{s['status']}"
        )
