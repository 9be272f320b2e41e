"""What sampled attributions cost a served request: ``mlflow models serve`` with the rate off
(twice: the reference and an A/A control), at 0.1 and at 1.0, timed over HTTP in the same run.

    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py              # ~5 minutes
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --rounds 500 # quicker
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --model linear
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --runs 5 --start-order 10
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --runs 5 --stub-explainers
    nice -n 10 .venv/bin/python benchmarks/explain_serving_latency.py --runs 8 --balanced

A scikit-learn model on 20 numeric columns is logged with
``mlflow_observe.log_model`` (with its baseline) to a temporary SQLite store,
and served four times, side by side, by ``mlflow models serve`` (one worker
each, each logging to its own directory): ``MLFLOW_OBSERVE_EXPLAIN_RATE`` unset
(the reference), unset again (the A/A control), ``0.1`` and ``1.0``.

``--model`` picks the model, and so which cost the rate servers pay:

* ``mlp`` (the default): an MLPRegressor (one hidden layer of 64). It is not a
  tree model SHAP's TreeExplainer takes, so the attribution process (one per
  server, under ``SCHED_IDLE``, with the model loaded a second time) uses the
  model-agnostic sampled method, the expensive one: 8 x 32 x 21 = 5,376 model
  predictions per attributed row. What the p99 ratio shows is the hand-over on
  the server's interpreter plus the child's CPU on the shared cores.
* ``linear``: a LinearRegression, the smallest model the sampled method handles
  (the serving explainer has no closed-form path): the same 5,376 predictions a
  row, each a dot product, so the child's CPU is only the building of the hybrid
  rows (about half the MLP's). What is left of the p99 ratio is mostly the
  hand-over on the server's interpreter; the difference from the ``mlp`` run
  is the child's share.

(Not a histogram gradient boosting model: its OpenMP threads, in training and
in every prediction, spin against each other on a loaded 2-core machine and
would measure that, not the flavor.)

One client sends one-row requests, one at a time, in rounds: each round sends
one request to each server, in a shuffled order, so that the four servers are
timed under the same conditions (the machine's load moves during a run). The
latency is the client's (``requests``, a kept-alive connection), from the
request sent to the answer read. After warm-up, ``--rounds`` rounds are timed;
the table gives p50 and p99 per server and their ratios to the reference
server, each ratio with a bootstrap 95% interval: the rounds are resampled
with replacement (``--resamples``, 2,000 by default; one draw of rounds for all
servers, as they were timed together) and the 2.5% and 97.5% percentiles of
the ratio over the resamples are its interval. The attribution rows stored and
the servers' CPU seconds show that the worker did its work while the requests
were timed.

The A/A control is a server identical to the reference: its ratios are what
two servers without any difference show in this run (the spread of the
machine, of the port, of the order). The rule: **a rate adds no measurable
latency when the 95% interval of its p99 ratio overlaps the A/A control's**
(and likewise for the p50); the verdict is printed under the table.

**Several runs** (``--runs``): a server's start position (its port, process id,
start time and memory layout) moves its latency by a few percent for the whole
run, as much as x1.07 between the two rate-off servers in one run on a quiet
machine, and a single run cannot tell that offset from the rate's cost. Each
run starts four new servers in a new shuffled order (``--start-order`` seeds
it), so that the offset falls on a different role each time; after the runs'
tables a summary gives each server's geometric-mean ratio with a 95%
t-interval across the runs, and compares each rate server with the two
rate-off servers together (per run, its log ratio minus the mean of theirs): the
rate adds no measurable latency when that interval holds 1.

A position's own offset (its port, its start time) still falls more on one role
than another in a few shuffled runs: over twenty runs the third of four
positions was about 0.5% slower at the p50 than the others, and the second
about 0.4% faster. ``--balanced`` starts the servers in Latin squares instead
(``--runs`` a multiple of 4): every server starts once in each position per
four runs, so those offsets cancel in the comparison. With three runs or more,
a last table fits the start positions (:func:`position_adjusted`): each
server's log ratio on its run, its role and its position.

``--pause-explainers`` stops the attribution processes (SIGSTOP) for the timed
rounds: they hold their memory and use no CPU, so what is left is the cost on
the server's own request path (but the hand-overs stop too once 128 rows wait
for an acknowledgement). ``--stub-explainers`` keeps the whole hand-over: the
attribution processes acknowledge and write every sampled row, with zeros for
attributions computed at once (a ``sitecustomize`` module on the rate servers'
path replaces the explainer in the attribution process only). What is left is
the server's own share; the difference from a run with real explainers is the
share of the child's CPU on the machine.

The servers share the machine, so the attributions' CPU is felt by all of them
alike: the ratios measure what the flavor adds on the request path of its own
process (the sampling draw, the queue, the hand-over of sampled calls to the
attribution process), not what a busy core costs a neighbour. The load average
at the start and the end is printed: re-run on a quiet machine for figures to quote.
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
# name -> MLFLOW_OBSERVE_EXPLAIN_RATE; the first is the reference, "A/A" the control.
SETTINGS = {"off": None, "A/A": None, "0.1": "0.1", "1.0": "1.0"}
REFERENCE, CONTROL = "off", "A/A"
MODELS = ("mlp", "linear")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_model(store: str, kind: str) -> str:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LinearRegression
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
    if kind == "linear":
        model, options = LinearRegression().fit(X, y), {}
    else:
        model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(X, y)
        optimizer = "sklearn.neural_network._stochastic_optimizers.AdamOptimizer"
        options = {"skops_trusted_types": [optimizer]}
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=X.assign(y=y),
            targets="y",
            input_example=X.head(3),
            inner_options=options,
        )
    return info.model_uri


# --stub-explainers: a sitecustomize module on the rate servers' path which, in the attribution
# process only, replaces the explainer with one that gives zeros at once. The hand-over, the
# acknowledgements, the files and the server's side are unchanged; the child's CPU is gone.
STUB_SITE = """
import sys
if "--token" in sys.argv and "--model" in sys.argv:  # the attribution process's command
    import types
    import pandas as pd
    from mlflow_observe.plugins import processes

    def _stub_explainer(root):
        def explain(rows):
            zeros = pd.DataFrame(0.0, index=range(len(rows)), columns=rows.columns)
            return types.SimpleNamespace(values=zeros, base_value=0.0, method="stub"), "stub"
        return explain

    processes.load_serving_explainer = _stub_explainer
