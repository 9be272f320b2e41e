"""The prediction log: writer and reader on real Parquet files."""

import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlflow_observe.logs.reader import LogWindowError, log_files, log_labels, read_logs
from mlflow_observe.logs.writer import PredictionLogWriter


def _write(root, calls=50, rows=2, **kwargs):
    writer = PredictionLogWriter(str(root), model_name="churn", model_version="3", **kwargs)
    for i in range(calls):
        inputs = pd.DataFrame({"x": np.arange(rows, dtype=float) + i, "plan": ["a"] * rows})
        writer.submit(inputs, np.full(rows, i), latency_seconds=0.002)
    assert writer.flush()
    return writer


def test_round_trip_in_time_order_with_unique_ids(tmp_path):
    writer = _write(tmp_path, calls=50, rows=2)
    assert writer.stats()["rows_written"] == 100
    logs = read_logs(str(tmp_path))
    assert len(logs) == 100 and logs["request_id"].is_unique
    assert logs["timestamp"].is_monotonic_increasing
    assert str(logs["timestamp"].dt.tz) == "UTC"
    assert logs["prediction"].tolist() == [i for i in range(50) for _ in range(2)]
    assert logs["x"].tolist() == [float(i + r) for i in range(50) for r in range(2)]
    assert set(logs["model_name"]) == {"churn"} and (logs["latency_ms"] == 2.0).all()
    assert logs.groupby("batch_id").size().eq(2).all()
    writer.close()


def test_files_are_partitioned_by_day_and_temporary_files_ignored(tmp_path):
    _write(tmp_path).close()
    files = log_files(str(tmp_path))
    assert files and all("/date=" in f and f.endswith(".parquet") for f in files)
    partition = os.path.dirname(files[0])
    Path(partition, ".part-half-written.parquet.tmp").write_bytes(b"PAR1junk")
    assert log_files(str(tmp_path)) == files


def test_window_bounds_and_model_filter(tmp_path):
    _write(tmp_path).close()
    now = pd.Timestamp.now(tz="UTC")
    assert (
        len(read_logs(str(tmp_path), start=now - pd.Timedelta("1h"), end=now + pd.Timedelta("1h")))
        == 100
    )
    assert len(read_logs(str(tmp_path), model="churn/3")) == 100
    with pytest.raises(LogWindowError, match="for model 'other'"):
        read_logs(str(tmp_path), model="other")
    with pytest.raises(LogWindowError, match="No predictions"):
        read_logs(str(tmp_path), start=now + pd.Timedelta(days=1))
    with pytest.raises(LogWindowError, match="is not before its end"):
        read_logs(str(tmp_path), start="2026-11-26", end="2026-11-25")
    with pytest.raises(LogWindowError, match="does not exist"):
        read_logs(str(tmp_path / "nope"))
    only = read_logs(str(tmp_path), columns=["x"])
    assert "plan" not in only.columns and "x" in only.columns


def test_corrupt_file_is_skipped_with_a_warning_naming_it(tmp_path):
    _write(tmp_path).close()
    partition = os.path.dirname(log_files(str(tmp_path))[0])
    bad = os.path.join(partition, "part-corrupt.parquet")
    Path(bad).write_bytes(b"not parquet at all")
    with pytest.warns(UserWarning, match="part-corrupt.parquet"):
        logs = read_logs(str(tmp_path))
    assert len(logs) == 100


def test_labels_join_and_the_later_label_wins(tmp_path):
    _write(tmp_path).close()
    logs = read_logs(str(tmp_path))
    ids = logs["request_id"]
    log_labels(str(tmp_path), pd.DataFrame({"request_id": ids[:10], "label": 1}))
    log_labels(str(tmp_path), pd.DataFrame({"request_id": ids[:4], "label": 0}))
    joined = read_logs(str(tmp_path), with_labels=True)
    assert joined["label"].iloc[:4].tolist() == [0] * 4
    assert joined["label"].iloc[4:10].tolist() == [1] * 6
    assert joined["label"].iloc[10:].isna().all()
    with pytest.raises(ValueError, match="needs the columns \\['label'\\]"):
        log_labels(str(tmp_path), pd.DataFrame({"request_id": ids[:1]}))


