"""``mlflow-observe gate``: allow or refuse a model version's promotion, for CI/CD."""

from __future__ import annotations

import json
import sys

import click

from mlflow_observe.cli import options
from mlflow_observe.cli.errors import decided
from mlflow_observe.monitoring.rules import (
    RuleSyntaxError,
    Threshold,
    combine_thresholds,
)


@click.command("gate")
@options.MODEL_URI
@click.option(
    "--data",
    "-d",
    metavar="PATH",
    default=None,
    type=click.Path(exists=True, dir_okay=True),
    help="Evaluation data (CSV or Parquet) with the features, and labels for "
    "realised performance. Default: the version's latest recorded evaluation.",
)
@click.option(
    "--against",
    metavar="URI",
    default=None,
    help="The champion, models:/<name>@<alias> (or just the alias), evaluated the "
    "same way for thresholds relative to it.",
)
@click.option(
    "--threshold",
    "thresholds",
    metavar="EXPR",
    multiple=True,
    required=True,
    help="METRIC>=VALUE or METRIC<=VALUE (absolute), or METRIC>=champion+0.01, "
    "METRIC>=champion+2%, METRIC<=champion-0.05 (MLflow's MetricThreshold "
    "minimum absolute/relative change), or non-inferiority: METRIC>=champion-0.01, "
    "METRIC<=champion+0.02, METRIC>=champion-1%, METRIC>=champion (checked on the "
    "delta). METRIC must be one an evaluation can have. Repeatable.",
)
@click.option(
    "--promote",
    metavar="ALIAS",
    default=None,
    help="Point this alias at the version when the gate passes (never on a fail).",
)
@click.option(
    "--stage",
    type=click.Choice(["Staging", "Production", "Archived"]),
    default=None,
    help="Legacy registry stage to move the version to on a pass (stages are "
    "deprecated in MLflow; prefer --promote).",
)
@options.TARGETS
@options.MONITORING_EXPERIMENT
@options.OUTPUT
@options.VERBOSE
def gate(model_uri, data, against, thresholds, promote, stage, targets, experiment_name, output):
    """Evaluate a model version against thresholds; tag it, and promote it only on a pass.

    The decision is recorded before it acts: the verdict, the reasons and the
    gate's run id are set as version tags (observe.gate.*) and the whole
    decision is kept as gate_report.json on the gate's run; only then does the
    alias (or stage) move, and observe.gate.promotion says done or failed.

    \b
    Exit codes:
      0  the gate passed (and the alias or stage moved, if asked)
      1  the gate failed (nothing moved)
      2  usage error (e.g. a malformed or non-finite --threshold)
      3  could not decide or could not act: unknown model or alias, no baseline,
         no evaluation, the decision could not be recorded (nothing moved), the
         gate passed but the alias could not be moved (the tags say so),
         tracking server unreachable
    """
    from mlflow_observe.monitoring.gate import GatePromotionError
    from mlflow_observe.monitoring.gate import gate as run_gate

    try:
        parsed = [Threshold.parse(text) for text in thresholds]
        combine_thresholds(parsed)
    except RuleSyntaxError as exc:
        raise click.UsageError(str(exc)) from exc
    if any(t.compares_with_champion for t in parsed) and not against:
        raise click.UsageError(
            "A --threshold compares with the champion: give --against models:/<name>@<alias>."
        )
    failure = None
    with decided():
        try:
            result = run_gate(
                model_uri,
                thresholds=parsed,
                data=data,
                against=against,
                promote=promote,
                stage=stage,
                targets=targets,
                experiment_name=experiment_name,
            )
        except GatePromotionError as exc:  # decided and recorded; the move failed
            result, failure = exc.result, exc
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        against_text = f" against {result.champion.label}" if result.champion else ""
        click.echo(
            f"gate {result.status.upper()}: {result.candidate.label}{against_text} "
            f"(run {result.run_id}, {result.evaluated_on})"
        )
        for check in result.checks:
            value = "missing" if check.candidate_value is None else f"{check.candidate_value:.4g}"
            champion = (
                "" if check.champion_value is None else f" (champion {check.champion_value:.4g})"
            )
            click.echo(
                f"  {'pass' if check.passed else 'FAIL'}  {check.threshold}: "
                f"{value}{champion}" + (f"\n        {check.reason}" if check.reason else "")
            )
        for action in result.actions:
            click.echo(f"  {action}")
    if failure is not None:
        click.echo(f"Error: {failure.message}", err=True)
        sys.exit(options.EXIT_UNDECIDED)
    sys.exit(options.EXIT_OK if result.passed else options.EXIT_FAILED)
