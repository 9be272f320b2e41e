"""Compaction and expiry of the prediction log, while writers write and readers read."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from mlflow_observe.logs.attributions import attributions_uri, write_attributions
from mlflow_observe.logs.compaction import compact_logs, expire_logs
from mlflow_observe.logs.reader import log_files, read_attributions, read_logs
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


def _attribute(root, *, share=0.25, files=30, seed=0):
    """Attributions for a uniform ``share`` of the log's rows, in ``files`` files per day.

    Written as the serving worker writes them (``write_attributions``); the
    attribution of a row is a known function of its inputs, so a join can be checked.
    """
    logs = read_logs(str(root))
    sampled = logs.sample(frac=share, random_state=seed).sort_values("timestamp")
    frame = pd.DataFrame(
        {
            "request_id": sampled["request_id"].to_numpy(),
            "timestamp": sampled["timestamp"].to_numpy(),
            "attribution_x": 0.5 * sampled["x"].to_numpy(),
            "attribution_w": -sampled["w"].to_numpy(),
            "explain_base_value": 1.0,
            "explain_rate": share,
            "explain_method": "exact",
            "explain_output": "prediction",
        }
    )
    for k, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        write_attributions(str(root), frame.iloc[part], name=f"{seed}w-{k}")
    return frame


def _attribution_files(root):
    folder = attributions_uri(str(root))
    return sorted(
        os.path.join(d, n)
        for d, _, names in os.walk(folder)
        for n in names
        if n.endswith(".parquet") and "_replaced" not in d
    )


def _reads_while(root, action, *, with_attributions=False, **window):
    """Read the log over and over while ``action`` runs; return the row counts and ids seen.

    With attributions: (rows, ids unique, rows with an attribution, attributions match x).
    """
    seen, done = [], threading.Event()

    def reader():
        while not done.is_set():
            logs = read_logs(str(root), with_attributions=with_attributions, **window)
            seen.append((len(logs), logs["request_id"].is_unique))
            if with_attributions:
                attributed = logs[logs["attribution_x"].notna()]
                seen[-1] += (
                    len(attributed),
                    bool((attributed["attribution_x"] == 0.5 * attributed["x"]).all()),
                )

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


def _sorted(frame):
    return frame.sort_values("request_id").reset_index(drop=True)


def test_attributions_are_compacted_with_the_log_and_join_the_same_during_and_after(tmp_path):
    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    total = _day_of_small_files(tmp_path, day, writers=2, flushes=20)
    attributions = _attribute(tmp_path, files=30)
    n_attributed = len(attributions)
    assert len(log_files(str(tmp_path))) == 40 and len(_attribution_files(tmp_path)) == 30
    # The stream beside the log is never read as log rows.
    assert not [f for f in log_files(str(tmp_path)) if "/attributions/" in f]
    assert "attribution_x" not in read_logs(str(tmp_path)).columns
    expected = _sorted(read_logs(str(tmp_path), with_attributions=True))
    assert expected["attribution_x"].notna().sum() == n_attributed
    result, seen = _reads_while(
        tmp_path, lambda: compact_logs(str(tmp_path)), with_attributions=True
    )
    # Every read during the compaction: every row once, every attribution joined to its row.
    assert seen and all(s == (total, True, n_attributed, True) for s in seen), set(seen)
    assert (result.days, result.files_merged, result.files_written, result.rows) == (
        1,
        40,
        1,
        total,
    )
    assert result.attributions is not None
    assert (
        result.attributions.days,
        result.attributions.files_merged,
        result.attributions.files_written,
        result.attributions.rows,
        result.attributions.rows_recovered,
    ) == (1, 30, 1, n_attributed, 0)
    assert [r["stream"] for r in result.to_records()] == ["log", "attributions"]
    assert result.metrics()["attributions/rows"] == n_attributed
    # One merged file a stream; the sources wait out their grace under _replaced/.
    assert len(log_files(str(tmp_path))) == 1
    merged = _attribution_files(tmp_path)
    assert len(merged) == 1 and os.path.basename(merged[0]).startswith("compact-")
    replaced = os.path.join(os.path.dirname(merged[0]), "_replaced")
    assert len(os.listdir(replaced)) == 30
    after = _sorted(read_logs(str(tmp_path), with_attributions=True))
    pd.testing.assert_frame_equal(after[expected.columns], expected, check_dtype=False)
    # Other engines: the log's rows once when the sibling streams' folders are left out (as
    # docs/serving.md says), and the attribution stream is a hive dataset of its own.
    ignore = [".", "_", "attributions", "labels"]
    log_dataset = ds.dataset(str(tmp_path), partitioning="hive", ignore_prefixes=ignore)
    assert log_dataset.count_rows() == total
    stream = ds.dataset(attributions_uri(str(tmp_path)), partitioning="hive")
    assert stream.count_rows() == n_attributed
    pd.testing.assert_frame_equal(
        _sorted(read_attributions(str(tmp_path)))[attributions.columns.drop("timestamp")],
        _sorted(attributions.drop(columns="timestamp")),
        check_dtype=False,
    )
    # Past the grace period, the next compaction removes both streams' sources.
    again = compact_logs(str(tmp_path), grace_seconds=0)
    assert (again.files_removed, again.attributions.files_removed) == (40, 30)
    assert not os.listdir(replaced)
    final = _sorted(read_logs(str(tmp_path), with_attributions=True))
    pd.testing.assert_frame_equal(final[expected.columns], expected, check_dtype=False)


def test_a_reader_that_listed_the_attribution_files_before_the_merge_still_joins_them(tmp_path):
    from mlflow_observe.logs import reader

    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    _day_of_small_files(tmp_path, day, writers=1, flushes=10)
    attributions = _attribute(tmp_path, share=0.5, files=10)
    listed = reader._listed_files(attributions_uri(str(tmp_path)), None, None)
    assert len(listed) == 10
    compact_logs(str(tmp_path))  # the listed files move under _replaced/ meanwhile
    assert not any(os.path.exists(p) for p in listed)
    from pyarrow import fs as pafs

    rows = sum(
        b.num_rows
        for b in reader._file_batches(
            pafs.LocalFileSystem(), listed, None, None, model=None, columns=None, batch_size=7
        )
    )
    assert rows == len(attributions)


def test_today_and_other_days_of_the_attributions_follow_the_log(tmp_path):
    """A day's attributions are compacted with that day: today's stay, as the log's do."""
    today = pd.Timestamp.now(tz="UTC").floor("D")
    for day in (today - pd.Timedelta(days=2), today):
        _day_of_small_files(tmp_path, day, writers=1, flushes=4)
    _attribute(tmp_path, share=1.0, files=8)
    days = sorted(os.listdir(attributions_uri(str(tmp_path))))
    assert days == [f"date={today - pd.Timedelta(days=2):%Y-%m-%d}", f"date={today:%Y-%m-%d}"]
    result = compact_logs(str(tmp_path))  # finished days only
    assert (result.days, result.attributions.days) == (1, 1)
    assert os.listdir(os.path.join(attributions_uri(str(tmp_path)), days[1])) != ["_replaced"]
    only = compact_logs(str(tmp_path), day=f"{today:%Y-%m-%d}", grace_seconds=0)
    assert (only.days, only.attributions.days) == (1, 1)
    assert only.attributions.files_merged >= 2 and only.attributions.files_written == 1
    assert len(_attribution_files(tmp_path)) == 2
    assert read_logs(str(tmp_path), with_attributions=True)["attribution_x"].notna().all()


