"""The ``mlflow-observe`` command line."""

import os

import click

from mlflow_observe._version import __version__
from mlflow_observe.cli import options
from mlflow_observe.cli.degradation import degradation
from mlflow_observe.cli.drift import drift
from mlflow_observe.cli.errors import bound_http_retries
from mlflow_observe.cli.explain import explain
from mlflow_observe.cli.gate import gate
from mlflow_observe.cli.history import history
from mlflow_observe.cli.logs import logs
from mlflow_observe.cli.monitor import monitor
from mlflow_observe.cli.status import status
from mlflow_observe.cli.trend import trend


@click.group("mlflow-observe")
@click.version_option(__version__, prog_name="mlflow-observe")
def cli():
    """Model observability for MLflow: compare production data with a training baseline.

    Every command gives a tracking server that refuses, hangs or never answers
    one deadline, MLFLOW_OBSERVE_SERVER_TIMEOUT seconds (default 60), then
    exits 3 saying so.
    """
    bound_http_retries()
    for key, value in options.QUIET_MLFLOW.items():  # --verbose turns them back on
        os.environ.setdefault(key, value)


cli.add_command(drift)
cli.add_command(degradation)
cli.add_command(monitor)
cli.add_command(gate)
cli.add_command(history)
cli.add_command(trend)
cli.add_command(status)
cli.add_command(logs)
cli.add_command(explain)
