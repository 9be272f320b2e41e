"""Where a served request's CPU goes, thread by thread: a rate-off server against rate-1.0
servers with parts of the attribution path switched off, started and timed together.

    nice -n 10 .venv/bin/python benchmarks/explain_server_cpu.py              # ~15 minutes
    nice -n 10 .venv/bin/python benchmarks/explain_server_cpu.py --runs 2 --rounds 300

``explain_serving_latency.py`` finds the rate-1.0 server's own threads using about 3%
more CPU a request than a rate-off server's. This script tells which part of the
attribution path that CPU follows. Four servers of the same MLP (``mlflow models serve``,
one worker each, the prediction log on) answer the same one-row requests, one round at
a time in a shuffled order:

* ``off``: ``MLFLOW_OBSERVE_EXPLAIN_RATE=0.0`` (attributions off);
* ``no-worker``: rate 1.0, but the flavor starts no attribution worker: what is left is
  the rate's check on each call and the stop handlers;
* ``idle-worker``: rate 1.0, the worker's threads and its attribution process started,
  but no call is offered to it: what is left is their presence (the process loads the
  model and then waits);
* ``rate 1.0``: unchanged, every call attributed.

A ``sitecustomize`` module on every server's path (the same for all four, so that each
imports the package at start-up alike) makes the changes, and names each Python thread
for the OS (``prctl``), so that ``/proc/<pid>/task/<tid>/schedstat`` gives each thread's
on-CPU nanoseconds under its Python name. The servers start in a rotated order, one
position further each run. Per run, each variant's CPU a request (all its processes'
threads but the attribution process) minus the ``off`` server's; after the runs, the
mean of those differences with a 95% t-interval, and the same per thread.

The difference between ``idle-worker`` and ``rate 1.0`` is what the attributions' own
work (the offer on the request thread, the hand-over, the acknowledgements, the child's
CPU on the machine) adds to the server's CPU; the difference between ``off`` and
``idle-worker`` is what their presence does.

``--toggle-child BLOCKS`` asks another question within two servers (rate off and 1.0,
unchanged): does the attribution process's CPU on the machine cost the servers CPU? The
rate-1.0 server's attribution process is stopped (SIGSTOP) and resumed (SIGCONT) in
alternating blocks of ``--block-rounds`` rounds (ABBA order); each block gives both
servers' CPU a request and p50. A server's start position cannot bias this comparison:
both states are measured on the same processes.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from explain_serving_latency import (  # noqa: E402
    _explainer_pids,
    _log_model,
    _request_side_cpu_ns,
    _start,
    mean_interval,
    request_bodies,
    send,
    stop_servers,
    thread_cpu_ns,
    wait_all_ready,
)

# name -> MLFLOW_OBSERVE_EXPLAIN_RATE
VARIANTS = {"off": "0.0", "no-worker": "1.0", "idle-worker": "1.0", "rate 1.0": "1.0"}
REFERENCE = "off"
TOGGLED = {"off": None, "1.0": "1.0"}  # --toggle-child: name -> MLFLOW_OBSERVE_EXPLAIN_RATE

SITE = """
import ctypes, os, threading

_variant = os.environ.get("EXPLAIN_SERVER_CPU_VARIANT")
if _variant:
    _prctl = ctypes.CDLL(None).prctl

    def _name_thread(name):
        try:  # PR_SET_NAME: 15 bytes
            _prctl(15, name.replace("mlflow-observe-", "").encode()[:15], 0, 0, 0)
        except Exception:
            pass

    _start_thread = threading.Thread._bootstrap_inner

    def _named(self):
        _name_thread(self.name)
        _start_thread(self)

    threading.Thread._bootstrap_inner = _named
    _name_thread("MainThread")
    from mlflow_observe.plugins import attribution, flavor

    if _variant in ("no-worker", "idle-worker"):
        attribution.AttributionWorker.offer = lambda self, inputs, request_id, event_time: (
            request_id
        )
    if _variant == "no-worker":
        flavor.ObservedModel.attribution_worker = property(lambda self: None)
