"""Data makers and helpers shared by the test modules (no test module imports another).

Fixtures live in conftest.py; what a test calls directly lives here.
"""

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import mlflow
import numpy as np
import pandas as pd
import requests
from sklearn.linear_model import LogisticRegression

# The server command the serving examples use (examples/_serving.py).
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
)
from _serving import serve_command  # noqa: E402

import mlflow_observe as mo
from mlflow_observe.logs.writer import PredictionLogWriter

# -- drift: features with known distributions ------------------------------------------


def make_frame(n, *, seed=0, shift=0.0, scale=1.0, category_p=(0.6, 0.3, 0.1)):
    """Features with known distributions: two normals, a categorical and a boolean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num_a": rng.normal(shift, scale, n),
            "num_b": rng.normal(10.0, 2.0, n),
            "cat": rng.choice(["red", "green", "blue"], n, p=list(category_p)),
            "flag": rng.random(n) < 0.3,
        }
    )


# -- local processes ------------------------------------------------------------------


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1: answers each POST with the next status of ``statuses``
    (the last one repeats) and keeps every JSON body (``posts``) and its headers."""

    def __init__(self, statuses=(204,), location="/elsewhere"):
        self.statuses, self.posts, self.gets, self.headers = list(statuses), [], [], []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append(json.loads(body))
                outer.headers.append(dict(self.headers))
                status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                outer.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)  # a free port, chosen by the kernel
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER_START_SECONDS = 300


@contextlib.contextmanager
def running_mlflow_server(root):
    """A real `mlflow server` process on loopback, with a SQLite store and artifacts in root."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # A loaded 2-core machine can take minutes to start it (imports, database migrations).
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {process.returncode}")
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start in {SERVER_START_SECONDS} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- performance: models whose probabilities are known ----------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def binary_frame(n, seed, shift=0.0, flip_region=False):
    """A calibrated, correctly specified model: P(y=1 | x) = sigmoid(2 x1 - x2)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    p = sigmoid(2 * x1 - x2)
    y = (rng.random(n) < p).astype(int)
    if flip_region:  # concept shift: the labels of one region flip
        region = x1 > 0.5
        y[region] = 1 - y[region]
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "p_1": p, "prediction": (p > 0.5).astype(int), "label": y}
    )


def multiclass_frame(n, seed, shift=0.0):
    """Calibrated softmax over three classes of two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, (n, 2))
    logits = np.column_stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]]) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(["a", "b", "c"])[(rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1)]
    return pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "p_a": p[:, 0],
            "p_b": p[:, 1],
            "p_c": p[:, 2],
            "prediction": np.array(["a", "b", "c"])[p.argmax(1)],
            "label": labels,
        }
    )


def regression_frame(n, seed, noise_scale=1.0):
    """y = 3 x1 + noise whose size grows with |x2|: the error depends on the inputs."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, noise_scale, n)
    y = 3 * x1 + rng.normal(0, 0.2 + np.abs(x2))
    return pd.DataFrame({"x1": x1, "x2": x2, "prediction": 3 * x1, "target": y})


# -- monitoring: a churn model and its traffic ------------------------------------------

DAY = pd.Timestamp("2026-11-26", tz="UTC")

HOURS = 6

DRIFT_FROM_HOUR = 3

ROWS_PER_HOUR = 240


