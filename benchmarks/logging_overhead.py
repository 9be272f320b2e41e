"""What prediction logging costs: the wrapped model beside the bare inner pyfunc model.

    .venv/bin/python benchmarks/logging_overhead.py            # about 2 minutes
    .venv/bin/python benchmarks/logging_overhead.py --calls 2000
    .venv/bin/python benchmarks/logging_overhead.py --quick    # one process, short runs
    .venv/bin/python benchmarks/logging_overhead.py --calls 1000 --large-calls 1500
        # a longer stretch of 10,000-row calls: past the spool's budget

A scikit-learn logistic regression on 20 numeric columns is logged twice to a
temporary SQLite store: bare (``mlflow.sklearn``) and wrapped
(``mlflow_observe.log_model``). Both are loaded with ``mlflow.pyfunc.load_model``;
the wrapped one logs to a temporary directory. ``predict`` is timed call by call
on 1 row and on 10,000 rows, alternating bare and wrapped in blocks (A B A B ...),
and the medians and 99th percentiles compared; the wrapped model's writer
reports how many of the rows offered it spooled and logged (the rest shed by
recorded uniform sampling), the backlog the spool held when the calls stopped,
how long the roller took to catch up, and the CPU seconds of the writer thread
and of the roller: by default the served model's roller process (its CPU read
from ``/proc/<pid>/stat``, plus the writer's thread that hands it segments), or
the roller thread with ``--roller thread``. Then the writer alone (its roller
thread): how fast it takes rows into its spool (what a
crash keeps) and into the log's Parquet files, for calls of 10,000 rows and of
1 row (20 numeric columns), with the roller's class probabilities (a logistic
regression's ``predict_proba``). Each measurement runs in ``--processes``
separate processes; the report gives the median over them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

N_COLUMNS = 20
BLOCK = 100  # calls per block before switching model


def _models(store: str):
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mlflow_observe as mo

    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(f"sqlite:///{store}/bench.db")
    mlflow.set_experiment("logging-overhead")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(5000, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    y = (X["f00"] + X["f01"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run():
        bare = mlflow.sklearn.log_model(model, name="bare", input_example=X.head(3))
        wrapped = mo.log_model(model, name="wrapped", baseline=X, input_example=X.head(3))
    os.environ["MLFLOW_OBSERVE_LOG_DIR"] = f"{store}/logs"
    return (
        mlflow.pyfunc.load_model(bare.model_uri),
        mlflow.pyfunc.load_model(wrapped.model_uri),
        X,
    )


def worker_predict(calls: int, large_calls: int) -> dict:
    with tempfile.TemporaryDirectory() as store:
        bare, wrapped, X = _models(store)
        writer = None
        results = {}
        for rows, n_calls in ((1, calls), (10_000, large_calls)):
            batch = X.sample(rows, replace=True, random_state=1).reset_index(drop=True)
            times = {"bare": [], "wrapped": []}
            for model in (bare, wrapped):  # warm up
                for _ in range(20):
                    model.predict(batch)
            writer = wrapped.get_raw_model().log_writer
            writer.flush(300)
            before = writer.stats()
            cpu_before = _thread_cpu(writer._thread), _roller_cpu(writer)
            offered = 0
            done = 0
            started = time.perf_counter()
            while done < n_calls:
                block = min(BLOCK if rows == 1 else 5, n_calls - done)
                for name, model in (("bare", bare), ("wrapped", wrapped)):
                    for _ in range(block):
                        start = time.perf_counter()
                        model.predict(batch)
                        times[name].append(time.perf_counter() - start)
                offered += block * rows
                done += block
            writer.spool_now(300)
            calls_ended = time.perf_counter()
            backlog = writer.stats()["spool_bytes_waiting"]
            spooled = writer.stats()["rows_spooled"] - before["rows_spooled"]
            cpu_spooled = _thread_cpu(writer._thread) - cpu_before[0]
            writer.flush(600)
            drained = time.perf_counter()
            after = writer.stats()
            results[rows] = {
                name: {"median": float(np.median(t)), "p99": float(np.percentile(t, 99))}
                for name, t in times.items()
            }
            results[rows]["offered"] = offered
            results[rows]["logged"] = after["rows_written"] - before["rows_written"]
            results[rows]["sampled_out"] = after["rows_sampled_out"] - before["rows_sampled_out"]
            results[rows]["seconds"] = float(sum(times["wrapped"]))
            results[rows]["spooled"] = spooled
            results[rows]["backlog_bytes"] = backlog
            results[rows]["run_seconds"] = calls_ended - started
            results[rows]["drain_seconds"] = drained - calls_ended
            results[rows]["writer_cpu"] = cpu_spooled
            results[rows]["roller_cpu"] = _roller_cpu(writer) - cpu_before[1]
        results["writer_stats"] = writer.stats()
        results["roller_process"] = writer.roller_pid is not None
        return results


def worker_writer(rows_per_call: int, total_rows: int, probabilities: bool) -> dict:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlflow_observe.logs.writer import PredictionLogWriter

    rng = np.random.default_rng(0)
    inputs = pd.DataFrame(
        rng.normal(size=(rows_per_call, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    outputs = rng.random(rows_per_call)
    proba = None
    if probabilities:
        train = pd.DataFrame(rng.normal(size=(5000, N_COLUMNS)), columns=inputs.columns)
        model = LogisticRegression().fit(train, (train["f00"] + train["f01"] > 0).astype(int))

        def proba(frame):
            return pd.DataFrame(model.predict_proba(frame), columns=model.classes_)

    with tempfile.TemporaryDirectory() as root:
        # A queue and a spool budget that hold the whole run: the writer's own speed, not
        # the sampling.
        writer = PredictionLogWriter(
            root,
            max_queue_rows=total_rows + 1,
            max_spool_bytes=1 << 40,
            flush_seconds=3600,
            probabilities=proba,
        )
        start = time.perf_counter()
        for _ in range(total_rows // rows_per_call):
            writer.submit(inputs, outputs, latency_seconds=0.001)
        writer.spool_now(timeout=600)
        spooled = time.perf_counter() - start
        spool_cpu = _thread_cpu(writer._thread)
        writer.flush(timeout=600)
        written = time.perf_counter() - start
        roll_cpu = _thread_cpu(writer._roller)
        writer.close(timeout=600)
        stats = writer.stats()
    return {
        "spool_rows_per_second": stats["rows_spooled"] / spooled,
        "parquet_rows_per_second": stats["rows_written"] / written,
        # CPU seconds of each thread: rates a loaded machine changes less than the wall clock
        "spool_rows_per_cpu_second": stats["rows_spooled"] / spool_cpu,
        "roll_rows_per_cpu_second": stats["rows_written"] / roll_cpu,
        "stats": stats,
    }


def _roller_cpu(writer) -> float:
    """CPU seconds of the roller: its thread, and its process when it has one."""
    seconds = _thread_cpu(writer._roller)
    if writer.roller_pid is not None:
        seconds += _process_cpu(writer.roller_pid)
    return seconds


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, all its threads (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(thread) -> float:
    """CPU seconds a running thread has used (Linux, macOS)."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _run(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="1-row calls per model")
    parser.add_argument(
        "--large-calls",
        type=int,
        help="10,000-row calls per model (default: --calls / 20): 1,500 and more outrun "
        "the spool's budget on 2 cores, and show the shedding that follows",
    )
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="One process, 1,000 1-row calls, shorter writer runs: checks the direction only.",
    )
    parser.add_argument("--worker", choices=["predict", "writer"])
    parser.add_argument("--rows-per-call", type=int, default=1000)
    parser.add_argument("--total-rows", type=int, default=1_000_000)
    parser.add_argument("--writer-probabilities", choices=["true", "false"], default="true")
    parser.add_argument(
        "--probabilities",
        choices=["true", "false"],
        default="true",
        help="Whether the wrapped model's writer logs class probabilities (a second model pass).",
    )
    parser.add_argument(
        "--roller",
        choices=["process", "thread"],
        default="process",
        help="Where the served model's log is rolled (MLFLOW_OBSERVE_ROLLER); default: process.",
    )
    args = parser.parse_args()
    if args.quick:
        args.calls, args.processes = 1000, 1
    if args.large_calls is None:
        args.large_calls = max(args.calls // 20, 20)
    probabilities = args.probabilities
    if args.worker == "predict":
        os.environ["MLFLOW_OBSERVE_LOG_PROBABILITIES"] = args.probabilities
        os.environ["MLFLOW_OBSERVE_ROLLER"] = args.roller
        print(json.dumps(worker_predict(args.calls, args.large_calls)))
        return
    if args.worker == "writer":
        print(
            json.dumps(
                worker_writer(
                    args.rows_per_call, args.total_rows, args.writer_probabilities == "true"
                )
            )
        )
        return

    predicts = [
        _run(
            [
                "--worker",
                "predict",
                "--calls",
                str(args.calls),
                "--large-calls",
                str(args.large_calls),
                "--probabilities",
                probabilities,
                "--roller",
                args.roller,
            ]
        )
        for _ in range(args.processes)
    ]
    writers = {
        rows: [
            _run(
                [
                    "--worker",
                    "writer",
                    "--rows-per-call",
                    str(rows),
                    "--total-rows",
                    str(total),
                    "--writer-probabilities",
                    probabilities,
                ]
            )
            for _ in range(args.processes)
        ]
        for rows, total in (
            ((10_000, 1_000_000), (1, 50_000))
            if args.quick
            else ((10_000, 4_000_000), (1, 200_000))
        )
    }

    print(
        f"{args.processes} processes; medians over processes of per-call medians / p99; "
        f"probabilities logged: {probabilities}; roller: {args.roller} "
        f"(a process in every run: {all(p['roller_process'] for p in predicts)})\n"
    )
    print(
        "| predict | bare median ms | wrapped median ms | median overhead | bare p99 ms "
        "| wrapped p99 ms | p99 overhead | rows logged / offered | shed by sampling |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in ("1", "10000"):

        def med(name, stat, rows=rows):
            return statistics.median(p[rows][name][stat] for p in predicts) * 1000

        def ratio(stat, rows=rows):
            return statistics.median(
                p[rows]["wrapped"][stat] / p[rows]["bare"][stat] - 1 for p in predicts
            )

        logged = statistics.median(p[rows]["logged"] / p[rows]["offered"] for p in predicts)
        shed = statistics.median(p[rows]["sampled_out"] / p[rows]["offered"] for p in predicts)
        print(
            f"| {int(rows):,} row{'s' if rows != '1' else ''} | {med('bare', 'median'):.3f} | "
            f"{med('wrapped', 'median'):.3f} | {ratio('median'):+.1%} | {med('bare', 'p99'):.3f} "
            f"| {med('wrapped', 'p99'):.3f} | {ratio('p99'):+.1%} | {logged:.3f} | {shed:.1%} |"
        )
    print(
        "\n| predict | rows offered | rows spooled | rows logged | shed by sampling "
        "| spool backlog at the end of the calls | roller caught up in | rows spooled per "
        "writer-thread CPU second | roller CPU seconds per spooled row |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in ("1", "10000"):

        def mid(key, rows=rows):
            return statistics.median(p[rows][key] for p in predicts)

        spool_cpu = statistics.median(
            p[rows]["spooled"] / max(p[rows]["writer_cpu"], 1e-9) for p in predicts
        )
        roller_per_row = statistics.median(
            p[rows]["roller_cpu"] / max(p[rows]["spooled"], 1) for p in predicts
        )
        print(
            f"| {int(rows):,} row{'s' if rows != '1' else ''} | {mid('offered'):,.0f} "
            f"| {mid('spooled'):,.0f} | {mid('logged'):,.0f} "
            f"| {statistics.median(p[rows]['sampled_out'] / p[rows]['offered'] for p in predicts):.1%} "
            f"| {mid('backlog_bytes') / 2**20:,.0f} MiB | {mid('drain_seconds'):.1f} s "
            f"| {spool_cpu:,.0f} | {roller_per_row * 1e6:.2f} us |"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    for rows in ("1", "10000"):
        bare_rate = statistics.median(int(rows) / p[rows]["bare"]["median"] for p in predicts)
        print(f"\nbare model, {int(rows):,}-row calls: {bare_rate:,.0f} rows/s")
    print(f"\nwriter stats after the predict run (first process): {predicts[0]['writer_stats']}")
    print(f"\nroller's class probabilities: {probabilities}")
    for rows, runs in writers.items():
        spool = statistics.median(w["spool_rows_per_second"] for w in runs)
        parquet = statistics.median(w["parquet_rows_per_second"] for w in runs)
        spool_cpu = statistics.median(w["spool_rows_per_cpu_second"] for w in runs)
        roll_cpu = statistics.median(w["roll_rows_per_cpu_second"] for w in runs)
        print(
            f"writer, calls of {rows:,} row{'s' if rows > 1 else ''} x {N_COLUMNS} numeric "
            f"columns: {spool:,.0f} rows/s into the spool, {parquet:,.0f} rows/s into Parquet "
            f"(per CPU second of its thread: spool {spool_cpu:,.0f} rows, roll {roll_cpu:,.0f})"
        )


if __name__ == "__main__":
    main()
