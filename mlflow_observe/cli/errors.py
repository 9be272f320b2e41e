"""How commands turn failures into exit codes: misuse is 2, "could not decide" is 3."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click

from mlflow_observe.cli.options import EXIT_UNDECIDED
from mlflow_observe.monitoring.rules import RuleSyntaxError
from mlflow_observe.monitoring.webhook import WebhookURLError
from mlflow_observe.monitoring.windows import WindowError
from mlflow_observe.tracking import deadline

_logger = logging.getLogger(__name__)


def bound_http_retries() -> None:
    """Make every call to the tracking server fail within one deadline (see
    :mod:`mlflow_observe.tracking.deadline`); a bad deadline value is a usage error."""
    try:
        deadline.bound_tracking_requests()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@contextlib.contextmanager
def decided():
    """Run a command's work: bad expressions are usage errors, other failures exit 3.

    MLflow prints run links to stdout; they go to stderr so stdout stays the
    command's result (``--output json``).
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (RuleSyntaxError, WindowError, WebhookURLError) as exc:
        raise click.UsageError(str(exc)) from exc
    except (click.UsageError, click.exceptions.Exit, SystemExit):
        raise
    except Exception as exc:  # report, then exit "could not decide"
        undecided(exc)


def undecided(exc: BaseException) -> None:
    """Report a failure on stderr (naming the tracking server when it did not answer), exit 3."""
    _logger.debug("command failed", exc_info=True)
    message = getattr(exc, "message", None) or str(exc)
    click.echo(f"Error: {message}", err=True)
    if _looks_unreachable(exc):
        uri = os.environ.get("MLFLOW_TRACKING_URI", "the tracking server")
        click.echo(
            f"The tracking server {uri} did not answer within the deadline "
            f"({deadline.ENV}={deadline.server_timeout():g} s); nothing was marked as "
            "evaluated. Check MLFLOW_TRACKING_URI and that the server is up, then "
            "run the command again.",
            err=True,
        )
    sys.exit(EXIT_UNDECIDED)


def _looks_unreachable(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(
        s in text
        for s in ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out")
    )