def test_an_overloaded_queue_sheds_load_by_recorded_uniform_sampling(tmp_path, caplog):
    # The writer sleeps through the whole burst: 4,000 one-row calls meet a 200-row queue.
    writer = PredictionLogWriter(
        str(tmp_path), max_queue_rows=200, flush_rows=10**9, spool_seconds=3600
    )
    with caplog.at_level(logging.WARNING):
        for i in range(4000):
            writer.submit(pd.DataFrame({"x": [float(i)]}), [i], latency_seconds=0.0)
        writer.close()
    stats = writer.stats()
    assert stats["rows_spooled"] + stats["rows_sampled_out"] == 4000  # every row accounted for
    assert stats["rows_written"] == stats["rows_spooled"] <= 200
    assert stats["rows_dropped_queue_full"] == 0
    logs = read_logs(str(tmp_path))
    weights = logs["sample_weight"]
    assert set(weights) <= {2.0**k for k in range(1, 13)}
    # Horvitz-Thompson: the weights estimate the traffic (sd ~ 250 here), and both halves
    # of the burst are there in proportion, not the first rows only.
    assert 2750 < weights.sum() < 5250
    late = weights[logs["x"] >= 2000].sum() / weights.sum()
    assert 0.3 < late < 0.7
    assert sum("sampling calls uniformly" in r.message for r in caplog.records) == 1
    assert any("rows_sampled_out=" in r.getMessage() for r in caplog.records)


def test_a_call_larger_than_the_queue_is_dropped_and_counted(tmp_path):
    writer = PredictionLogWriter(str(tmp_path), max_queue_rows=10)
    writer.submit(pd.DataFrame({"x": np.arange(11.0)}), np.zeros(11), latency_seconds=0.0)
    writer.close()
    assert writer.stats()["rows_dropped_queue_full"] == 11
    assert writer.stats()["rows_sampled_out"] == 0


def test_a_call_that_still_does_not_fit_after_one_halving_is_halved_again_not_dropped(tmp_path):
    # Worked example with the coins fixed: 4 one-row calls fill a 4-row queue. The fifth
    # halves the rate (1/2) and keeps all four queued calls and itself: still no room.
    # The second halving (rate 1/4) keeps two of the four and the call: 3 rows, weight 4.
    writer = PredictionLogWriter(
        str(tmp_path), max_queue_rows=4, flush_rows=10**9, spool_seconds=3600
    )
    coins = iter([0.1] * 5 + [0.9, 0.1, 0.9, 0.1] + [0.1])
    writer._random = lambda: next(coins)
    for i in range(5):
        writer.submit(pd.DataFrame({"x": [float(i)]}), [i], latency_seconds=0.0)
    assert next(coins, None) is None  # every coin was used: two halvings happened
    writer.close()
    stats = writer.stats()
    assert stats["rows_dropped_queue_full"] == 0
    assert stats["rows_sampled_out"] == 2
    logs = read_logs(str(tmp_path)).sort_values("x")
    assert logs["x"].tolist() == [1.0, 3.0, 4.0]
    assert logs["sample_weight"].tolist() == [4.0, 4.0, 4.0]


def test_wide_calls_meet_the_queue_s_byte_bound_and_shed_by_recorded_sampling(tmp_path):
    # 400 columns x 50 rows = 160 kB a call (8 bytes a value): the rows bound (1,000,000)
    # would let 20,000 such calls wait; the byte bound lets 4.
    budget = 4 * 8 * 50 * 400
    writer = PredictionLogWriter(
        str(tmp_path), max_queue_bytes=budget, flush_rows=10**9, spool_seconds=3600
    )
    writer._random = random.Random(0).random
    frame = pd.DataFrame(np.ones((50, 400)), columns=[f"c{j}" for j in range(400)])
    for i in range(200):
        writer.submit(frame, np.full(50, i), latency_seconds=0.0)
        assert writer._queued_bytes <= budget
    writer.close()
    stats = writer.stats()
    assert stats["rows_spooled"] + stats["rows_sampled_out"] == 200 * 50
    assert stats["rows_dropped_queue_full"] == 0
    assert stats["rows_sampled_out"] > 0
    logs = read_logs(str(tmp_path), columns=["prediction", "sample_weight"])
    assert len(logs) == stats["rows_written"] == stats["rows_spooled"]
    assert logs["sample_weight"].min() >= 1.0
    # Every call kept is whole: its 50 rows share one weight.
    assert (logs.groupby("prediction")["sample_weight"].nunique() == 1).all()
    assert (logs.groupby("prediction").size() == 50).all()