"""


def _stub_site(store: str) -> str:
    site = os.path.join(store, "stub-site")
    os.makedirs(site, exist_ok=True)
    with open(os.path.join(site, "sitecustomize.py"), "w") as handle:
        handle.write(STUB_SITE)
    return site


def _start(
    model_uri: str, store: str, name: str, rate, stub_site: str | None = None
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}/bench.db",
        "MLFLOW_OBSERVE_LOG_DIR": _log_dir(store, name),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    env.pop("MLFLOW_OBSERVE_EXPLAIN_RATE", None)
    if rate is not None:
        env["MLFLOW_OBSERVE_EXPLAIN_RATE"] = rate
        if stub_site is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [stub_site, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
        + ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


def _log_dir(store: str, name: str) -> str:
    return f"{store}/logs-{name.replace('/', '')}"


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


def wait_all_ready(servers: dict) -> None:
    """Wait until every server (name -> (process, url)) answers its ping."""
    for process, url in servers.values():
        _wait_ready(process, url)


def stop_servers(servers: dict) -> None:
    """Stop every server (name -> (process, url)): SIGTERM to its process group, then wait."""
    for process, _ in servers.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process, _ in servers.values():
        process.wait(timeout=120)


def send(session, url: str, body: dict, name: str):
    """POST ``body`` to the server's ``/invocations``; the response (an error names the server
    and its answer when it is not 200)."""
    response = session.post(f"{url}/invocations", json=body, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text}")
    return response


def request_bodies(count: int = 256) -> list[dict]:
    """``count`` one-row request bodies (``dataframe_split``) of the served model's columns,
    the same in every run (seed 1)."""
    import pandas as pd

    rng = np.random.default_rng(1)
    rows = pd.DataFrame(
        rng.normal(size=(count, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    return [{"dataframe_split": rows.iloc[[i]].to_dict(orient="split")} for i in range(count)]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's processes (the CLI, uvicorn, its worker, the
    attribution process)."""
    table = _processes()
    return sum(table[p][2] for p in _server_pids(pid, table) if p in table)


