"""The slow work of the log at the roll, and stops that end in bounded time losing nothing.

The writer thread only spools; class probabilities and Parquet are the roller's. These
tests use real threads, real spool files and real processes stopped by real signals.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyarrow import ipc

from mlflow_observe.logs.reader import read_logs
from mlflow_observe.logs.writer import STOP_SECONDS, PredictionLogWriter


def _sigmoid_probabilities(frame):
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})


def _spooled_schema(root):
    spool = os.path.join(root, "_spool")
    [name] = [n for n in os.listdir(spool) if n.endswith(".arrows")]
    with pa.memory_map(os.path.join(spool, name)) as source:
        return ipc.open_stream(source).schema


def test_probabilities_are_the_rollers_work_on_the_inputs_as_given(tmp_path):
    seen = []

    def probabilities(frame):
        seen.append((threading.current_thread().name, list(frame.columns), len(frame)))
        return _sigmoid_probabilities(frame)

    root = str(tmp_path)
    writer = PredictionLogWriter(root, flush_seconds=3600, probabilities=probabilities)
    # A reserved name (logged as input_timestamp), a number as a name, text, odd values.
    for i in range(3):
        inputs = pd.DataFrame(
            {
                "x": [0.5 * i, -1.0, np.inf, np.nan, 2.0],
                "timestamp": np.arange(5.0),
                3: np.arange(5),
                "plan": ["a", "b", None, "a", "b"],
            }
        )
        writer.submit(inputs, np.zeros(5), latency_seconds=0.0)
    for i in range(10):
        inputs = pd.DataFrame({"x": [float(i)], "timestamp": [0.0], 3: [i], "plan": ["c"]})
        writer.submit(inputs, [1], latency_seconds=0.0)
    assert writer.spool_now(30)
    # Spooled as given: no model pass on the way to the spool.
    assert seen == []
    schema = _spooled_schema(root)
    assert not any(n.startswith("probability_") for n in schema.names)
    assert {"x", "input_timestamp", "3", "plan"} <= set(schema.names)
    writer.close()
    assert seen and {name for name, _, _ in seen} == {"mlflow-observe-log-roller"}
    assert all(columns == ["x", "timestamp", 3, "plan"] for _, columns, _ in seen)
    logs = read_logs(root)
    assert len(logs) == 25
    expected = 1.0 / (1.0 + np.exp(-logs["x"].to_numpy()))
    np.testing.assert_allclose(logs["probability_1"], expected)  # nan stays nan
    valid = logs["x"].notna()
    np.testing.assert_allclose((logs["probability_0"] + logs["probability_1"])[valid], 1.0)


def test_the_roller_gives_the_model_every_numeric_row_once_in_order_with_its_dtype(tmp_path):
    frames = []

    def probabilities(frame):
        frames.append(frame.copy())
        p = (frame["a"].to_numpy() % 10) / 10.0
        return pd.DataFrame({"no": 1.0 - p, "yes": p})

    writer = PredictionLogWriter(str(tmp_path), flush_seconds=3600, probabilities=probabilities)
    given = [
        pd.DataFrame({"a": np.arange(100) + 100 * i, "b": -np.arange(100) - 100 * i})
        for i in range(30)
    ]
    for frame in given:  # calls larger than a small call: one spool batch (chunk) each
        writer.submit(frame, np.zeros(100), latency_seconds=0.0)
    writer.close()
    seen = pd.concat(frames, ignore_index=True)
    expected = pd.concat(given, ignore_index=True)
    pd.testing.assert_frame_equal(seen, expected)  # int64 kept, one pass over every row
    logs = read_logs(str(tmp_path))
    np.testing.assert_allclose(logs["probability_yes"], (logs["a"] % 10) / 10.0)


_KILLED_WITH_PROBABILITIES = """
import sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter
def probabilities(frame):
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})
writer = PredictionLogWriter(sys.argv[1], model_name="churn", model_version="3",
                             flush_seconds=3600, probabilities=probabilities)