def test_a_call_larger_than_the_byte_bound_is_dropped_counted_and_named(tmp_path, caplog):
    writer = PredictionLogWriter(str(tmp_path), max_queue_bytes=8 * 100 * 10)
    frame = pd.DataFrame(np.ones((101, 10)))
    with caplog.at_level(logging.WARNING):
        writer.submit(frame, np.zeros(101), latency_seconds=0.0)
        writer.close()
    stats = writer.stats()
    assert stats["rows_dropped_queue_full"] == 101 and stats["rows_sampled_out"] == 0
    assert stats["rows_written"] == 0
    assert any("max_queue_bytes" in r.getMessage() for r in caplog.records)


def test_half_the_byte_bound_wakes_the_writer_and_less_waits_for_the_tick(tmp_path):
    frame = pd.DataFrame(np.ones((1000, 20)))
    waking = PredictionLogWriter(
        str(tmp_path / "a"), max_queue_bytes=2 * 8 * 1000 * 20, spool_seconds=3600
    )
    waiting = PredictionLogWriter(
        str(tmp_path / "b"), max_queue_bytes=4 * 8 * 1000 * 20, spool_seconds=3600
    )
    waking.submit(frame, np.zeros(1000), latency_seconds=0.0)
    waiting.submit(frame, np.zeros(1000), latency_seconds=0.0)
    deadline = time.monotonic() + 20
    while waking.stats()["rows_spooled"] < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waking.stats()["rows_spooled"] == 1000
    assert waiting.stats()["rows_spooled"] == 0  # a quarter of its bound: the tick's
    assert waiting.spool_now(20)
    assert waiting.stats()["rows_spooled"] == 1000
    waking.close()
    waiting.close()


def test_calls_of_several_schemas_taken_at_once_keep_their_rows_and_order(tmp_path):
    # One spool cycle takes calls of two schemas, interleaved: the calls of a schema are
    # written together, and a change of schema starts a new segment each time.
    writer = PredictionLogWriter(str(tmp_path), flush_rows=10**9, spool_seconds=3600)
    for i in range(6):
        if i % 3 == 2:
            frame = pd.DataFrame({"x": np.full(1000, float(i)), "s": ["t"] * 1000})
        else:
            frame = pd.DataFrame({"x": np.full(1000, float(i))})
        writer.submit(frame, np.full(1000, i), latency_seconds=0.0, request_id=f"call{i}")
    writer.close()
    logs = read_logs(str(tmp_path))
    assert writer.stats()["rows_written"] == len(logs) == 6000
    for i in range(6):
        rows = logs[logs["prediction"] == i]
        assert len(rows) == 1000 and (rows["x"] == float(i)).all()
        assert sorted(rows["request_id"]) == sorted(f"call{i}-{r}" for r in range(1000))
    assert logs.loc[logs["prediction"] == 2, "s"].eq("t").all()
    assert logs.loc[logs["prediction"] == 0, "s"].isna().all()


