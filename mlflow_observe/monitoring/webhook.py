"""Deliver an alert as a JSON POST: one total deadline, bounded attempts, never an exception.

Only ``http`` and ``https`` URLs are accepted (checked before anything runs:
:func:`check_webhook_url`). A delivery succeeds on a 2xx answer only: a
redirect (3xx) is not followed (it would turn the POST into a GET without the
payload) and is reported as a failed delivery naming where it pointed; a 4xx
is not tried again; a 5xx, a network error or an attempt that ran out of time
is, within the total deadline. The deadline covers the whole delivery (every
attempt, the backoff between them, the connection and every byte of the
answer), so a receiver that trickles its answer a byte at a time cannot hold
the monitor past it.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

from mlflow_observe._version import __version__

SCHEMES = ("http", "https")


class WebhookURLError(ValueError):
    """A webhook URL that cannot be delivered to (not http or https, no host)."""


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


def check_webhook_url(url: str) -> str:
    """Return ``url`` if it is an ``http(s)://host...`` URL, else raise :class:`WebhookURLError`.

    >>> check_webhook_url("https://hooks.example.com/T000/B000")
    'https://hooks.example.com/T000/B000'
    >>> check_webhook_url("file:///etc/passwd")
    Traceback (most recent call last):
    ...
    mlflow_observe.monitoring.webhook.WebhookURLError: The webhook URL 'file:///etc/passwd' must be an http:// or https:// URL with a host; got the scheme 'file' and no host.
    """
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise WebhookURLError(
            f"The webhook URL {url!r} must be an http:// or https:// URL with a host; got the "
            f"scheme {parts.scheme!r}" + ("" if parts.hostname else " and no host") + "."
        )
    return str(url)


def check_webhook_timeout(timeout: float) -> float:
    """The total deadline of a delivery, in seconds: finite and > 0.

    >>> check_webhook_timeout(10)
    10.0
    """
    value = float(timeout)
    if not (math.isfinite(value) and value > 0):
        raise WebhookURLError(
            f"The webhook timeout must be a finite number of seconds > 0. Got {timeout!r} instead."
        )
    return value


def post_json(
    url: str, payload: dict, *, timeout: float = 10.0, attempts: int = 2, backoff: float = 0.5
) -> Delivery:
    """POST ``payload`` to ``url`` as JSON, within ``timeout`` seconds in all.

    Each attempt gets an equal share of the time left; a 5xx answer or a
    network error is tried again up to ``attempts`` times in all, a 4xx answer
    is not (the payload itself was refused), a 3xx is a failure that is not
    followed. Failures are returned, never raised: an alert that cannot be
    delivered must not stop the monitor.

    >>> outcome = post_json(
    ...     "http://127.0.0.1:9/hook", {"level": "critical"}, timeout=0.5, attempts=1
    ... )
    >>> outcome.delivered
    False
    >>> str(post_json("data:,hello", {}))
    "failed after 0 attempt(s): The webhook URL 'data:,hello' must be an http:// or https:// URL with a host; got the scheme 'data' and no host."
    """
    try:
        check_webhook_url(url)
        deadline = time.monotonic() + check_webhook_timeout(timeout)
    except WebhookURLError as exc:
        return Delivery(url, False, 0, error=str(exc))
    body = json.dumps(payload, default=str).encode()
    error, status, attempt = "", None, 0
    while attempt < attempts:
        attempt += 1
        left = deadline - time.monotonic()
        if left <= 0:
            attempt -= 1
            break
        share = left / (attempts - attempt + 1)
        status, error, retry = _attempt(url, body, share)
        if status is not None and 200 <= status < 300:
            return Delivery(url, True, attempt, status=status)
        if not retry:
            break
        pause = min(backoff * attempt, deadline - time.monotonic())
        if attempt < attempts and pause > 0:
            time.sleep(pause)
    return Delivery(url, False, attempt, status=status, error=error)


def _attempt(url: str, body: bytes, seconds: float) -> tuple:
    """One POST that takes at most ``seconds``: ``(status, error, worth retrying)``."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme.lower() == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=seconds, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=seconds)
    outcome: dict = {}

    def send():
        try:
            connection.request(
                "POST",
                target,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"mlflow-observe/{__version__}",
                },
            )
            response = connection.getresponse()
            response.read(65536)  # a bounded look at the answer
            outcome["response"] = response
        except Exception as exc:  # reported by the caller
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="mlflow-observe-webhook", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():  # out of time: cut the connection so the worker ends too
        _close(connection)
        return None, f"timed out (no complete answer within {seconds:.3g} s)", True
    _close(connection)
    if "error" in outcome:
        exc = outcome["error"]
        text = "timed out" if isinstance(exc, (socket.timeout, TimeoutError)) else None
        return None, text or f"{type(exc).__name__}: {exc}", True
    response = outcome["response"]
    status = response.status
    if 300 <= status < 400:
        location = response.getheader("Location") or "no Location"
        return status, f"HTTP {status} redirect to {location}, not followed", False
    if status >= 300:
        return status, f"HTTP {status} {response.reason}", status >= 500
    return status, "", False


def _close(connection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    connection.close()
