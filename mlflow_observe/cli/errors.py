"""How commands turn failures into exit codes: misuse is 2, "could not decide" is 3."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click

from mlflow_observe.cli.options import EXIT_UNDECIDED
from mlflow_observe.monitoring.rules import RuleSyntaxError
from mlflow_observe.monitoring.windows import WindowError

_logger = logging.getLogger(__name__)

# MLflow retries an unreachable server 7 times with exponential backoff (minutes);
# a scheduled job should say so sooner. Users who set these keep their values.
_BOUNDED_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_http_retries() -> None:
    """Make calls to an unreachable tracking server fail within about a minute."""
    for key, value in _BOUNDED_RETRIES.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def decided():
    """Run a command's work: bad expressions are usage errors, other failures exit 3.

    MLflow prints run links to stdout; they go to stderr so stdout stays the
    command's result (``--output json``).
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (RuleSyntaxError, WindowError) as exc:
        raise click.UsageError(str(exc)) from exc
    except (click.UsageError, click.exceptions.Exit, SystemExit):
        raise
    except Exception as exc:  # report, then exit "could not decide"
        _logger.debug("command failed", exc_info=True)
        message = getattr(exc, "message", None) or str(exc)
        click.echo(f"Error: {message}", err=True)
        if _looks_unreachable(exc):
            uri = os.environ.get("MLFLOW_TRACKING_URI", "the tracking server")
            click.echo(
                f"The tracking server {uri} did not answer; nothing was marked as "
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