def test_large_calls_taken_together_keep_their_rows_and_an_odd_one_costs_nothing(tmp_path):
    # Large calls of the same columns are converted together, a chunk a call; one whose
    # columns' types differ (integers among floats) makes the group fall back to call by
    # call, and every row of every call is logged as given.
    rng = np.random.default_rng(0)
    floats = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["a", "b", "c"])
    ints = pd.DataFrame(rng.integers(0, 5, size=(1000, 3)), columns=["a", "b", "c"])
    calls = [floats, floats * 2, ints, floats * 3, floats.iloc[:10], floats * 4, ints + 1]
    writer = PredictionLogWriter(str(tmp_path), flush_rows=10**9, spool_seconds=3600)
    for i, frame in enumerate(calls):
        writer.submit(frame, np.full(len(frame), i), latency_seconds=0.0, request_id=f"c{i}")
    writer.close()
    stats = writer.stats()
    assert stats["rows_dropped_write_failed"] == 0
    logs = read_logs(str(tmp_path))
    assert len(logs) == stats["rows_written"] == sum(len(f) for f in calls)
    for i, frame in enumerate(calls):
        rows = logs[logs["prediction"] == i]
        ids = [f"c{i}-{r}" for r in range(len(frame))] if len(frame) > 1 else [f"c{i}"]
        assert rows["request_id"].tolist() == ids
        np.testing.assert_array_equal(rows[["a", "b", "c"]].to_numpy(), frame.to_numpy())


def test_unwritable_log_location_is_reported_once_and_counted(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    writer = PredictionLogWriter(str(blocker / "logs"), flush_rows=1)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            writer.submit(pd.DataFrame({"x": [1.0]}), [1], latency_seconds=0.0)
            writer.flush()
    assert writer.stats()["rows_dropped_write_failed"] == 5
    assert writer.stats()["rows_written"] == 0
    assert sum("Could not write the prediction log" in r.message for r in caplog.records) == 1
    writer.close()


def test_bad_inputs_never_raise_from_submit(tmp_path):
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(object(), [1], latency_seconds=0.0)  # no len(): counted nowhere, no raise
    writer.submit([[1.0, 2.0]], [1], latency_seconds=0.0)  # arrays are logged as input_<i>
    writer.close()
    assert read_logs(str(tmp_path))[["input_0", "input_1"]].values.tolist() == [[1.0, 2.0]]


@pytest.mark.server
def test_rows_are_flushed_when_the_process_exits(tmp_path):
    import subprocess
    import sys

    script = (
        "import pandas as pd\n"
        "from mlflow_observe.logs.writer import PredictionLogWriter\n"
        f"writer = PredictionLogWriter({str(tmp_path)!r}, flush_seconds=3600, flush_rows=10**9)\n"
        "for i in range(7):\n"
        "    writer.submit(pd.DataFrame({'x': [float(i)]}), [i], latency_seconds=0.0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert read_logs(str(tmp_path))["x"].tolist() == [float(i) for i in range(7)]


def test_caller_request_ids_and_file_uris(tmp_path):
    writer = PredictionLogWriter(f"file://{tmp_path}")
    writer.submit(pd.DataFrame({"x": [1.0]}), [1], latency_seconds=0.0, request_id="order-1")
    writer.submit(
        pd.DataFrame({"x": [1.0, 2.0]}), [1, 0], latency_seconds=0.0, request_id="order-2"
    )
    writer.close()
    logs = read_logs(f"file://{tmp_path}")
    assert logs["request_id"].tolist() == ["order-1", "order-2-0", "order-2-1"]
    log_labels(f"file://{tmp_path}", pd.DataFrame({"request_id": ["order-1"], "label": [1]}))
    assert read_logs(str(tmp_path), with_labels=True)["label"].tolist()[0] == 1


def test_streamed_window_evaluates_like_the_whole(tmp_path, tracking_uri):
    import mlflow

    import mlflow_observe as mo
    from mlflow_observe.logs.reader import iter_log_batches

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "plan": rng.choice(["a", "b"], 3000)})
    with mlflow.start_run() as training:
        mo.log_baseline(reference)
    writer = PredictionLogWriter(str(tmp_path / "log"), flush_rows=500)
    for _ in range(30):
        part = pd.DataFrame({"x": rng.normal(0.5, 1, 100), "plan": rng.choice(["a", "b"], 100)})
        writer.submit(part, np.zeros(100), latency_seconds=0.0)
    writer.close()
    whole = mo.evaluate_drift(read_logs(str(tmp_path / "log")), baseline=training.info.run_id)
    with mlflow.start_run() as run:
        streamed = mo.evaluate_drift(
            iter_log_batches(str(tmp_path / "log"), batch_size=250), baseline=training.info.run_id
        )
    assert streamed.metrics == pytest.approx(whole.metrics)
    assert streamed.metrics["drift/x/wasserstein"] > 0.4
    assert streamed.metrics["integrity/n_extra_columns"] == 0.0
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert "observe.data.first_row" in tags and "drift_report.html" in [
        a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)
    ]


