"""Command-line options shared by the commands, defined once (as MLflow's cli_args does)."""

import logging
import math
import os

import click
from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID, MLFLOW_EXPERIMENT_NAME

from mlflow_observe.core.drift.options import DriftOptions

# Exit codes of every command: CI/CD and schedulers branch on them.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNDECIDED = 0, 1, 2, 3


class FiniteFloat(click.ParamType):
    """A float that is a finite number: ``nan``, ``inf`` and ``1e999`` are usage errors."""

    name = "float"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


FINITE_FLOAT = FiniteFloat()


def drift_option(ctx, param, value):
    """Check a value of a :class:`DriftOptions` field with the field's own constraints: one
    out of range is a usage error (exit 2), refused before any server is asked."""
    if value is not None:
        try:
            DriftOptions(**{param.name: value})
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value


BASELINE = click.option(
    "--baseline",
    "-b",
    metavar="URI",
    required=True,
    help="The baseline: a run id, runs:/<run_id>, models:/<name>/<version>, "
    "models:/<name>@<alias>, or a profile JSON file.",
)
DATA = click.option(
    "--data",
    "-d",
    metavar="PATH",
    required=True,
    type=click.Path(exists=True, dir_okay=True),
    help="The production window: a CSV or Parquet file (or a directory of Parquet files).",
)
PREDICTIONS = click.option(
    "--predictions",
    metavar="COLUMN",
    default=None,
    help="The prediction column (default: the one the baseline recorded, if present).",
)
TARGETS = click.option(
    "--targets",
    metavar="COLUMN",
    default=None,
    help="The label column (default: the one the baseline recorded, if present).",
)
RUN_ID = click.option(
    "--run-id",
    metavar="ID",
    default=None,
    help="Log the evaluation to this existing run instead of a new one.",
)
EXPERIMENT_ID = click.option(
    "--experiment-id",
    envvar=MLFLOW_EXPERIMENT_ID.name,
    metavar="ID",
    default=None,
    help="The experiment of the new evaluation run.",
)
EXPERIMENT_NAME = click.option(
    "--experiment-name",
    envvar=MLFLOW_EXPERIMENT_NAME.name,
    metavar="NAME",
    default=None,
    help="The experiment of the new evaluation run, by name (created if missing).",
)
MODEL_URI = click.option(
    "--model-uri",
    "-m",
    metavar="URI",
    required=True,
    help="A registered model version: models:/<name>/<version> or models:/<name>@<alias>.",
)
MONITORING_EXPERIMENT = click.option(
    "--experiment-name",
    metavar="NAME",
    default=None,
    help="The monitoring experiment (default: '<model name> monitoring').",
)
ENGINE = click.option(
    "--engine",
    type=click.Choice(["pandas", "spark"]),
    default="pandas",
    show_default=True,
    help="Where the rows are counted: pandas reads --data into this process; spark reads it "
    "with the active or configured Spark session (pip install 'mlflow-observe[spark]').",
)
LOG_ENGINE = click.option(
    "--engine",
    type=click.Choice(["pandas", "spark"]),
    default="pandas",
    show_default=True,
    help="Where the rows are counted: pandas reads each day of --logs into this process; "
    "spark reads the log and counts each window with the active or configured Spark "
    "session (pip install 'mlflow-observe[spark]').",
)
OUTPUT = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print the result.",
)


# MLflow's own output that a command keeps quiet unless --verbose: its run and
# experiment links, and its artifact download bars.
QUIET_MLFLOW = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def _verbose(ctx, param, value):
    if value:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "false"
        os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        logging.getLogger("mlflow").setLevel(logging.INFO)
    return value


VERBOSE = click.option(
    "--verbose",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_verbose,
    help="Also show MLflow's own output: its run links and artifact download bars.",
)


def evaluation_inputs(command):
    """The options every evaluation command takes: baseline, data, columns, where to log."""
    for option in reversed(
        (BASELINE, DATA, PREDICTIONS, TARGETS, RUN_ID, EXPERIMENT_ID, EXPERIMENT_NAME)
    ):
        command = option(command)
    return command
