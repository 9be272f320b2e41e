"""Serving a registered model on loopback for the examples: `mlflow models serve` as a context,
and the requests sent to it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import requests


def serve_command(model_uri: str, port: int, *, workers: int = 1) -> list[str]:
    """``mlflow models serve`` of ``model_uri`` on 127.0.0.1:``port``, in this environment."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(workers),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(model_uri: str, tracking_uri: str, log_dir, **env):
    """Run ``mlflow models serve -m model_uri``, logging predictions to ``log_dir``; yield its URL.

    Leaving the block stops the server with SIGTERM, as a container runtime
    does, and waits for all its processes: every answered request is then in the
    log (the last ones in its spool, which the next read recovers).
    """
    port = free_port()
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_OBSERVE_LOG_DIR": str(log_dir),
        **env,
        # the server starts `uvicorn` from this environment's bin directory
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    server = subprocess.Popen(
        serve_command(model_uri, port, workers=2),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its workers
        server.wait(timeout=60)
        _wait_for_group(server.pid)


def send(url: str, frame, *, rows_per_request: int = 1) -> None:
    """POST the rows of ``frame`` to the server's ``/invocations``, ``rows_per_request`` at a
    time, in order; a request the server refuses raises."""
    for start in range(0, len(frame), rows_per_request):
        batch = frame.iloc[start : start + rows_per_request]
        payload = {"dataframe_split": batch.to_dict(orient="split")}
        response = requests.post(f"{url}/invocations", json=payload, timeout=30)
        response.raise_for_status()


def _wait_for_group(pgid: int, timeout: float = 60.0) -> None:
    """Until the server's workers (which outlive the command a moment) have exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    for _ in range(240):
        if server.poll() is not None:
            raise RuntimeError("mlflow models serve exited; run it by hand to see why")
        try:
            if requests.get(f"{url}/ping", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError("mlflow models serve did not start in 2 minutes")