def test_event_time_stamps_replayed_rows_and_implausible_ones_are_recorded(tmp_path):
    now = pd.Timestamp.now(tz="UTC")
    replayed = (now - pd.Timedelta(days=3)).floor("min")
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(
        pd.DataFrame({"x": [1.0, 2.0]}),
        [0, 1],
        latency_seconds=0.0,
        event_time=replayed.tz_localize(None).isoformat(),  # naive means UTC
    )
    bad = ["not a time", "NaT", "9999-12-31", (now - pd.Timedelta(days=365)).isoformat()]
    bad.append((now + pd.Timedelta(days=2)).isoformat())
    for i, value in enumerate(bad):
        writer.submit(pd.DataFrame({"x": [10.0 + i]}), [1], latency_seconds=0.0, event_time=value)
    writer.close()
    logs = read_logs(str(tmp_path))
    assert len(logs) == 2 + len(bad)  # every prediction is logged
    assert (logs.loc[logs["x"] < 3, "timestamp"] == replayed).all()
    assert logs.loc[logs["x"] < 3, "event_time_rejected"].isna().all()
    rejected = logs[logs["x"] >= 10].sort_values("x")
    assert rejected["event_time_rejected"].tolist() == bad
    # stamped with the time they were received instead
    assert (
        rejected["timestamp"].between(now - pd.Timedelta("1min"), now + pd.Timedelta("1min")).all()
    )
    assert writer.stats()["event_times_rejected"] == len(bad)
    assert writer.stats()["rows_written"] == 2 + len(bad)
    # backfilling old events: no age limit
    old = PredictionLogWriter(str(tmp_path / "old"), max_event_age_days=None)
    old.submit(pd.DataFrame({"x": [1.0]}), [0], latency_seconds=0.0, event_time="2020-01-01")
    old.close()
    assert read_logs(str(tmp_path / "old"))["timestamp"].tolist() == [
        pd.Timestamp("2020-01-01", tz="UTC")
    ]


def test_naive_and_utc_timestamps_read_the_same_in_read_logs_and_scan_logs(tmp_path):
    from mlflow_observe.logs.reader import scan_logs

    folder = tmp_path / "date=2026-11-25"
    folder.mkdir()
    stamps = pd.to_datetime(["2026-11-25 10:00", "2026-11-25 11:00"])
    pd.DataFrame({"timestamp": stamps, "x": [1.0, 2.0]}).to_parquet(folder / "part-naive.parquet")
    pd.DataFrame(
        {"timestamp": stamps.tz_localize("UTC") + pd.Timedelta("30min"), "x": [3.0, 4.0]}
    ).to_parquet(folder / "part-utc.parquet")
    window = dict(start="2026-11-25T10:15", end="2026-11-25T11:45")
    read = read_logs(str(tmp_path), **window)
    scanned = pd.concat([b.to_pandas() for b in scan_logs(str(tmp_path), **window)])
    assert read["x"].tolist() == [3.0, 2.0, 4.0]
    assert sorted(scanned["x"]) == [2.0, 3.0, 4.0]
    assert str(read["timestamp"].dt.tz) == str(scanned["timestamp"].dt.tz) == "UTC"


def test_a_second_close_waits_for_the_first_ones_writing(tmp_path):
    import threading

    writer = PredictionLogWriter(str(tmp_path), flush_seconds=60)
    writer.submit(pd.DataFrame({"x": np.arange(50_000.0)}), np.zeros(50_000), latency_seconds=0.0)
    first = threading.Thread(target=writer.close)
    first.start()
    writer.close()  # returns only once the rows are written, like the first call
    assert writer.stats()["rows_written"] == 50_000
    first.join()


# -- names, spool and recovery ---------------------------------------------------------------


