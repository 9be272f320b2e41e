"""A streamed window's peak memory does not grow with the window (1M against 4M rows).

Each window is a one-file prediction log streamed by ``scan_logs`` (65,536 rows a
batch) in its own process, which reports its peak resident memory (``ru_maxrss``)
and the counting time.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# The window is counted in a fresh process, whose peak memory is measured.
pytestmark = [pytest.mark.server, pytest.mark.slow]

BATCH_ROWS = 65_536
# Peak resident memory may grow this much from 1M to 4M rows (allocator noise, a larger
# sample's bookkeeping); a window held in memory would add about 190 MB here, and
# Parquet's pre-buffered reads (the reader's default) added 155 MB.
MARGIN_BYTES = 40 * 2**20

STREAM = textwrap.dedent(
    """
    import json, resource, sys, time
    import mlflow_observe as mo

    path, baseline_path = sys.argv[1], sys.argv[2]
    baseline = mo.DataProfile.from_json(open(baseline_path).read())
    started = time.perf_counter()
    result = mo.compare(baseline, mo.scan_logs(path, batch_size=int(sys.argv[3])), n_jobs=1)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({"rows": result.current.n_rows, "peak": peak, "seconds": seconds}))
"""
)


def _chunk(rows, seed):
    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(i, 1.0, rows) for i in range(5)}
    columns["cat"] = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 8, rows).astype(np.int32)),
        pa.array([f"level_{k}" for k in range(8)]),
    )
    return pa.table(columns)


def _write_window(path, rows):
    chunk_rows = 500_000
    first = _chunk(min(rows, chunk_rows), seed=0)
    with pq.ParquetWriter(path, first.schema) as writer:
        writer.write_table(first, row_group_size=BATCH_ROWS)
        for seed, start in enumerate(range(chunk_rows, rows, chunk_rows), start=1):
            writer.write_table(
                _chunk(min(chunk_rows, rows - start), seed), row_group_size=BATCH_ROWS
            )


def _stream(path, baseline_path):
    done = subprocess.run(
        [sys.executable, "-c", STREAM, str(path), str(baseline_path), str(BATCH_ROWS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in kilobytes")
def test_peak_memory_is_flat_as_the_window_grows(tmp_path):
    import mlflow_observe as mo

    baseline = mo.build_profile(_chunk(50_000, seed=99).to_pandas())
    baseline_path = tmp_path / "baseline.json"
    baseline_path.write_text(baseline.to_json())
    measured = {}
    for rows in (1_000_000, 4_000_000):
        log = tmp_path / f"log-{rows}"
        (log / "date=2026-11-24").mkdir(parents=True)
        path = log / "date=2026-11-24" / "part.parquet"
        _write_window(path, rows)
        measured[rows] = _stream(log, baseline_path)
        assert measured[rows]["rows"] == rows
        path.unlink()
    small, large = measured[1_000_000], measured[4_000_000]
    # Time is not asserted: on a shared machine it says more about the load than the code
    # (benchmarks/scale.py measures it); it is in the message when memory fails.
    assert large["peak"] - small["peak"] < MARGIN_BYTES, measured
