"""Deliver an alert as a JSON POST: bounded time, bounded attempts, never an exception."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from mlflow_observe._version import __version__


@dataclass(frozen=True)
class Delivery:
    """How a webhook call went."""

    url: str
    delivered: bool
    attempts: int
    status: int | None = None
    error: str = ""

    def __str__(self) -> str:
        if self.delivered:
            return f"delivered (HTTP {self.status})"
        return f"failed after {self.attempts} attempt(s): {self.error}"


def post_json(
    url: str, payload: dict, *, timeout: float = 5.0, attempts: int = 2, backoff: float = 0.5
) -> Delivery:
    """POST ``payload`` to ``url`` as JSON.

    Each attempt waits at most ``timeout`` seconds; a 5xx answer or a network
    error is tried again up to ``attempts`` times in all, a 4xx answer is not
    (the payload itself was refused). Failures are returned, never raised: an
    alert that cannot be delivered must not stop the monitor.

    >>> outcome = post_json(
    ...     "http://127.0.0.1:9/hook", {"level": "critical"}, timeout=0.5, attempts=1
    ... )
    >>> outcome.delivered
    False
    """
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"mlflow-observe/{__version__}"},
    )
    error, status = "", None
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Delivery(url, True, attempt, status=response.status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            error = "timed out" if "timed out" in str(reason) else f"{type(exc).__name__}: {reason}"
        if attempt < attempts:
            time.sleep(backoff * attempt)
    return Delivery(url, False, attempt, status=status, error=error)