def test_two_pods_with_the_same_host_pid_and_start_second_never_collide(tmp_path, monkeypatch):
    import socket
    import time

    # What two Kubernetes replicas can share: a host name prefix, pid 1 and the start second.
    monkeypatch.setattr(
        socket, "gethostname", lambda: "churn-model-serving-deployment-7f9c8d6b5-x2k4p"
    )
    monkeypatch.setattr(os, "getpid", lambda: 1)
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.0)
    writers = [PredictionLogWriter(str(tmp_path), flush_rows=10) for _ in range(2)]
    for i in range(100):
        for w, writer in enumerate(writers):
            writer.submit(
                pd.DataFrame({"x": [float(i)]}), [w], latency_seconds=0.0, request_id=f"{w}-{i}"
            )
    for writer in writers:
        writer.close()
    logs = read_logs(str(tmp_path))
    assert len(logs) == 200 and logs["request_id"].is_unique
    assert sum(w.stats()["rows_written"] for w in writers) == 200
    names = [os.path.basename(f) for f in log_files(str(tmp_path))]
    assert len(set(names)) == len(names) >= 2


def _segment(spool, token, sequence, tables):
    from mlflow_observe.logs.spool import Segment

    segment = Segment(str(spool), token, sequence, tables[0].schema)
    for table in tables:
        segment.append(table)
    segment.close()
    return segment


def _rows(start, n, day="2026-11-20"):
    import pyarrow as pa

    return pa.table(
        {
            "request_id": [f"r{i}" for i in range(start, start + n)],
            "timestamp": pa.array(
                [pd.Timestamp(f"{day}T10:00", tz="UTC")] * n, pa.timestamp("us", tz="UTC")
            ),
            "x": np.arange(start, start + n, dtype=float),
        }
    )


def test_a_spool_rolled_but_not_deleted_is_recovered_once(tmp_path):
    from mlflow_observe.logs import spool as spool_module

    root, spool = tmp_path / "log", tmp_path / "log" / "_spool"
    segment = _segment(spool, "a" * 32, 1, [_rows(0, 30), _rows(30, 20, day="2026-11-21")])
    # The writer died after writing the Parquet files and before deleting the segment.
    name = spool_module.part_name(segment.token, segment.sequence)
    assert spool_module._write_parquet(segment.path, str(root), name) == 50
    os.close(segment.lock_fd)  # the process is gone: so is its lock
    assert os.path.exists(segment.path)
    logs = read_logs(str(root))  # the reader recovers the segment first
    assert sorted(logs["request_id"]) == sorted(f"r{i}" for i in range(50))
    assert not os.path.exists(segment.path)
    assert len(log_files(str(root))) == 2  # one file per day, rewritten in place


def test_a_torn_last_batch_is_left_out_and_a_live_segment_left_alone(tmp_path):
    from mlflow_observe.logs.spool import recover_spools

    root, spool = tmp_path / "log", tmp_path / "log" / "_spool"
    torn = _segment(spool, "b" * 32, 1, [_rows(0, 10), _rows(10, 10)])
    with open(torn.path, "r+b") as handle:  # the process died in the second append
        handle.truncate(os.path.getsize(torn.path) - 40)
    os.close(torn.lock_fd)
    live = _segment(spool, "c" * 32, 1, [_rows(100, 5)])  # its writer still holds the lock
    assert recover_spools(str(root)) == 10
    assert read_logs(str(root))["x"].tolist() == [float(i) for i in range(10)]
    assert os.path.exists(live.path)
    os.close(live.lock_fd)
    assert recover_spools(str(root)) == 5


def test_concurrent_recoveries_roll_each_segment_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from mlflow_observe.logs.spool import recover_spools

    root, spool = tmp_path / "log", tmp_path / "log" / "_spool"
    for k in range(40):
        segment = _segment(spool, f"{k:032x}", k, [_rows(10 * k, 10)])
        os.close(segment.lock_fd)
    with ThreadPoolExecutor(4) as pool:
        recovered = list(pool.map(lambda _: recover_spools(str(root)), range(4)))
    assert sum(recovered) == 400
    logs = read_logs(str(root))
    assert len(logs) == 400 and logs["request_id"].is_unique