def _request_side_cpu_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of the server's processes except the attribution
    process (``/proc/<pid>/task/<tid>/schedstat``, exact to the nanosecond where ``stat``
    counts 10 ms ticks): the serving process's request threads, its log writer and the
    hand-over and acknowledgement threads, and the log's roller process."""
    return sum(thread_cpu_ns(pid).values())


def thread_cpu_ns(pid: int) -> dict:
    """(thread name, tid) -> on-CPU nanoseconds, for every thread of the server started as
    ``pid`` but its attribution process's (the name is the thread's ``comm``; every thread
    of the log's roller process is named ``roller process``)."""
    table = _processes()
    explainers = set(_explainer_pids(pid, table))
    found = {}
    for member in _server_pids(pid, table):
        if member in explainers:
            continue
        roller = b"roller_main" in table.get(member, (0, 0, 0, b""))[3]
        try:
            tasks = os.listdir(f"/proc/{member}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{member}/task/{task}/schedstat") as handle:
                    cpu = int(handle.read().split()[0])
                with open(f"/proc/{member}/task/{task}/comm") as handle:
                    name = handle.read().strip()
            except (OSError, ValueError, IndexError):
                continue
            found[("roller process" if roller else name, int(task))] = cpu
    return found


def _processes() -> dict:
    """pid -> (parent pid, process group, user + system CPU seconds, command line)."""
    found = {}
    ticks = os.sysconf("SC_CLK_TCK")
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
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        found[int(entry)] = (int(fields[1]), int(fields[2]), cpu, command)
    return found


def _server_pids(pid: int, table: dict | None = None) -> list[int]:
    """The processes of the server started as ``pid``: its process group (start_new_session:
    pgid = pid) and their descendants, wherever those run (a child may have a session of
    its own). ``table``: a :func:`_processes` already read."""
    table = _processes() if table is None else table
    members = {p for p, (_, group, _, _) in table.items() if group == pid}
    grew = True
    while grew:
        children = {p for p, (parent, _, _, _) in table.items() if parent in members}
        grew = not children <= members
        members |= children
    return sorted(members)


def _explainer_pids(pid: int, table: dict | None = None) -> list[int]:
    """The attribution processes of the server started as ``pid``."""
    table = _processes() if table is None else table
    return [
        p for p in _server_pids(pid, table) if p in table and b"attribution_main" in table[p][3]
    ]


def _pause_explainers(servers) -> list[int]:
    """SIGSTOP every attribution process: alive, holding its memory, using no CPU."""
    pids = [child for process, _ in servers.values() for child in _explainer_pids(process.pid)]
    for child in pids:
        os.kill(child, signal.SIGSTOP)
    print(f"attribution processes paused for the timed rounds: {len(pids)}")
    return pids