for i in range(4):
    writer.submit(pd.DataFrame({"x": np.arange(10.0) + 10 * i}), np.zeros(10),
                  latency_seconds=0.0)
assert writer.spool_now(30)
print("spooled", flush=True)
time.sleep(120)
"""


def test_rows_recovered_after_sigkill_get_probabilities_only_from_their_own_model(tmp_path):
    root = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WITH_PROBABILITIES, str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "spooled"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    for copy in ("by_reader", "by_other_model"):
        shutil.copytree(root, tmp_path / copy)

    # The next writer of the same model owes the rows their probabilities.
    same = PredictionLogWriter(
        str(root), model_name="churn", model_version="3", probabilities=_sigmoid_probabilities
    )
    same.close()
    assert same.stats()["rows_recovered"] == 40
    logs = read_logs(str(root))
    assert sorted(logs["x"]) == [float(i) for i in range(40)]
    np.testing.assert_allclose(logs["probability_1"], 1.0 / (1.0 + np.exp(-logs["x"])))

    # A reader, or a writer of another version, has not that model: no probabilities.
    by_reader = read_logs(str(tmp_path / "by_reader"))
    assert sorted(by_reader["x"]) == [float(i) for i in range(40)]
    assert "probability_1" not in by_reader.columns
    other = PredictionLogWriter(
        str(tmp_path / "by_other_model"),
        model_name="churn",
        model_version="4",
        probabilities=_sigmoid_probabilities,
    )
    other.close()
    assert other.stats()["rows_recovered"] == 40
    assert "probability_1" not in read_logs(str(tmp_path / "by_other_model")).columns


def _slow_probabilities(frame):
    time.sleep(0.3)  # a roller far behind the spool: a slow model on a busy machine
    return _sigmoid_probabilities(frame)


def test_close_during_a_long_roll_returns_by_its_deadline_and_loses_nothing(tmp_path):
    root = str(tmp_path)
    writer = PredictionLogWriter(
        root,
        flush_seconds=3600,
        roll_rows=10_000,
        max_queue_rows=400_000,  # the test is the roll, not the sampling
        probabilities=_slow_probabilities,
    )
    for i in range(30):
        writer.submit(
            pd.DataFrame({"x": np.arange(10_000.0) + 10_000 * i}),
            np.zeros(10_000),
            latency_seconds=0.0,
        )
    assert writer.spool_now(60)
    start = time.monotonic()
    writer.close(timeout=2.0)
    took = time.monotonic() - start
    stats = writer.stats()
    assert took < 3.0, took  # the deadline, and one batch's work past it at most
    assert stats["rows_spooled"] == 300_000
    assert stats["rolls_deferred"] > 0 and stats["rows_written"] < 300_000
    assert not writer._thread.is_alive() and not writer._roller.is_alive()
    # The next writer of the model rolls the rest, with its probabilities.
    following = PredictionLogWriter(root, probabilities=_sigmoid_probabilities)
    following.close(timeout=120)
    assert stats["rows_written"] + following.stats()["rows_recovered"] == 300_000
    logs = read_logs(root)
    assert len(logs) == 300_000 and logs["request_id"].is_unique
    assert np.array_equal(np.sort(logs["x"].to_numpy()), np.arange(300_000.0))
    assert logs["probability_1"].notna().all()


_STOPPED_MID_ROLL = """
import sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter, install_stop_handlers
install_stop_handlers()
def probabilities(frame):
    time.sleep(0.5)
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})
writer = PredictionLogWriter(sys.argv[1], flush_seconds=3600, roll_rows=10_000,
                             max_queue_rows=500_000, probabilities=probabilities)
for i in range(40):
    writer.submit(pd.DataFrame({"x": np.arange(10_000.0) + 10_000 * i}), np.zeros(10_000),
                  latency_seconds=0.0)
    if i == 35:
        assert writer.spool_now(60)
