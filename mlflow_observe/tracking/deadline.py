"""One deadline for a tracking server that refuses, hangs or never answers.

MLflow retries a request to an unreachable server up to 7 times with
exponential backoff, each attempt waiting up to 120 s for an answer: a job
pointed at a dead or silent server waits many minutes before it can say so.
Every ``mlflow-observe`` command instead bounds each call to the tracking
server by one deadline, ``MLFLOW_OBSERVE_SERVER_TIMEOUT`` seconds (default
60), by setting MLflow's own request settings for the command:

- from 30 s up, two retries (a restarting server is given a second chance),
  each attempt waiting ``(deadline - 4) // 3`` seconds, backoff 0 s then
  about 2 s;
- below 30 s, one attempt that waits the whole deadline.

A refused connection fails in a few seconds; a server that accepts and never
answers fails at the deadline. MLflow's ``MLFLOW_HTTP_REQUEST_TIMEOUT``,
``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` and
``MLFLOW_HTTP_REQUEST_BACKOFF_JITTER``, when set in the environment, are kept
as they are.
"""

from __future__ import annotations

import contextlib
import math
import os

ENV = "MLFLOW_OBSERVE_SERVER_TIMEOUT"
DEFAULT_SECONDS = 60.0
_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
_BACKOFF = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
_JITTER = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"


def server_timeout() -> float:
    """The deadline in seconds: ``MLFLOW_OBSERVE_SERVER_TIMEOUT``, default 60.

    >>> isinstance(server_timeout(), float)
    True
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 1):
        raise ValueError(f"{ENV} must be a number of seconds >= 1. Got {text!r} instead.")
    return seconds


def request_settings(seconds: float) -> dict:
    """MLflow's request settings that make one call fail within ``seconds``.

    >>> request_settings(60)
    {'MLFLOW_HTTP_REQUEST_TIMEOUT': '18', 'MLFLOW_HTTP_REQUEST_MAX_RETRIES': '2', 'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR': '1', 'MLFLOW_HTTP_REQUEST_BACKOFF_JITTER': '0.5'}
    >>> request_settings(8)["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    '0'
    """
    if seconds >= 30:
        # Three attempts of T s, backoff 0 s then 2 s, jitter <= 0.5 s each: 3 T + 3 <= deadline.
        timeout = int((seconds - 4) // 3)
        return {_TIMEOUT: str(timeout), _RETRIES: "2", _BACKOFF: "1", _JITTER: "0.5"}
    return {_TIMEOUT: str(max(1, int(seconds))), _RETRIES: "0", _BACKOFF: "0", _JITTER: "0"}


def bound_tracking_requests(seconds: float | None = None) -> float:
    """Apply the deadline to this process's MLflow requests; returns the deadline.

    MLflow settings already in the environment are kept.
    """
    seconds = server_timeout() if seconds is None else seconds
    for key, value in request_settings(seconds).items():
        os.environ.setdefault(key, value)
    return seconds


@contextlib.contextmanager
def last_calls(seconds: float = 5.0):
    """Best-effort calls after a failure (marking a run failed): one short attempt each.

    A server that stopped answering must not cost a second full deadline.
    """
    quick = {_TIMEOUT: str(max(1, int(seconds))), _RETRIES: "0"}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update(quick)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
