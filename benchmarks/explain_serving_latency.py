"""What sampled attributions cost a served request: ``mlflow models serve`` with the rate off,
at 0.1 and at 1.0, timed over HTTP in the same run.

    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py              # ~4 minutes
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --rounds 500 # quicker

A scikit-learn MLPRegressor (one hidden layer of 64) on 20 numeric
columns is logged with ``mlflow_observe.log_model`` (with its baseline) to a
temporary SQLite store, and served three times, side by side, by ``mlflow
models serve`` (one worker each, each logging to its own directory):
``MLFLOW_OBSERVE_EXPLAIN_RATE`` unset, ``0.1`` and ``1.0``. It is not a tree
model SHAP's TreeExplainer takes, so the attribution process (one per server, at niceness
19, with the model loaded a second time) uses the model-agnostic sampled
method, the expensive one: 8 x 32 x 21 = 5,376 model predictions per
attributed row. (Not a histogram gradient boosting model: its OpenMP threads,
in training and in every prediction, spin against each other on a loaded
2-core machine and would measure that, not the flavor.)

One client sends one-row requests, one at a time, in rounds: each round sends
one request to each server, in a shuffled order, so that the three servers are
timed under the same conditions (the machine's load moves during a run). The
latency is the client's (``requests``, a kept-alive connection), from the
request sent to the answer read. After warm-up, ``--rounds`` rounds are timed;
the table gives p50 and p99 per server and their ratios to the server with the
rate off. The attribution rows stored and the servers' CPU seconds show that the
worker did its work while the requests were timed.

The three servers share the machine, so the attributions' CPU is felt by all
three alike: the ratios measure what the flavor adds on the request path of its
own process (the sampling draw, the queue, the hand-over of sampled calls to the
attribution process), not what a busy core costs a neighbour. The load average at the
start and the end is printed: re-run on a quiet machine for figures to quote.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

N_COLUMNS = 20
SETTINGS = {"off": None, "0.1": "0.1", "1.0": "1.0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_model(store: str) -> str:
    import mlflow
    import pandas as pd
    from sklearn.neural_network import MLPRegressor

    import mlflow_observe as mo

    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(f"sqlite:///{store}/bench.db")
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment(
            "explain-serving-latency", artifact_location=f"{store}/artifacts"
        )
    )
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(5000, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    y = X["f00"] * X["f01"] + X["f02"] + rng.normal(scale=0.1, size=len(X))
    model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(X, y)
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=X.assign(y=y),
            targets="y",
            input_example=X.head(3),
            inner_options={
                "skops_trusted_types": [
                    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer"
                ]
            },
        )
    return info.model_uri


def _start(model_uri: str, store: str, name: str, rate) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}/bench.db",
        "MLFLOW_OBSERVE_LOG_DIR": f"{store}/logs-{name}",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    env.pop("MLFLOW_OBSERVE_EXPLAIN_RATE", None)
    if rate is not None:
        env["MLFLOW_OBSERVE_EXPLAIN_RATE"] = rate
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
        + ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process, url: str, timeout: float = 300.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            if requests.get(f"{url}/ping", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server at {url} did not start within {timeout} s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the process group's processes (the CLI, uvicorn, its worker)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # the process group (start_new_session: pgid = pid)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _attribution_rss_mb(pid: int) -> float:
    """Resident memory of the process group's attribution processes (the model loaded again)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if b"import attribution_main" not in handle.read():
                    continue
            with open(f"/proc/{entry}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[2]) != pid:
                    continue
            with open(f"/proc/{entry}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="timed rounds (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed rounds first")
    args = parser.parse_args()

    import pandas as pd
    import requests

    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    store = tempfile.mkdtemp(prefix="explain-serving-")
    model_uri = _log_model(store)
    servers = {name: _start(model_uri, store, name, rate) for name, rate in SETTINGS.items()}
    try:
        for process, url in servers.values():
            _wait_ready(process, url)
        rng = np.random.default_rng(1)
        rows = pd.DataFrame(
            rng.normal(size=(256, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
        )
        bodies = [{"dataframe_split": rows.iloc[[i]].to_dict(orient="split")} for i in range(256)]
        sessions = {name: requests.Session() for name in servers}
        latencies: dict = {name: [] for name in servers}
        cpu_start = {}
        order = list(servers)
        shuffle = random.Random(2).shuffle
        for round_ in range(args.warmup + args.rounds):
            if round_ == args.warmup:
                cpu_start = {n: _cpu_seconds(p.pid) for n, (p, _) in servers.items()}
                started = time.monotonic()
            shuffle(order)
            body = bodies[round_ % len(bodies)]
            for name in order:
                url = servers[name][1]
                begin = time.perf_counter()
                response = sessions[name].post(f"{url}/invocations", json=body, timeout=30)
                elapsed = time.perf_counter() - begin
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text}")
                if round_ >= args.warmup:
                    latencies[name].append(elapsed * 1000.0)
        seconds = time.monotonic() - started
        cpu = {n: _cpu_seconds(p.pid) - cpu_start[n] for n, (p, _) in servers.items()}
        rss = {n: _attribution_rss_mb(p.pid) for n, (p, _) in servers.items()}
        time.sleep(3.0)  # the last attributions written (every 2 s)
    finally:
        for process, _ in servers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in servers.values():
            process.wait(timeout=120)

    from mlflow_observe.logs.reader import read_attributions, read_logs

    n_requests = args.warmup + args.rounds
    print(
        f"\n{args.rounds} timed rounds (+{args.warmup} warm-up) of one-row requests to each "
        f"server, {seconds:.0f} s; MLPRegressor, {N_COLUMNS} columns, sampled "
        "Shapley (5,376 predictions a row)\n"
    )
    header = (
        f"{'explain rate':>12} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10} "
        f"{'rows logged':>12} {'attributed':>11} {'min rate':>9} {'server CPU s':>13} "
        f"{'explainer MB':>13}"
    )
    print(header)
    print("-" * len(header))
    base = latencies["off"]
    base_p50, base_p99 = np.percentile(base, 50), np.percentile(base, 99)
    for name in servers:
        values = latencies[name]
        p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
        logged = len(read_logs(f"{store}/logs-{name}"))
        stored = read_attributions(f"{store}/logs-{name}")
        attributed = len(stored)
        low = f"{stored['explain_rate'].min():.3g}" if attributed else "-"
        print(
            f"{name:>12} {p50:>8.2f} {p99:>8.2f} {p50 / base_p50:>10.3f} {p99 / base_p99:>10.3f} "
            f"{logged:>12} {attributed:>11} {low:>9} {cpu[name]:>13.1f} {rss[name]:>13.0f}"
        )
    print(f"\n(each server answered {n_requests} requests; 'min rate': the lowest explain_rate")
    print(" recorded, below the setting when the worker fell behind and sampled down;")
    print(" 'server CPU s' counts the attribution process too; 'explainer MB': its resident")
    print(" memory, the model loaded a second time)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