def test_a_corrupt_attribution_file_is_reported_as_a_log_file_is(tmp_path, caplog):
    import logging

    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    total = _day_of_small_files(tmp_path, day, writers=1, flushes=6)
    attributions = _attribute(tmp_path, share=0.5, files=4)
    folder = os.path.dirname(_attribution_files(tmp_path)[0])
    bad = os.path.join(folder, "part-corrupt.parquet")
    with open(bad, "wb") as f:
        f.write(b"not parquet at all")
    # Read: skipped with the same warning that names it (the monitor puts it in the run's notes).
    with pytest.warns(UserWarning, match="Skipping unreadable prediction log file .*part-corrupt"):
        logs = read_logs(str(tmp_path), with_attributions=True)
    assert len(logs) == total and logs["attribution_x"].notna().sum() == len(attributions)
    # Compaction: the day is left as it is, with the warning the log's day gets; the log is done.
    with caplog.at_level(logging.WARNING, logger="mlflow_observe.logs.compaction"):
        result = compact_logs(str(tmp_path))
    assert f"Not compacting {folder}: part-corrupt.parquet is unreadable" in caplog.text
    assert result.files_written == 1 and result.attributions.files_written == 0
    assert len(_attribution_files(tmp_path)) == 5
    with pytest.warns(UserWarning, match="part-corrupt"):
        again = read_logs(str(tmp_path), with_attributions=True)
    assert again["attribution_x"].notna().sum() == len(attributions)