def _attribution_rss_mb(pid: int) -> float:
    """Resident memory of the process group's attribution processes (the model loaded again)."""
    total = 0.0
    for child in _explainer_pids(pid):
        try:
            with open(f"/proc/{child}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return total


def ratio_intervals(
    latencies: dict, reference: str, *, resamples: int = 2000, seed: int = 3
) -> dict:
    """Per server: ``{"p50": (ratio, low, high), "p99": (...)}``, the ratio of its percentile to
    the reference's and its bootstrap 95% interval.

    The rounds are resampled with replacement, the same rounds for every server (they were
    timed together, so a round's conditions stay paired); the interval is the 2.5% and 97.5%
    percentiles of the ratio over the resamples.

    A server twice as slow in every round: its ratio is 2 in every resample.

    >>> a = np.random.default_rng(0).exponential(size=500)
    >>> ratio, low, high = ratio_intervals({"a": a, "b": 2 * a}, "a", resamples=500)["b"]["p99"]
    >>> [round(float(x), 6) for x in (ratio, low, high)]
    [2.0, 2.0, 2.0]
    """
    names = list(latencies)
    values = np.array([latencies[name] for name in names])  # servers x rounds
    rounds = values.shape[1]
    draws = np.random.default_rng(seed).integers(0, rounds, size=(resamples, rounds))
    out: dict = {name: {} for name in names}
    base = names.index(reference)
    for label, q in (("p50", 50), ("p99", 99)):
        point = np.percentile(values, q, axis=1)
        # resamples x servers, one server at a time to keep the memory at resamples x rounds
        sampled = np.column_stack([np.percentile(row[draws], q, axis=1) for row in values])
        ratios = sampled / sampled[:, [base]]
        low, high = np.percentile(ratios, [2.5, 97.5], axis=0)
        for k, name in enumerate(names):
            out[name][label] = (point[k] / point[base], low[k], high[k])
    return out


def overlaps(a: tuple, b: tuple) -> bool:
    """Whether two ``(ratio, low, high)`` intervals overlap."""
    return a[1] <= b[2] and b[1] <= a[2]


def across_runs(log_ratios: list[float]) -> tuple[float, float, float]:
    """The geometric mean of per-run ratios and its 95% t-interval across the runs
    (``(ratio, low, high)``; the interval is nan for a single run).

    >>> [round(x, 6) for x in across_runs([np.log(1.1), np.log(1.1), np.log(1.1)])]
    [1.1, 1.1, 1.1]
    """
    mean, low, high = mean_interval(log_ratios)
    return float(np.exp(mean)), float(np.exp(low)), float(np.exp(high))


def balanced_orders(names: list, runs: int, seed: int) -> list[list]:
    """Start orders in Latin squares: in each block of ``len(names)`` runs every server starts
    once in each position, so that a position's offset falls on every server alike and
    cancels in their comparison. Each block is a cyclic square of a shuffled order, its
    runs shuffled too (``seed``).

    >>> orders = balanced_orders(["a", "b", "c", "d"], 8, seed=1)
    >>> all(sorted(o[p] for o in orders[:4]) == ["a", "b", "c", "d"] for p in range(4))
    True
    >>> all(sorted(o[p] for o in orders[4:]) == ["a", "b", "c", "d"] for p in range(4))
    True
    """
    rng = random.Random(seed)
    orders: list[list] = []
    while len(orders) < runs:
        base = list(names)
        rng.shuffle(base)
        block = [base[k:] + base[:k] for k in range(len(base))]
        rng.shuffle(block)
        orders.extend(block)
    return orders[:runs]


def position_adjusted(log_ratios: dict, orders: list, target: str, label: str = "p50"):
    """``target``'s ratio against the two rate-off servers with the start positions fitted:
    least squares of each server's log ratio on its run, its role and its position, then
    ``(ratio, low, high)`` with a 95% t-interval.

    A position's offset then counts once for every role, whatever the orders were.

    >>> rng = np.random.default_rng(0)
    >>> orders = [list(rng.permutation(list(SETTINGS))) for _ in range(12)]
    >>> cost = {"off": 0.0, "A/A": 0.0, "0.1": 0.0, "1.0": 0.02}  # a 2% cost at rate 1.0
    >>> offset = [0.0, 0.01, -0.01, 0.0]  # the start positions' own offsets
    >>> logs = {name: {"p50": []} for name in SETTINGS}
    >>> for order in orders:
    ...     run = {n: cost[n] + offset[order.index(n)] + rng.normal(0, 0.002) for n in order}
    ...     for n in SETTINGS:
    ...         logs[n]["p50"].append(run[n] - run["off"])
    >>> ratio, low, high = position_adjusted(logs, orders, "1.0")
    >>> bool(low < np.exp(0.02) < high), bool(low > 1.0)
    (True, True)
    """
    from scipy import stats

    roles = list(SETTINGS)
    n_runs, n_roles = len(orders), len(roles)
    rows, values = [], []
    for run, order in enumerate(orders):
        for role in roles:
            row = np.zeros(n_runs + 2 * (n_roles - 1))
            row[run] = 1.0
            if role != REFERENCE:
                row[n_runs + roles.index(role) - 1] = 1.0
            if order.index(role):
                row[n_runs + n_roles - 1 + order.index(role) - 1] = 1.0
            rows.append(row)
            values.append(log_ratios[role][label][run])
    design, observed = np.array(rows), np.array(values)
    beta = np.linalg.lstsq(design, observed, rcond=None)[0]
    dof = len(observed) - np.linalg.matrix_rank(design)
    variance = float(((observed - design @ beta) ** 2).sum() / dof)
    contrast = np.zeros(design.shape[1])
    contrast[n_runs + roles.index(target) - 1] += 1.0
    contrast[n_runs + roles.index(CONTROL) - 1] -= 0.5  # against both rate-off servers
    estimate = float(contrast @ beta)
    half = float(
        stats.t.ppf(0.975, dof)
        * np.sqrt(variance * contrast @ np.linalg.pinv(design.T @ design) @ contrast)
    )
    return float(np.exp(estimate)), float(np.exp(estimate - half)), float(np.exp(estimate + half))


def _print_position_adjusted(log_ratios: dict, orders: list) -> None:
    if len(orders) < 3:
        return
    print("\nwith the start positions fitted (each server's log ratio on its run, role, position):")
    for name, rate in SETTINGS.items():
        if rate is None:
            continue
        cells = []
        for label in ("p50", "p99"):
            ratio, low, high = position_adjusted(log_ratios, orders, name, label)
            cells.append(f"{label} x{ratio:.3f} ({low:.3f} to {high:.3f})")
        print(f"rate {rate} against the two rate-off servers: {'; '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="timed rounds (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed rounds first")
    parser.add_argument(
        "--model", choices=MODELS, default="mlp", help="the served model (default mlp)"
    )
    parser.add_argument(
        "--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs, each with four new servers started in a new shuffled order (default 1); "
        "with several, a summary across the runs follows their tables",
    )
    parser.add_argument(
        "--start-order",
        type=int,
        default=None,
        metavar="SEED",
        help="the seed of the shuffled start orders (default: the first run starts the "
        "servers as listed, the next ones shuffled with seeds 1, 2, ...)",
    )
    parser.add_argument(
        "--balanced",
        action="store_true",
        help="start orders in Latin squares (--runs a multiple of 4): every server starts "
        "once in each position per four runs, so that a position's offset cancels "
        "(--start-order seeds them)",
    )
    parser.add_argument(
        "--pause-explainers",
        action="store_true",
        help="stop the attribution processes (SIGSTOP) at the end of the warm-up, for the "
        "timed rounds: what is left is the request path's own cost, without the child's CPU",
    )
    parser.add_argument(
        "--stub-explainers",
        action="store_true",
        help="the attribution processes give zeros at once instead of explaining: the "
        "hand-over, acknowledgements and files stay, the child's CPU goes (tells the "
        "server's own share from the machine's)",
    )
    args = parser.parse_args()

    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    store = tempfile.mkdtemp(prefix="explain-serving-")
    model_uri = _log_model(store, args.model)
    log_ratios: dict = {name: {"p50": [], "p99": []} for name in SETTINGS}
    request_cpu: dict = {name: [] for name in SETTINGS}  # microseconds a request, per run
    orders = (
        balanced_orders(list(SETTINGS), args.runs, args.start_order or 0) if args.balanced else None
    )
    started: list[list] = []  # each run's start order
    for run in range(args.runs):
        order = list(SETTINGS)
        seed = args.start_order + run if args.start_order is not None else run or None
        if orders is not None:
            order = orders[run]
        elif seed is not None:
            random.Random(seed).shuffle(order)
        intervals = _run(args, model_uri, store, run, order)
        started.append(order)
        for name in SETTINGS:
            for label in ("p50", "p99"):
                log_ratios[name][label].append(float(np.log(intervals[name][label][0])))
            request_cpu[name].append(intervals[name]["cpu_us"])
    if args.runs > 1:
        _print_summary(log_ratios, args.runs)
        _print_request_cpu(request_cpu)
        _print_position_adjusted(log_ratios, started)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


def _run(args, model_uri: str, store: str, run: int, order: list) -> dict:
    """One run: four servers started in ``order``, timed together; prints its table and
    returns its ratios with their bootstrap intervals."""
    import requests

    print(f"\nrun {run + 1}: servers started in the order {', '.join(order)}")
    tag = f"-run{run}"
    stub_site = _stub_site(store) if args.stub_explainers else None
    started_servers = {
        name: _start(model_uri, store, name + tag, SETTINGS[name], stub_site) for name in order
    }
    servers = {name: started_servers[name] for name in SETTINGS}
    paused: list[int] = []
    try:
        wait_all_ready(servers)
        bodies = request_bodies()
        sessions = {name: requests.Session() for name in servers}
        latencies: dict = {name: [] for name in servers}
        cpu_start = {}
        timing_order = list(servers)
        shuffle = random.Random(2 + run).shuffle
        for round_ in range(args.warmup + args.rounds):
            if round_ == args.warmup:
                if args.pause_explainers:
                    paused = _pause_explainers(servers)
                cpu_start = {n: _cpu_seconds(p.pid) for n, (p, _) in servers.items()}
                own_start = {n: _request_side_cpu_ns(p.pid) for n, (p, _) in servers.items()}
                started = time.monotonic()
            shuffle(timing_order)
            body = bodies[round_ % len(bodies)]
            for name in timing_order:
                begin = time.perf_counter()
                send(sessions[name], servers[name][1], body, name)
                elapsed = time.perf_counter() - begin
                if round_ >= args.warmup:
                    latencies[name].append(elapsed * 1000.0)
        seconds = time.monotonic() - started
        cpu = {n: _cpu_seconds(p.pid) - cpu_start[n] for n, (p, _) in servers.items()}
        # Per timed request (the warm-up's excluded), in microseconds.
        own = {
            n: (_request_side_cpu_ns(p.pid) - own_start[n]) / args.rounds / 1000.0
            for n, (p, _) in servers.items()
        }
        rss = {n: _attribution_rss_mb(p.pid) for n, (p, _) in servers.items()}
        time.sleep(3.0)  # the last attributions written (every 2 s)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        stop_servers(servers)

    from mlflow_observe.logs.reader import read_attributions, read_logs

    n_requests = args.warmup + args.rounds
    model = "MLPRegressor" if args.model == "mlp" else "LinearRegression"
    print(
        f"\n{args.rounds} timed rounds (+{args.warmup} warm-up) of one-row requests to each "
        f"server, {seconds:.0f} s; {model}, {N_COLUMNS} columns, sampled Shapley (5,376 "
        f"predictions a row); 95% intervals from {args.resamples} bootstrap resamples of the "
        "rounds\n"
    )
    print(
        "| explain rate | p50 ms | p99 ms | p50 ratio | p50 95% interval | p99 ratio "
        "| p99 95% interval | rows logged | attributed | min rate | server CPU s "
        "| request-side CPU us | explainer MB |"
    )
    print("| --- " * 2 + "| ---: " * 11 + "|")
    intervals = ratio_intervals(latencies, REFERENCE, resamples=args.resamples)
    for name in servers:
        values = latencies[name]
        p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
        logged = len(read_logs(_log_dir(store, name + tag)))
        stored = read_attributions(_log_dir(store, name + tag))
        attributed = len(stored)
        low = f"{stored['explain_rate'].min():.3g}" if attributed else "-"
        cells = [name if name != CONTROL else "off (A/A control)", f"{p50:.2f}", f"{p99:.2f}"]
        for label in ("p50", "p99"):
            ratio, lo, hi = intervals[name][label]
            cells += [f"{ratio:.3f}", f"{lo:.3f} to {hi:.3f}"]
        cells += [str(logged), str(attributed), low, f"{cpu[name]:.1f}", f"{own[name]:.0f}"]
        cells.append(f"{rss[name]:.0f}")
        print("| " + " | ".join(cells) + " |")
    print(f"\n(each server answered {n_requests} requests; 'min rate': the lowest explain_rate")
    print(" recorded, below the setting when the worker fell behind and sampled down;")
    print(" 'server CPU s' counts the attribution process too; 'request-side CPU us': the")
    print(" server's CPU a timed request without the attribution process, all its threads;")
    print(" 'explainer MB': the attribution process's resident memory, the model loaded a")
    print(" second time)\n")
    control = intervals[CONTROL]
    for name, rate in SETTINGS.items():
        if rate is None:
            continue
        verdicts = [
            f"{label} {'no measurable' if overlaps(intervals[name][label], control[label]) else 'MEASURABLE'}"
            + " latency"
            for label in ("p50", "p99")
        ]
        print(f"rate {rate}: {'; '.join(verdicts)} (its 95% interval against the A/A control's)")
    for name in servers:
        intervals[name]["cpu_us"] = own[name]
    return intervals


def _print_summary(log_ratios: dict, runs: int) -> None:
    """Across the runs: each server's geometric-mean ratio to the reference with its 95%
    t-interval. A server's start position (its port, process id, start time) moves its
    latency by a few percent in a run; across runs with shuffled orders that offset is
    noise, which the between-run interval holds, and the A/A control shows it."""
    print(f"\nacross {runs} runs (servers started in a new order each run): geometric")
    print("mean of the per-run ratios to the reference, with its 95% t-interval\n")
    print("| explain rate | p50 ratio | p50 95% interval | p99 ratio | p99 95% interval |")
    print("| --- | ---: | ---: | ---: | ---: |")
    summary = {name: {k: across_runs(v) for k, v in log_ratios[name].items()} for name in SETTINGS}
    for name in SETTINGS:
        if name == REFERENCE:
            continue
        cells = [name if name != CONTROL else "off (A/A control)"]
        for label in ("p50", "p99"):
            ratio, lo, hi = summary[name][label]
            cells += [f"{ratio:.3f}", f"{lo:.3f} to {hi:.3f}"]
        print("| " + " | ".join(cells) + " |")
    print()
    # Against both rate-off servers at once: per run, the log of the rate server's ratio minus
    # the mean of the two off servers' (the reference's is 0), so that neither one's offset
    # in that run stands for "no rate" alone.
    for name, rate in SETTINGS.items():
        if rate is None:
            continue
        verdicts = []
        for label in ("p50", "p99"):
            contrast = (
                np.asarray(log_ratios[name][label]) - np.asarray(log_ratios[CONTROL][label]) / 2.0
            )
            ratio, lo, hi = across_runs(list(contrast))
            verdict = (
                "no measurable latency"
                if lo <= 1.0 <= hi
                else "MEASURABLE latency"
                if lo > 1.0
                else "faster (below 1: the noise this design leaves)"
            )
            verdicts.append(f"{label} x{ratio:.3f} ({lo:.3f} to {hi:.3f}): {verdict}")
        print(f"rate {rate} against the two rate-off servers: {'; '.join(verdicts)}")


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """The mean and its 95% t-interval (``(mean, low, high)``; nan for a single value).

    >>> [round(x, 3) for x in mean_interval([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    from scipy import stats

    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return mean, mean - half, mean + half


def _print_request_cpu(request_cpu: dict) -> None:
    """Each rate server's request-side CPU a request above the two rate-off servers' mean,
    per run, with its 95% t-interval across the runs: what the flavor's sampling, queue and
    hand-over cost the serving process, without the latency's noise."""
    off = (np.asarray(request_cpu[REFERENCE]) + np.asarray(request_cpu[CONTROL])) / 2.0
    print(
        f"\nrequest-side CPU a request, rate off: {off.mean():.0f} us (the A/A control "
        f"{np.mean(np.asarray(request_cpu[CONTROL]) - np.asarray(request_cpu[REFERENCE])):+.1f}"
        " us from the reference)"
    )
    for name, rate in SETTINGS.items():
        if rate is None:
            continue
        extra, low, high = mean_interval(list(np.asarray(request_cpu[name]) - off))
        print(
            f"rate {rate}: {extra:+.1f} us a request ({low:+.1f} to {high:+.1f}), "
            f"{extra / off.mean():+.2%} of the rate-off servers' CPU"
        )


if __name__ == "__main__":
    main()
