"""What prediction logging costs: the wrapped model beside the bare inner pyfunc model.

    .venv/bin/python benchmarks/logging_overhead.py            # about 2 minutes
    .venv/bin/python benchmarks/logging_overhead.py --calls 2000

A scikit-learn logistic regression on 20 numeric columns is logged twice to a
temporary SQLite store: bare (``mlflow.sklearn``) and wrapped
(``mlflow_observe.log_model``). Both are loaded with ``mlflow.pyfunc.load_model``;
the wrapped one logs to a temporary directory. ``predict`` is timed call by call
on 1 row and on 10,000 rows, alternating bare and wrapped in blocks (A B A B ...),
and the medians and 99th percentiles compared. Then the writer alone: its
sustained throughput in rows per second, for calls of 1,000 rows and of 1 row.
Each measurement runs in ``--processes`` separate processes; the report gives
the median over them.
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


def worker_predict(calls: int) -> dict:
    with tempfile.TemporaryDirectory() as store:
        bare, wrapped, X = _models(store)
        results = {}
        for rows, n_calls in ((1, calls), (10_000, max(calls // 20, 20))):
            batch = X.sample(rows, replace=True, random_state=1).reset_index(drop=True)
            times = {"bare": [], "wrapped": []}
            for model in (bare, wrapped):  # warm up
                for _ in range(20):
                    model.predict(batch)
            done = 0
            while done < n_calls:
                block = min(BLOCK if rows == 1 else 5, n_calls - done)
                for name, model in (("bare", bare), ("wrapped", wrapped)):
                    for _ in range(block):
                        start = time.perf_counter()
                        model.predict(batch)
                        times[name].append(time.perf_counter() - start)
                done += block
            results[rows] = {
                name: {"median": float(np.median(t)), "p99": float(np.percentile(t, 99))}
                for name, t in times.items()
            }
        writer = wrapped.get_raw_model().log_writer
        writer.flush(120)
        results["writer_stats"] = writer.stats()
        return results


def worker_writer(rows_per_call: int, total_rows: int) -> dict:
    import pandas as pd

    from mlflow_observe.logs.writer import PredictionLogWriter

    rng = np.random.default_rng(0)
    inputs = pd.DataFrame(
        rng.normal(size=(rows_per_call, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    outputs = rng.random(rows_per_call)
    with tempfile.TemporaryDirectory() as root:
        writer = PredictionLogWriter(
            root, max_queue_rows=total_rows + 1, flush_rows=min(50_000, total_rows)
        )
        start = time.perf_counter()
        for _ in range(total_rows // rows_per_call):
            writer.submit(inputs, outputs, latency_seconds=0.001)
        writer.close(timeout=600)
        seconds = time.perf_counter() - start
        stats = writer.stats()
    return {"rows_per_second": stats["rows_written"] / seconds, "stats": stats}


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
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--worker", choices=["predict", "writer"])
    parser.add_argument("--rows-per-call", type=int, default=1000)
    parser.add_argument("--total-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.worker == "predict":
        print(json.dumps(worker_predict(args.calls)))
        return
    if args.worker == "writer":
        print(json.dumps(worker_writer(args.rows_per_call, args.total_rows)))
        return

    predicts = [
        _run(["--worker", "predict", "--calls", str(args.calls)]) for _ in range(args.processes)
    ]
    writers_1000 = [
        _run(["--worker", "writer", "--rows-per-call", "1000", "--total-rows", "1000000"])
        for _ in range(args.processes)
    ]
    writers_1 = [
        _run(["--worker", "writer", "--rows-per-call", "1", "--total-rows", "50000"])
        for _ in range(args.processes)
    ]

    print(f"{args.processes} processes; medians over processes of per-call medians / p99\n")
    print(
        "| predict | bare median ms | wrapped median ms | median overhead | bare p99 ms "
        "| wrapped p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for rows in ("1", "10000"):

        def med(name, stat, rows=rows):
            return statistics.median(p[rows][name][stat] for p in predicts) * 1000

        overhead = statistics.median(
            p[rows]["wrapped"]["median"] / p[rows]["bare"]["median"] - 1 for p in predicts
        )
        print(
            f"| {int(rows):,} row{'s' if rows != '1' else ''} | {med('bare', 'median'):.3f} | "
            f"{med('wrapped', 'median'):.3f} | {overhead:+.1%} | {med('bare', 'p99'):.3f} | "
            f"{med('wrapped', 'p99'):.3f} |"
        )
    stats = predicts[0]["writer_stats"]
    print(f"\nrows logged during the predict run (first process): {stats}")
    print(
        f"writer, calls of 1,000 rows x {N_COLUMNS} numeric columns: "
        f"{statistics.median(w['rows_per_second'] for w in writers_1000):,.0f} rows/s"
    )
    print(
        f"writer, calls of 1 row: "
        f"{statistics.median(w['rows_per_second'] for w in writers_1):,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
