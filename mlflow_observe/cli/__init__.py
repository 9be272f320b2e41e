"""The ``mlflow-observe`` command line."""

import click

from mlflow_observe._version import __version__
from mlflow_observe.cli.degradation import degradation
from mlflow_observe.cli.drift import drift


@click.group("mlflow-observe")
@click.version_option(__version__, prog_name="mlflow-observe")
def cli():
    """Model observability for MLflow: compare production data with a training baseline."""


cli.add_command(drift)
cli.add_command(degradation)
