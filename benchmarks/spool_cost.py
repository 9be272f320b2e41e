"""What the prediction log's writer thread costs per call, and how much of it holds the GIL.

    .venv/bin/python benchmarks/spool_cost.py                 # about 3 minutes
    .venv/bin/python benchmarks/spool_cost.py --processes 5

The writer thread runs in the serving process: every moment it holds the GIL
is a moment a request thread may wait (the p99 of a wrapped call). For calls
of 10,000 rows and of 1 row (20 numeric columns, one numeric prediction), a
writer that only spools (no roll, no class probabilities) is measured three
ways, each in its own process, ``--processes`` times (medians over them):

* **path**: the writer thread's two steps timed apart (thread CPU time):
  building the call's Arrow table, which holds the GIL (Python, pandas and
  pyarrow calls), and appending it to the spool segment, one pyarrow call that
  releases it. 1-row calls are converted 1,000 to a table, as the writer
  thread takes them when they queue up;
* **throughput**: calls submitted back to back, then ``spool_now``: rows per
  second into the spool (wall clock), CPU microseconds of the writer thread
  per call, and what ``submit`` costs the caller per call;
* **latency**: while a feeder submits calls at a steady rate (2M rows/s in
  10,000-row calls, 10,000 1-row calls/s), a thread that sleeps 0.5 ms and
  wakes, again and again, records how late it gets the GIL back (p50, p99;
  the p99 with the writer idle for reference). On a loaded machine this is
  mostly the machine's; the path's split is the steadier figure.

Run it with ``PYTHONPATH`` set to the checkout to measure (the script itself
uses only the writer's ``_to_table``/``_append`` steps and ``submit``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

N_COLUMNS = 20


def _calls(rows: int):
    import pandas as pd

    rng = np.random.default_rng(0)
    inputs = pd.DataFrame(
        rng.normal(size=(rows, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    return inputs, rng.random(rows)


def _writer(root: str, total_rows: int):
    from mlflow_observe.logs.writer import PredictionLogWriter

    # A queue and a spool budget that hold the whole run, no roll: the spool path alone.
    return PredictionLogWriter(
        root, max_queue_rows=total_rows + 1, max_spool_bytes=1 << 40, flush_seconds=3600
    )


def _thread_cpu(thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def worker_throughput(rows: int, total_rows: int) -> dict:
    inputs, outputs = _calls(rows)
    n_calls = total_rows // rows
    with tempfile.TemporaryDirectory() as root:
        writer = _writer(root, total_rows)
        for _ in range(20):  # warm up
            writer.submit(inputs, outputs, latency_seconds=0.001)
        writer.spool_now(60)
        cpu = _thread_cpu(writer._thread)
        submit_cpu = time.thread_time()
        start = time.perf_counter()
        for _ in range(n_calls):
            writer.submit(inputs, outputs, latency_seconds=0.001)
        submitted = time.perf_counter()
        submit_cpu = time.thread_time() - submit_cpu
        writer.spool_now(600)
        seconds = time.perf_counter() - start
        cpu = _thread_cpu(writer._thread) - cpu
        stats = writer.stats()
        writer.close(60)
    return {
        "rows_per_second": n_calls * rows / seconds,
        "writer_cpu_us_per_call": cpu / n_calls * 1e6,
        "submit_us_per_call": (submitted - start) / n_calls * 1e6,
        "submit_cpu_us_per_call": submit_cpu / n_calls * 1e6,
        "rows_spooled": stats["rows_spooled"] - 20 * rows,
        "rows_lost": stats["rows_sampled_out"] + stats["rows_dropped_queue_full"],
    }


def worker_path(rows: int, calls_per_cycle: int, cycles: int) -> dict:
    """The writer thread's two steps, timed apart on this thread (the writer's own is idle).

    Building the Arrow table holds the GIL (Python, pandas and pyarrow calls);
    appending it to the spool is one pyarrow call that releases it.
    """
    inputs, outputs = _calls(rows)
    with tempfile.TemporaryDirectory() as root:
        writer = _writer(root, 1)
        build = append = 0.0
        for cycle in range(cycles + 5):
            group = [
                [inputs, outputs, time.time_ns(), 0.001, None, None, 1.0]
                for _ in range(calls_per_cycle)
            ]
            started = time.thread_time()
            table = writer._to_table(group)
            built = time.thread_time()
            writer._append(table)
            appended = time.thread_time()
            if cycle >= 5:  # warmed up
                build += built - started
                append += appended - built
        writer.close(60)
    n_calls = cycles * calls_per_cycle
    return {
        "build_us_per_call": build / n_calls * 1e6,
        "append_us_per_call": append / n_calls * 1e6,
        "path_rows_per_cpu_second": n_calls * rows / (build + append),
    }


def worker_latency(rows: int, calls_per_second: float, seconds: float) -> dict:
    """How late a thread that wakes every 0.5 ms gets the GIL back while the writer works."""
    inputs, outputs = _calls(rows)
    n_calls = int(calls_per_second * seconds)
    burst = max(1, int(calls_per_second * 0.005))  # bursts every 5 ms; the feeder sleeps
    late: list[float] = []
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            started = time.perf_counter()
            time.sleep(0.0005)
            late.append(time.perf_counter() - started - 0.0005)

    with tempfile.TemporaryDirectory() as root:
        writer = _writer(root, n_calls * rows + 1)
        thread = threading.Thread(target=probe)
        thread.start()
        time.sleep(0.5)
        idle = np.array(late)
        late.clear()
        start = time.perf_counter()
        submitted = 0
        while submitted < n_calls:
            for _ in range(min(burst, n_calls - submitted)):
                writer.submit(inputs, outputs, latency_seconds=0.001)
            submitted += burst
            delay = start + submitted / calls_per_second - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        writer.spool_now(600)
        stop.set()
        thread.join()
        busy = np.array(late)
        writer.close(60)
    return {
        "late_p50_ms": float(np.percentile(busy, 50)) * 1e3,
        "late_p99_ms": float(np.percentile(busy, 99)) * 1e3,
        "late_p99_idle_ms": float(np.percentile(idle, 99)) * 1e3,
    }


def _run(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=os.environ
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--worker", choices=["throughput", "path", "latency"])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--total-rows", type=int, default=2_000_000)
    parser.add_argument("--calls-per-cycle", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--calls-per-second", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.worker == "throughput":
        print(json.dumps(worker_throughput(args.rows, args.total_rows)))
        return
    if args.worker == "path":
        print(json.dumps(worker_path(args.rows, args.calls_per_cycle, args.cycles)))
        return
    if args.worker == "latency":
        print(json.dumps(worker_latency(args.rows, args.calls_per_second, args.seconds)))
        return
    # rows per call: (throughput rows, (calls per cycle, cycles), latency run's calls/s)
    cases = {10_000: (3_000_000, (1, 300), 200.0), 1: (200_000, (1000, 30), 10_000.0)}
    runs: dict = {rows: [] for rows in cases}
    for _ in range(args.processes):  # interleaved: each kind of run once, then again
        for rows, (total, (per_cycle, cycles), rate) in cases.items():
            runs[rows].append(
                {
                    **_run(
                        ["--worker", "path", "--rows", str(rows)]
                        + ["--calls-per-cycle", str(per_cycle), "--cycles", str(cycles)]
                    ),
                    **_run(
                        ["--worker", "throughput", "--rows", str(rows), "--total-rows", str(total)]
                    ),
                    **_run(
                        ["--worker", "latency", "--rows", str(rows)]
                        + ["--calls-per-second", str(rate), "--seconds", str(args.seconds)]
                    ),
                }
            )
    print(f"{args.processes} processes, medians over them\n")
    print(
        "| calls of | build us / call (GIL held) | append us / call (GIL released) "
        "| rows/s into the spool | writer CPU us / call | submit us / call "
        "| probe late p50 / p99 ms (idle p99) | rows lost |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows, results in runs.items():

        def med(key, results=results):
            return statistics.median(r[key] for r in results)

        print(
            f"| {rows:,} row{'s' if rows > 1 else ''} | {med('build_us_per_call'):,.1f} "
            f"| {med('append_us_per_call'):,.1f} | {med('rows_per_second'):,.0f} "
            f"| {med('writer_cpu_us_per_call'):,.1f} | {med('submit_us_per_call'):.2f} "
            f"| {med('late_p50_ms'):.3f} / {med('late_p99_ms'):.3f} ({med('late_p99_idle_ms'):.3f}) "
            f"| {max(r['rows_lost'] for r in results):,} |"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