print("backlog", flush=True)
time.sleep(120)
"""


def test_sigterm_while_the_roller_is_far_behind_stops_in_bounded_time_losing_nothing(tmp_path):
    root = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-c", _STOPPED_MID_ROLL, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "backlog"
    start = time.monotonic()
    child.send_signal(signal.SIGTERM)
    # 40 rolls of 0.5 s wait: the stop may not take them all, only its deadline.
    assert child.wait(timeout=STOP_SECONDS + 20) == -signal.SIGTERM
    assert time.monotonic() - start < STOP_SECONDS + 5
    logs = read_logs(str(root))  # the reader rolls what the stop left in the spool
    assert len(logs) == 400_000 and logs["request_id"].is_unique
    assert np.array_equal(np.sort(logs["x"].to_numpy()), np.arange(400_000.0))
    rolled = logs["probability_1"].notna().sum() if "probability_1" in logs else 0
    assert 0 < rolled < 400_000  # some rolled with probabilities before the deadline


_SIGNALLED_HOLDING_THE_LOCK = """
import os, signal, sys, threading, time
import pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter, install_stop_handlers
stopped = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))  # a server's
install_stop_handlers()
writer = PredictionLogWriter(sys.argv[1], flush_seconds=3600, spool_seconds=3600,
                             flush_rows=10**9)
for i in range(5):
    writer.submit(pd.DataFrame({"x": [float(i)]}), [i], latency_seconds=0.0)
with writer._lock:  # as submit holds it, on the main thread of a plain script
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    print("handled inside", bool(stopped), flush=True)
# The next call lets go of the lock: the stop is handled then, and this call waits for
# the spool, as every call after a stop signal does.
writer.submit(pd.DataFrame({"x": [5.0]}), [5], latency_seconds=0.0)
print("handled after", bool(stopped), writer.stats()["rows_spooled"], flush=True)
# Two more signals, close together: each reaches the server's handler once.
def later():
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=later).start()
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.3)
print("twice", len(stopped), flush=True)
"""


def test_a_stop_signal_on_a_thread_holding_the_writers_lock_is_handled_once_it_lets_go(
    tmp_path,
):
    child = subprocess.run(
        [sys.executable, "-c", _SIGNALLED_HOLDING_THE_LOCK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == "handled inside False"  # waiting there would never have ended
    assert lines[1] == "handled after True 6"
    assert lines[2] == "twice 3"
    assert read_logs(str(tmp_path))["x"].tolist() == [float(i) for i in range(6)]


@pytest.mark.parametrize("budget", [0, 1 << 30])
def test_the_spool_budget_decides_whether_a_lagging_roller_sheds_load(tmp_path, budget):
    """A roller far behind: within the budget nothing is shed; with none left, sampling sheds."""
    writer = PredictionLogWriter(
        str(tmp_path),
        flush_seconds=0.05,
        roll_rows=10_000,
        # Room for 10 calls: a writer thread the machine leaves unscheduled for a while
        # does not shed, while one waiting for this roller (0.3 s a call) would.
        max_queue_rows=100_000,
        max_spool_bytes=budget,
        probabilities=_slow_probabilities,
    )
    for i in range(40):
        writer.submit(
            pd.DataFrame({"x": np.arange(10_000.0) + 10_000 * i}),
            np.zeros(10_000),
            latency_seconds=0.0,
        )
        time.sleep(0.01)
    assert writer.spool_now(60)
    stats = writer.stats()
    writer.close(timeout=120)
    logs = read_logs(str(tmp_path))
    if budget:
        assert stats["rows_sampled_out"] == 0 and stats["rows_spooled"] == 400_000
        assert len(logs) == 400_000 and (logs["sample_weight"] == 1).all()
    else:
        assert stats["rows_sampled_out"] > 0
        lost = stats["rows_sampled_out"] + stats["rows_dropped_queue_full"]
        assert len(logs) + lost == 400_000
        # What is kept stands for what was offered.
        assert logs["sample_weight"].max() > 1