"""


def _site(store: str) -> str:
    site = os.path.join(store, "variant-site")
    os.makedirs(site, exist_ok=True)
    Path(site, "sitecustomize.py").write_text(SITE)
    return site


def _run(args, model_uri: str, store: str, run: int) -> dict:
    """One run: the four servers started in a rotated order and timed together; per
    variant, per thread name, the CPU a timed request in microseconds."""
    import requests

    names = list(VARIANTS)
    order = [names[(i + run) % len(names)] for i in range(len(names))]
    site = _site(store)
    servers = {}
    for name in order:
        os.environ["EXPLAIN_SERVER_CPU_VARIANT"] = name
        tag = f"{names.index(name)}-run{run}"
        servers[name] = _start(model_uri, store, tag, VARIANTS[name], site)
    os.environ.pop("EXPLAIN_SERVER_CPU_VARIANT", None)
    try:
        wait_all_ready(servers)
        bodies = request_bodies()
        sessions = {name: requests.Session() for name in servers}
        timing_order = list(servers)
        shuffle = random.Random(2 + run).shuffle
        before: dict = {}
        for round_ in range(args.warmup + args.rounds):
            if round_ == args.warmup:
                before = {n: thread_cpu_ns(p.pid) for n, (p, _) in servers.items()}
            shuffle(timing_order)
            for name in timing_order:
                send(sessions[name], servers[name][1], bodies[round_ % len(bodies)], name)
        after = {n: thread_cpu_ns(p.pid) for n, (p, _) in servers.items()}
    finally:
        stop_servers(servers)
    result: dict = {}
    for name in servers:
        per_thread: dict = {}
        for key, cpu in after[name].items():
            spent = (cpu - before[name].get(key, 0)) / args.rounds / 1000.0
            per_thread[key[0]] = per_thread.get(key[0], 0.0) + spent
        result[name] = per_thread
    totals = {n: sum(t.values()) for n, t in result.items()}
    print(
        f"run {run + 1} (started {', '.join(order)}): CPU a request, us: "
        + ", ".join(f"{n} {totals[n]:.0f}" for n in servers),
        flush=True,
    )
    return result


def _toggle_child(args, model_uri: str, store: str) -> None:
    """Two servers (rate off, rate 1.0); the rate-1.0 server's attribution process stopped
    and resumed in alternating blocks; per state, both servers' CPU and p50 a request."""
    import pandas as pd
    import requests

    servers = {name: _start(model_uri, store, f"t{name}", rate) for name, rate in TOGGLED.items()}
    stopped: list[int] = []
    blocks = []
    try:
        wait_all_ready(servers)
        bodies = request_bodies()
        sessions = {name: requests.Session() for name in servers}
        order = list(servers)
        shuffle = random.Random(2).shuffle

        def one_round(k: int, latencies: dict) -> None:
            shuffle(order)
            for name in order:
                begin = time.perf_counter()
                send(sessions[name], servers[name][1], bodies[k % len(bodies)], name)
                latencies[name].append(time.perf_counter() - begin)

        for k in range(args.warmup):
            one_round(k, {name: [] for name in servers})
        children = _explainer_pids(servers["1.0"][0].pid)
        for block in range(args.toggle_child):
            running = (block // 2 + block) % 2 == 0  # ABBA: running, stopped, stopped, running
            for child in children:
                os.kill(child, signal.SIGCONT if running else signal.SIGSTOP)
            stopped = [] if running else children
            time.sleep(0.5)  # the signal taken, the child settled in its new state
            cpu = {n: _request_side_cpu_ns(p.pid) for n, (p, _) in servers.items()}
            latencies: dict = {name: [] for name in servers}
            for k in range(args.block_rounds):
                one_round(k, latencies)
            record = {"running": running}
            for name, (process, _) in servers.items():
                spent = _request_side_cpu_ns(process.pid) - cpu[name]
                record[f"cpu {name}"] = spent / args.block_rounds / 1000.0
                record[f"p50 {name}"] = float(np.median(latencies[name])) * 1000.0
            blocks.append(record)
    finally:
        for child in stopped:
            os.kill(child, signal.SIGCONT)
        stop_servers(servers)
    frame = pd.DataFrame(blocks)
    print(
        f"\n{len(frame)} blocks of {args.block_rounds} rounds; the rate-1.0 server's attribution "
        "process running minus stopped, with the 95% t-interval of the difference\n"
    )
    print("| measure | running | stopped | running minus stopped |")
    print("| --- | ---: | ---: | ---: |")
    from scipy import stats

    for column in ("cpu off", "cpu 1.0", "p50 off", "p50 1.0"):
        on, off = frame[frame.running][column], frame[~frame.running][column]
        test = stats.ttest_ind(on, off)
        low, high = test.confidence_interval()
        unit = "us a request" if column.startswith("cpu") else "ms"
        print(
            f"| {column} ({unit}) | {on.mean():.2f} | {off.mean():.2f} | "
            f"{on.mean() - off.mean():+.2f} ({low:+.2f} to {high:+.2f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1500, help="timed rounds (default 1500)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed rounds first")
    parser.add_argument("--runs", type=int, default=8, help="runs (default 8)")
    parser.add_argument(
        "--toggle-child",
        type=int,
        metavar="BLOCKS",
        help="instead: stop and resume the rate-1.0 server's attribution process in BLOCKS "
        "alternating blocks",
    )
    parser.add_argument(
        "--block-rounds", type=int, default=150, help="rounds a block (default 150)"
    )
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="explain-server-cpu-")
    model_uri = _log_model(store, "mlp")
    if args.toggle_child:
        _toggle_child(args, model_uri, store)
        return
    runs = [_run(args, model_uri, store, run) for run in range(args.runs)]
    print(
        f"\n{args.runs} runs of {args.rounds} timed one-row requests to each server; CPU a "
        f"request of each variant's threads (the attribution process left out) minus the "
        f"'{REFERENCE}' server's, in us, mean over the runs with its 95% t-interval\n"
    )
    print("| thread | " + " | ".join(n for n in VARIANTS if n != REFERENCE) + " |")
    print("| --- " + "| ---: " * (len(VARIANTS) - 1) + "|")
    threads = sorted(
        {t for run in runs for per in run.values() for t in per},
        key=lambda t: -np.mean([run[REFERENCE].get(t, 0.0) for run in runs]),
    )

    def cell(values: list) -> str:
        if len(values) < 2:
            return f"{values[0]:+.0f}"
        mean, low, high = mean_interval(values)
        return f"{mean:+.0f} ({low:+.0f} to {high:+.0f})"

    for thread in threads + ["all"]:
        cells = []
        for name in VARIANTS:
            if name == REFERENCE:
                continue
            if thread == "all":
                values = [sum(r[name].values()) - sum(r[REFERENCE].values()) for r in runs]
            else:
                values = [r[name].get(thread, 0.0) - r[REFERENCE].get(thread, 0.0) for r in runs]
            cells.append(cell(values))
        label = "**all**" if thread == "all" else thread
        print(f"| {label} | " + " | ".join(cells) + " |")
    reference = np.mean([sum(r[REFERENCE].values()) for r in runs])
    print(f"\n(the '{REFERENCE}' server: {reference:.0f} us of CPU a request in all)")
    attribution = [sum(r["rate 1.0"].values()) - sum(r["idle-worker"].values()) for r in runs]
    print(f"rate 1.0 minus idle-worker, all threads: {cell(attribution)} us a request")


if __name__ == "__main__":
    main()
