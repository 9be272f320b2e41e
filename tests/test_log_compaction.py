"""Compaction and expiry of the prediction log, while writers write and readers read."""

import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from mlflow_observe.logs.compaction import compact_logs, expire_logs
from mlflow_observe.logs.reader import log_files, read_logs
from mlflow_observe.logs.writer import PredictionLogWriter

# Starts processes (servers, subprocesses): not in the fast subset.
pytestmark = pytest.mark.server


def _day_of_small_files(root, day, *, writers=4, flushes=40, rows=5):
    """What ``writers`` replicas flushing every few rows leave in one day partition."""
    stamp = (day + pd.Timedelta(hours=12)).isoformat()
    for w in range(writers):
        writer = PredictionLogWriter(str(root), flush_seconds=3600)
        for f in range(flushes):
            frame = pd.DataFrame({"x": np.arange(rows, dtype=float) + 1000 * f, "w": float(w)})
            writer.submit(frame, np.zeros(rows), latency_seconds=0.0, event_time=stamp)
            writer.flush()
        writer.close()
    return writers * flushes * rows


def _reads_while(root, action, **window):
    """Read the log over and over while ``action`` runs; return the row counts and ids seen."""
    seen, done = [], threading.Event()

    def reader():
        while not done.is_set():
            logs = read_logs(str(root), **window)
            seen.append((len(logs), logs["request_id"].is_unique))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = action()
    finally:
        done.set()
        thread.join(120)
    return result, seen


def test_a_day_of_small_files_ends_as_one_and_readers_never_see_a_row_twice(tmp_path):
    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    total = _day_of_small_files(tmp_path, day)
    before = log_files(str(tmp_path))
    assert len(before) == 160
    expected = read_logs(str(tmp_path)).sort_values("request_id").reset_index(drop=True)
    result, seen = _reads_while(tmp_path, lambda: compact_logs(str(tmp_path)))
    assert (result.files_merged, result.files_written, result.rows) == (160, 1, total)
    assert seen and all(n == total and unique for n, unique in seen)
    # The merged sources wait out the grace period under _replaced/, hidden from other engines.
    partition = os.path.dirname(before[0])
    assert len(os.listdir(os.path.join(partition, "_replaced"))) == 160
    assert len(log_files(str(tmp_path))) == 1
    after = read_logs(str(tmp_path)).sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after[expected.columns], expected, check_dtype=False)
    # Readable by other engines as a hive-partitioned dataset: every row once.
    dataset = ds.dataset(str(tmp_path), format="parquet", partitioning="hive")
    assert dataset.count_rows() == total
    # A later run removes the sources once their grace has passed.
    again = compact_logs(str(tmp_path), grace_seconds=0)
    assert again.files_removed == 160 and again.files_merged == 0
    assert len(read_logs(str(tmp_path))) == total


def test_a_reader_that_listed_the_files_before_the_merge_still_reads_each_row_once(tmp_path):
    from mlflow_observe.logs.reader import iter_log_batches

    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    total = _day_of_small_files(tmp_path, day, writers=2, flushes=10)
    batches = iter_log_batches(str(tmp_path), batch_size=7)
    first = next(batches)  # the files are listed, one is open
    compact_logs(str(tmp_path))  # the others move under _replaced/ meanwhile
    rows = first.num_rows + sum(b.num_rows for b in batches)
    assert rows == total


def test_compaction_while_a_writer_writes_today(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), flush_seconds=0.05, spool_seconds=0.01)
    stop = threading.Event()
    sent = []

    def write():
        i = 0
        while not stop.is_set():
            writer.submit(
                pd.DataFrame({"x": [float(i)]}), [0], latency_seconds=0.0, request_id=f"r{i}"
            )
            sent.append(f"r{i}")
            i += 1
            stop.wait(0.002)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(5):
            stop.wait(0.3)
            compact_logs(str(tmp_path), finished_only=False)
            logs = read_logs(str(tmp_path))
            assert logs["request_id"].is_unique
    finally:
        stop.set()
        thread.join(60)
        writer.close()
    logs = read_logs(str(tmp_path))
    assert sorted(logs["request_id"]) == sorted(sent)
    compact_logs(str(tmp_path), finished_only=False, grace_seconds=0)
    assert sorted(read_logs(str(tmp_path))["request_id"]) == sorted(sent)
    assert len(log_files(str(tmp_path))) <= 2


def _cli(*args):
    executable = os.path.join(os.path.dirname(sys.executable), "mlflow-observe")
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=300)


def test_logs_cli_compacts_and_expires(tmp_path):
    today = pd.Timestamp.now(tz="UTC").floor("D")
    for age in (40, 31, 29):
        folder = tmp_path / f"date={today - pd.Timedelta(days=age):%Y-%m-%d}"
        folder.mkdir()
        for k in range(3):
            pd.DataFrame(
                {"timestamp": [today - pd.Timedelta(days=age)], "x": [float(k)]}
            ).to_parquet(folder / f"part-{k}.parquet")
    done = _cli("logs", "compact", "--logs", str(tmp_path), "--output", "json")
    assert done.returncode == 0, done.stderr
    assert '"files_merged": 9' in done.stdout and '"files_written": 3' in done.stdout
    done = _cli("logs", "expire", "--logs", str(tmp_path), "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 day(s) removed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"date={today - pd.Timedelta(days=29):%Y-%m-%d}"
    ]
    assert len(read_logs(str(tmp_path))) == 3
    assert _cli("logs", "expire", "--logs", str(tmp_path), "--older-than", "soon").returncode == 2
    assert expire_logs(str(tmp_path), "1d") == [f"{today - pd.Timedelta(days=29):%Y-%m-%d}"]


def test_a_dataset_or_a_parquet_path_is_a_window(tmp_path, tracking_uri):
    import mlflow

    import mlflow_observe as mo

    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=4000), "plan": rng.choice(["a", "b"], 4000)})
    profile = mo.build_profile(reference)
    window = pd.DataFrame({"x": rng.normal(0.4, 1, 3000), "plan": rng.choice(["a", "b"], 3000)})
    for k in range(3):  # a hive-partitioned directory of three files
        folder = tmp_path / "window" / f"date=2026-11-2{k}"
        folder.mkdir(parents=True)
        window.iloc[k * 1000 : (k + 1) * 1000].to_parquet(folder / "part.parquet")
    whole = mo.compare(profile, window)
    for data in (
        str(tmp_path / "window"),
        ds.dataset(str(tmp_path / "window"), format="parquet"),
    ):
        counted = mo.compare(profile, data)
        assert counted.metrics() == whole.metrics()
    with mlflow.start_run():  # the log's date= partition column is bookkeeping, not a feature
        logged = mo.evaluate_drift(
            ds.dataset(str(tmp_path / "window"), partitioning="hive"), baseline=profile
        )
    assert logged.metrics["integrity/n_extra_columns"] == 0.0
    assert logged.metrics["drift/x/wasserstein"] == whole.metrics()["drift/x/wasserstein"]
