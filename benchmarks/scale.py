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
* ``spark``: ``mlflow_observe.engines.spark.compare_spark`` on
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
        print(f"  file {index + 1}/{N_FILES} written ({time.perf_counter() - started:.0f} s)",
              flush=True)
    (DATA / "window.json").write_text(json.dumps({"rows": rows,
                                                  "columns": N_NUMERIC + N_CATEGORICAL}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write the reference profile and the window")
    make.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
