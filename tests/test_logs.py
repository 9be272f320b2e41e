"""The prediction log: writer and reader on real Parquet files."""

import logging
import os
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


def test_full_queue_drops_and_counts_never_blocks(tmp_path, caplog):
    writer = PredictionLogWriter(
        str(tmp_path), max_queue_rows=10, flush_rows=10**9, flush_seconds=3600
    )
    with caplog.at_level(logging.WARNING):
        for _ in range(25):
            writer.submit(pd.DataFrame({"x": [1.0]}), [1], latency_seconds=0.0)
        writer.close()
    assert writer.stats()["rows_dropped_queue_full"] == 15
    assert sum("queue full" in r.message for r in caplog.records) == 1  # reported once
    assert len(read_logs(str(tmp_path))) == 10
    # the counters reach the server log too
    assert any("rows_dropped_queue_full=15" in r.getMessage() for r in caplog.records)


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


def test_event_time_stamps_replayed_rows(tmp_path):
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(
        pd.DataFrame({"x": [1.0, 2.0]}),
        [0, 1],
        latency_seconds=0.0,
        event_time="2026-11-20T08:30:00",
    )
    writer.submit(pd.DataFrame({"x": [3.0]}), [1], latency_seconds=0.0, event_time="not a time")
    writer.close()
    logs = read_logs(str(tmp_path))
    replayed = logs[logs["x"] < 3]
    assert (replayed["timestamp"] == pd.Timestamp("2026-11-20T08:30:00", tz="UTC")).all()
    assert logs.loc[logs["x"] == 3, "timestamp"].iloc[0] > pd.Timestamp("2026-11-26", tz="UTC")
    assert writer.stats()["rows_written"] == 3


def test_a_second_close_waits_for_the_first_ones_writing(tmp_path):
    import threading

    writer = PredictionLogWriter(str(tmp_path), flush_seconds=60)
    writer.submit(pd.DataFrame({"x": np.arange(50_000.0)}), np.zeros(50_000), latency_seconds=0.0)
    first = threading.Thread(target=writer.close)
    first.start()
    writer.close()  # returns only once the rows are written, like the first call
    assert writer.stats()["rows_written"] == 50_000
    first.join()