def test_expire_removes_the_attribution_days_with_the_log_days(tmp_path):
    today = pd.Timestamp.now(tz="UTC").floor("D")
    for age in (25, 5):  # the writer takes event times up to 30 days back
        _day_of_small_files(tmp_path, today - pd.Timedelta(days=age), writers=1, flushes=2)
    _attribute(tmp_path, share=1.0, files=2)
    old = f"{today - pd.Timedelta(days=25):%Y-%m-%d}"
    # An attribution day whose log day was expired before attributions expired with it.
    orphan = f"{today - pd.Timedelta(days=28):%Y-%m-%d}"
    os.makedirs(os.path.join(attributions_uri(str(tmp_path)), f"date={orphan}"))
    result = expire_logs(str(tmp_path), "20d")
    assert result.days == (old,) and result.attribution_days == (orphan, old)
    assert sorted(os.listdir(attributions_uri(str(tmp_path)))) == [
        f"date={today - pd.Timedelta(days=5):%Y-%m-%d}"
    ]
    logs = read_logs(str(tmp_path), with_attributions=True)
    assert len(logs) == 10 and logs["attribution_x"].notna().all()
    assert [r["stream"] for r in result.to_records()] == ["log", "attributions", "attributions"]
    # A log without attributions expires as before.
    assert expire_logs(str(tmp_path), "1d").attribution_days == (
        f"{today - pd.Timedelta(days=5):%Y-%m-%d}",
    )
    assert not os.listdir(attributions_uri(str(tmp_path)))


_KILLED_WRITER = """
import sys, time
import pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter

writer = PredictionLogWriter(sys.argv[1], flush_seconds=3600, spool_seconds=0.01, flush_rows=10**9)
for i in range(50):
    writer.submit(pd.DataFrame({"x": [float(i)]}), [0], latency_seconds=0.0, request_id=f"r{i}")
time.sleep(1.0)
print("spooled", flush=True)
time.sleep(600)
"""


def test_a_shared_spool_folder_is_never_recovered_into_the_attributions(tmp_path, monkeypatch):
    """With MLFLOW_OBSERVE_SPOOL_DIR, the log's spool is one folder whatever the location:
    reading or compacting the attribution stream must leave it to the log."""
    import signal

    root, spool = tmp_path / "log", tmp_path / "spool"
    monkeypatch.setenv("MLFLOW_OBSERVE_SPOOL_DIR", str(spool))
    now = pd.Timestamp.now(tz="UTC")
    write_attributions(  # the stream exists before the writer dies
        str(root),
        pd.DataFrame({"request_id": ["r0"], "timestamp": [now], "attribution_x": [0.0]}),
        name="first",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "spooled"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert [n for n in os.listdir(spool) if n.endswith(".arrows")]  # a dead writer's segment
    assert read_attributions(str(root))["request_id"].tolist() == ["r0"]
    assert [n for n in os.listdir(spool) if n.endswith(".arrows")]  # left for the log
    result = compact_logs(str(root), finished_only=False, grace_seconds=0)
    assert (result.rows_recovered, result.attributions.rows_recovered) == (50, 0)
    attributions = read_attributions(str(root))
    assert attributions["request_id"].tolist() == ["r0"] and "x" not in attributions.columns
    logs = read_logs(str(root), with_attributions=True)
    assert sorted(logs["request_id"]) == sorted(f"r{i}" for i in range(50))
    assert logs.set_index("request_id")["attribution_x"].notna().sum() == 1


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
    record = json.loads(done.stdout)
    assert (record["files_merged"], record["files_written"], record["attributions"]) == (9, 3, None)
    # Attributions of the oldest and newest days, two files each.
    for age in (40, 29):
        stamp = today - pd.Timedelta(days=age) + pd.Timedelta(hours=1)
        for k in range(2):
            write_attributions(
                str(tmp_path),
                pd.DataFrame({"request_id": [f"{age}-{k}"], "timestamp": [stamp], "a": [1.0]}),
                name=f"{age}-{k}",
            )
    done = _cli("logs", "compact", "--logs", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("log: 3 day(s): 0 files merged into 0 (0 rows)")
    assert lines[1] == (
        "attributions: 2 day(s): 4 files merged into 2 (4 rows), 0 replaced files removed"
    )
    done = _cli("logs", "expire", "--logs", str(tmp_path), "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"log: 2 day(s) removed: {today - pd.Timedelta(days=40):%Y-%m-%d}, "
        f"{today - pd.Timedelta(days=31):%Y-%m-%d}",
        f"attributions: 1 day(s) removed: {today - pd.Timedelta(days=40):%Y-%m-%d}",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "attributions",
        f"date={today - pd.Timedelta(days=29):%Y-%m-%d}",
    ]
    assert len(read_logs(str(tmp_path))) == 3
    assert _cli("logs", "expire", "--logs", str(tmp_path), "--older-than", "soon").returncode == 2
    done = _cli("logs", "expire", "--logs", str(tmp_path), "--older-than", "1d", "--output", "json")
    assert json.loads(done.stdout) == {
        "removed_days": [f"{today - pd.Timedelta(days=29):%Y-%m-%d}"],
        "removed_attribution_days": [f"{today - pd.Timedelta(days=29):%Y-%m-%d}"],
    }


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