def customers(n, seed, shift=0.0):
    """Customers; ``shift`` moves tenure (months) and spend (a third as much) up."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.gamma(4.0, 6.0, n) + shift,
            "spend": rng.normal(60.0, 15.0, n) + shift / 3,
            "calls": rng.poisson(1.5, n).astype(float),
        }
    )


def churned(frame):
    return ((1.5 - 0.08 * frame["tenure"] + 0.4 * frame["calls"]) > 0).astype(int)


def log_version(train, registered="churn", **log_options):
    """Train on ``train`` and log the wrapped model, its baseline with performance.

    ``log_options`` go to ``mo.log_model`` (``log_location``...).
    """
    labels = churned(train)
    model = LogisticRegression(max_iter=1000).fit(train, labels)
    reference = train.assign(
        churned=labels,
        prediction=model.predict(train),
        probability_1=model.predict_proba(train)[:, 1],
    )
    profile = mo.build_profile(
        reference, targets="churned", predictions="prediction", probabilities=["probability_1"]
    )
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=profile,
            registered_model_name=registered,
            input_example=train.head(3),
            **log_options,
        )
    return model, info.registered_model_version


def write_traffic(
    log_dir,
    model,
    version,
    *,
    hours=HOURS,
    rows=ROWS_PER_HOUR,
    registered="churn",
    drift_from=DRIFT_FROM_HOUR,
    day=DAY,
):
    """``hours`` hours of predictions from ``day``, drifting from hour ``drift_from``
    (DRIFT_FROM_HOUR; ``None``: never), 10 calls an hour.

    ``rows`` is the rows of every hour, or a list of each hour's rows (its length is the hours).
    """
    per_hour = [rows] * hours if isinstance(rows, int) else [int(r) for r in rows]
    writer = PredictionLogWriter(
        str(log_dir),
        model_name=registered,
        model_version=str(version),
        max_event_age_days=None,  # a fixed day, however long ago
        probabilities=lambda x: pd.DataFrame(model.predict_proba(x), columns=model.classes_),
    )
    for hour, rows in enumerate(per_hour):
        drifted = drift_from is not None and hour >= drift_from
        batch = customers(rows, seed=100 + hour, shift=20.0 if drifted else 0.0)
        for call in range(10):
            part = batch.iloc[call * rows // 10 : (call + 1) * rows // 10]
            if part.empty:
                continue
            writer.submit(
                part,
                model.predict(part),
                latency_seconds=0.001,
                event_time=(day + pd.Timedelta(hours=hour, minutes=6 * call)).isoformat(),
            )
    writer.close()


S3_BUCKET = "observe-logs"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def running_s3_server():
    """A real S3 API (moto's server mode) on loopback; yields ``host:port``."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                requests.get(f"http://127.0.0.1:{port}", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.25)
        else:
            raise RuntimeError("moto server did not start")
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


def s3_location(endpoint: str, prefix: str) -> str:
    """A fresh log URI under ``S3_BUCKET`` (created if missing); needs ``S3_CREDENTIALS`` set."""
    from pyarrow import fs as pafs

    s3 = pafs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
        access_key=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_dir(S3_BUCKET)
    return f"s3://{S3_BUCKET}/{prefix}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


# -- serving: a real `mlflow models serve` process ---------------------------------------


def process_state(pid) -> str | None:
    """The process's state letter (``Z``: exited, not reaped; ``T``: stopped), or None when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def alive(pid) -> bool:
    """Whether the process runs (an exited one not yet reaped does not)."""
    return process_state(pid) not in (None, "Z")


class Server:
    """A real `mlflow models serve` process on loopback (its own process group), logging to
    ``log_dir``; ``env`` adds environment variables."""

    def __init__(self, model_uri, tracking_uri, log_dir, workers=2, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_OBSERVE_LOG_DIR": str(log_dir),
            **env,
            # the server runs `uvicorn` from the environment's bin directory
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        }
        self.process = subprocess.Popen(
            serve_command(model_uri, self.port, workers=workers),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for _ in range(240):
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/ping", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow models serve did not start:\n" + self.output())

    def predict(self, frame):
        response = requests.post(
            f"{self.url}/invocations",
            timeout=30,
            json={"dataframe_split": frame.to_dict(orient="split")},
        )
        return response

    def stop(self, sig=signal.SIGTERM):
        outside = self.processes()
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)
        self.wait_for_group(also=outside)

    def processes(self) -> dict:
        """``{pid: (parent pid, command line)}`` of the server's processes: its process group
        and their descendants (an attribution process starts a session of its own)."""
        table = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read()
            except OSError:
                continue
            if fields[0] != "Z":
                table[int(entry)] = (int(fields[1]), int(fields[2]), command)
        members = {pid for pid, (_, group, _) in table.items() if group == self.process.pid}
        while True:
            children = {pid for pid, (parent, _, _) in table.items() if parent in members}
            if children <= members:
                break
            members |= children
        return {pid: (table[pid][0], table[pid][2]) for pid in members}

    def wait_for_group(self, timeout=60, also=()):
        """Until every process of the server (the CLI, uvicorn, its workers) has exited, and
        the processes ``also`` (found by :meth:`processes` before the stop: a process that
        left the group)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.poll()  # reaped, or it would count as alive
            if not any(alive(pid) for pid in also):
                try:
                    os.killpg(self.process.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)
        remaining = subprocess.run(
            ["ps", "-o", "pid,stat,etime,args", "-g", str(self.process.pid)],
            capture_output=True,
            text=True,
        ).stdout
        raise AssertionError(f"the server's processes did not exit:\n{remaining}")

    def output(self):
        return self.process.stdout.read() if self.process.stdout else ""
