"""The ``mlflow-observe`` command line."""

import click

from mlflow_observe._version import __version__
from mlflow_observe.cli.degradation import degradation
from mlflow_observe.cli.drift import drift
from mlflow_observe.cli.gate import gate
from mlflow_observe.cli.history import history
from mlflow_observe.cli.logs import logs
from mlflow_observe.cli.monitor import monitor


@click.group("mlflow-observe")
@click.version_option(__version__, prog_name="mlflow-observe")
def cli():
    """Model observability for MLflow: compare production data with a training baseline."""


cli.add_command(drift)
cli.add_command(degradation)
cli.add_command(monitor)
cli.add_command(gate)
cli.add_command(history)
cli.add_command(logs)