def test_a_new_segment_not_yet_locked_is_left_to_its_writer_and_an_old_one_removed(tmp_path):
    from mlflow_observe.logs import spool as spool_module

    root, spool = tmp_path / "log", tmp_path / "log" / "_spool"
    spool.mkdir(parents=True)
    hidden = spool / ".{}-00000001.new".format("d" * 32)
    # A writer's new segment between its creation and its lock, as Segment makes it.
    fd = os.open(hidden, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        assert spool_module.recover_spools(str(root)) == 0
        assert hidden.exists()  # removing it here made the writer's rename fail
        aged = time.time() - spool_module.ABANDONED_AFTER_SECONDS - 1
        os.utime(hidden, (aged, aged))  # its writer died before the lock
        assert spool_module.recover_spools(str(root)) == 0
        assert not hidden.exists()
    finally:
        os.close(fd)


def test_a_segment_that_cannot_be_renamed_names_its_file_and_keeps_no_descriptor(tmp_path):
    import pyarrow as pa

    from mlflow_observe.logs.spool import Segment

    spool = tmp_path / "_spool"
    spool.mkdir()
    target = spool / "{}-00000001.arrows".format("e" * 32)
    target.mkdir()  # a directory where the segment goes: the rename fails
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match=r"\.e{32}-00000001\.new"):
        Segment(str(spool), "e" * 32, 1, pa.schema([("x", pa.float64())]))
    assert len(os.listdir("/proc/self/fd")) == before


_KILLED_WRITER = """
import sys, time
import pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter
writer = PredictionLogWriter(sys.argv[1], flush_seconds=float(sys.argv[2]), spool_seconds=0.05)
i = 0
while True:
    writer.submit(pd.DataFrame({"x": [float(i)] * 3}), [0, 1, 2], latency_seconds=0.0,
                  request_id=f"call{i}")
    print(i, time.monotonic(), flush=True)
    i += 1
    time.sleep(0.0005)
"""


@pytest.mark.parametrize("flush_seconds", [3600.0, 0.2])
def test_sigkill_loses_at_most_the_last_spool_interval_and_nothing_twice(tmp_path, flush_seconds):
    import signal
    import subprocess
    import sys
    import time

    for run in range(3):
        root = tmp_path / f"log{run}"
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(root), str(flush_seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        answered = []
        for line in child.stdout:
            i, at = line.split()
            answered.append((int(i), float(at)))
            if answered[-1][1] - answered[0][1] > 1.0 + 0.3 * run:
                break
        child.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        child.wait(timeout=30)
        logs = read_logs(str(root))
        assert logs["request_id"].is_unique  # nothing read twice
        calls = set(logs["request_id"].str.rsplit("-", n=1).str[0])
        assert calls <= {f"call{i}" for i in range(answered[-1][0] + 10)}
        # every call answered more than the bound (spool_seconds=0.05, plus scheduling) before
        # the kill is in the log, with all its rows
        old = {f"call{i}" for i, at in answered if at < killed - 0.5}
        assert len(old) > 100 and old <= calls
        assert logs.groupby(logs["request_id"].str.rsplit("-", n=1).str[0]).size().eq(3).all()


def test_sigterm_of_a_plain_process_writes_the_log_then_stops_it(tmp_path):
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time, pandas as pd\n"
        "from mlflow_observe.logs.writer import PredictionLogWriter, install_stop_handlers\n"
        "install_stop_handlers()\n"
        f"writer = PredictionLogWriter({str(tmp_path)!r}, flush_seconds=3600, spool_seconds=3600,"
        " flush_rows=10**9)\n"
        "for i in range(7):\n"
        "    writer.submit(pd.DataFrame({'x': [float(i)]}), [i], latency_seconds=0.0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    assert not os.path.exists(tmp_path / "_spool") or not os.listdir(tmp_path / "_spool")
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGTERM  # stopped by the signal, as before
    assert read_logs(str(tmp_path))["x"].tolist() == [float(i) for i in range(7)]
