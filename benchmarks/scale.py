"""Drift at scale: a Parquet window larger than memory, streamed on one machine and on Spark.

    .venv/bin/python benchmarks/scale.py generate                  # 10M x 100 once (~7 GB)
    .venv/bin/python benchmarks/scale.py run --repeats 3           # streamed, then Spark
    .venv/bin/python benchmarks/scale.py generate --rows 2000000   # a smaller stated size

The data (in ``benchmarks/.scale-data/``, ignored by git): a reference of 1M
rows whose baseline profile is stored as JSON, and a window of ``--rows`` rows
in 20 Parquet files; 80 numeric columns (normals with shifted means and
scales) and 20 categorical ones (10 categories each, dictionary encoded). The
window shifts three columns (``num_00`` mean +0.5 sd, ``num_01`` scale x1.5,
``cat_00`` category frequencies reversed).

Contenders, each in its own process, rounds interleaved:

* ``stream``: ``mlflow_observe.compare`` (drift and integrity) over the window's
  Arrow record batches (``pyarrow.dataset``, 65,536 rows each, categorical
  columns read as dictionaries), both cores;
* ``spark``: ``mlflow_observe.compare`` (Spark engine) on
  ``spark.read.parquet(window)``, Spark local mode on both cores.

Memory: the largest resident memory of the whole process tree (the Python
driver, and for Spark the JVM and its Python workers), sampled every 0.2 s
from ``/proc``. Throughput: cell values (rows x columns) per second of wall
time, divided by the cores used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".scale-data"
N_NUMERIC, N_CATEGORICAL, N_CATEGORIES = 80, 20, 10
N_FILES = 20
REFERENCE_ROWS = 1_000_000
BATCH_ROWS = 65_536


# -- data -----------------------------------------------------------------------------------


def make_table(rows: int, seed: int, shifted: bool):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    arrays, names = [], []
    for i in range(N_NUMERIC):
        loc, scale = float(i % 10), 1.0 + (i % 7) / 5
        values = rng.normal(loc, scale, rows)
        if shifted and i == 0:
            values += 0.5 * scale
        if shifted and i == 1:
            values = loc + (values - loc) * 1.5
        arrays.append(pa.array(values))
        names.append(f"num_{i:02d}")
    labels = pa.array([f"level_{k}" for k in range(N_CATEGORIES)])
    weights = np.linspace(2.0, 0.2, N_CATEGORIES)
    for j in range(N_CATEGORICAL):
        p = weights[::-1] if (shifted and j == 0) else weights
        codes = rng.choice(N_CATEGORIES, rows, p=p / p.sum()).astype(np.int32)
        arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes), labels))
        names.append(f"cat_{j:02d}")
    return pa.Table.from_arrays(arrays, names=names)


def generate(rows: int) -> None:
    import pyarrow.parquet as pq

    import mlflow_observe as mo

    window = DATA / "window"
    window.mkdir(parents=True, exist_ok=True)
    for old in window.glob("*.parquet"):
        old.unlink()
    started = time.perf_counter()
    reference = make_table(REFERENCE_ROWS, seed=1, shifted=False).to_pandas()
    baseline = mo.build_profile(reference)
    (DATA / "baseline.json").write_text(baseline.to_json())
    del reference
    per_file = -(-rows // N_FILES)
    for index in range(N_FILES):
        n = min(per_file, rows - index * per_file)
        if n <= 0:
            break
        table = make_table(n, seed=100 + index, shifted=True)
        pq.write_table(table, window / f"part-{index:02d}.parquet", row_group_size=BATCH_ROWS * 4)
        print(
            f"  file {index + 1}/{N_FILES} written ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    (DATA / "window.json").write_text(
        json.dumps({"rows": rows, "columns": N_NUMERIC + N_CATEGORICAL})
    )


# -- measuring ------------------------------------------------------------------------------


def process_tree(root: int) -> set[int]:
    """``root`` and every process below it (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                continue
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        family.update(children)
        frontier.extend(children)
    return family


def resident_and_cpu(pid: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of one process."""
    with open(f"/proc/{pid}/statm") as handle:
        rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """The largest resident memory of this process tree, and the CPU time it used.

    Sampled every 0.2 s; CPU time is what each process had used when last seen,
    so that a busy machine's other work does not count, as wall time would.
    """

    def __enter__(self):
        self.peak, self._cpu, self._stop = 0, {}, threading.Event()
        self._start_cpu = sum(os.times()[:2])
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        total = 0
        for pid in process_tree(os.getpid()):
            try:
                rss, cpu = resident_and_cpu(pid)
            except (OSError, IndexError):
                continue
            total += rss
            if pid != os.getpid():
                self._cpu[pid] = max(self._cpu.get(pid, 0.0), cpu)
        self.peak = max(self.peak, total)

    def _loop(self):
        while not self._stop.wait(0.2):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        own = sum(os.times()[:2]) - self._start_cpu
        self.cpu_seconds = own + sum(self._cpu.values())


def window_files(n_files: int | None) -> list[str]:
    files = sorted(str(p) for p in (DATA / "window").glob("*.parquet"))
    return files[:n_files] if n_files else files


def count_rows(files) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def measure_stream(files, n_jobs):
    import pyarrow.parquet as pq

    import mlflow_observe as mo

    categorical = [f"cat_{j:02d}" for j in range(N_CATEGORICAL)]

    def batches():  # file by file, row group by row group: no read-ahead beyond a batch
        for path in files:
            # pre_buffer=False: pre-buffered row groups stay in memory until the file closes.
            parquet = pq.ParquetFile(path, read_dictionary=categorical, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=BATCH_ROWS)

    with PeakMemory() as memory:
        started = time.perf_counter()
        baseline = mo.DataProfile.from_json((DATA / "baseline.json").read_text())
        result = mo.compare(baseline, batches(), n_jobs=n_jobs)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": memory.cpu_seconds,
        "peak_bytes": memory.peak,
        "drifted": result.drift.drifted_columns,
        "rows": result.current.n_rows,
    }


def measure_spark(files, cores):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import mlflow_observe as mo

    with PeakMemory() as memory:
        started = time.perf_counter()
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            # The default 1 GB heap runs out reading two 100-column row groups at once.
            .config("spark.driver.memory", "3g")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        session_seconds = time.perf_counter() - started
        baseline = mo.DataProfile.from_json((DATA / "baseline.json").read_text())
        result = mo.compare(baseline, spark.read.parquet(*files))
        seconds = time.perf_counter() - started
    spark.stop()
    return {
        "seconds": seconds,
        "session_seconds": session_seconds,
        "cpu_seconds": memory.cpu_seconds,
        "peak_bytes": memory.peak,
        "drifted": result.drift.drifted_columns,
        "rows": result.current.n_rows,
    }


CONTENDERS = {
    "stream": lambda files: measure_stream(files, n_jobs=None),
    "stream-1core": lambda files: measure_stream(files, n_jobs=1),
    "spark": lambda files: measure_spark(files, cores=2),
}
CORES = {"stream": 2, "stream-1core": 1, "spark": 2}


def run(contenders, repeats, file_counts) -> dict:
    results: dict = {}
    for n_files in file_counts:
        files = window_files(n_files)
        rows = count_rows(files)
        for round_ in range(repeats):
            for name in contenders:  # interleaved: A B C A B C ...
                done = subprocess.run(
                    [sys.executable, __file__, "measure", name, "--files", str(len(files))],
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    (DATA / f"failed-{name}-{rows}.log").write_text(done.stderr)
                    print(
                        f"  {name:<13} {rows:>10,} rows  round {round_ + 1}: failed "
                        f"(exit {done.returncode}; stderr in {DATA.name}/failed-{name}-{rows}.log)",
                        flush=True,
                    )
                    continue
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                results.setdefault(f"{name} {rows}", []).append(measured)
                print(
                    f"  {name:<13} {rows:>10,} rows  round {round_ + 1}: "
                    f"{measured['seconds']:7.1f} s ({measured['cpu_seconds']:.1f} s CPU)  "
                    f"{measured['peak_bytes'] / 2**30:5.2f} GiB  {measured['drifted']}",
                    flush=True,
                )
    return results


def summarise(results) -> list[dict]:
    rows = []
    columns = N_NUMERIC + N_CATEGORICAL
    for key, runs in results.items():
        name, n_rows = key.rsplit(" ", 1)
        if not runs:
            continue
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu_seconds = statistics.median(r["cpu_seconds"] for r in runs)
        cells = int(n_rows) * columns
        rows.append(
            {
                "contender": name,
                "rows": int(n_rows),
                "rounds": len(runs),
                "median_seconds": round(seconds, 2),
                "median_cpu_seconds": round(cpu_seconds, 2),
                "million_cells_per_cpu_second": round(cells / cpu_seconds / 1e6, 1),
                "median_peak_gib": round(
                    statistics.median(r["peak_bytes"] for r in runs) / 2**30, 2
                ),
                "max_peak_gib": round(max(r["peak_bytes"] for r in runs) / 2**30, 2),
                "million_cells_per_second_per_core": round(cells / seconds / CORES[name] / 1e6, 1),
                "drifted": runs[0]["drifted"],
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write the reference profile and the window")
    make.add_argument("--rows", type=int, default=10_000_000)
    bench = commands.add_parser("run", help="measure the contenders, rounds interleaved")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument(
        "--contenders", nargs="+", default=["stream", "spark"], choices=sorted(CONTENDERS)
    )
    bench.add_argument(
        "--files",
        type=int,
        nargs="+",
        default=[N_FILES],
        help="window sizes, as numbers of the window's files (e.g. 2 8 20)",
    )
    one = commands.add_parser("measure", help="one measurement (used by run)")
    one.add_argument("contender", choices=sorted(CONTENDERS))
    one.add_argument("--files", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.rows)
    elif args.command == "measure":
        print(json.dumps(CONTENDERS[args.contender](window_files(args.files))))
    else:
        summary = summarise(run(args.contenders, args.repeats, args.files))
        name = "results-" + "-".join(args.contenders) + "-" + "-".join(map(str, args.files))
        (DATA / f"{name}.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
