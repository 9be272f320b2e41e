"""Rolling the spool in a process of its own: the same rows as the roller thread, nothing lost.

Real roller processes (``serve_rolls`` behind a real socket pair, or the flavor's
the command of :func:`mlflow_observe.plugins.log_roller.roller_command`), real spool files and real signals.
"""

import logging
import os
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlflow_observe as mo
from mlflow_observe.logs.reader import read_logs
from mlflow_observe.logs.writer import STOP_SECONDS, PredictionLogWriter

pytestmark = pytest.mark.server  # starts processes

# A roller process whose model is a sigmoid of x, taking `delay` seconds a batch; it appends
# "<pid> <rows>" to `trace` for each batch, so that a test knows who computed what, and when.
_ROLLER = """
import os, socket, sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.roller import serve_rolls
from mlflow_observe.logs.writer import ProbabilityEnricher
os.setpriority(os.PRIO_PROCESS, 0, 10)
delay, trace = float(sys.argv[1]), sys.argv[2]
def probabilities(frame):
    with open(trace, "a") as f:
        f.write(f"{os.getpid()} {len(frame)}\\n")
    time.sleep(delay)
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})
channel = socket.socket(fileno=os.dup(0))
sys.exit(serve_rolls(channel, lambda identity: ProbabilityEnricher(probabilities, identity),
                     probabilities=True))
"""


def _roller(tmp_path, delay=0.0):
    trace = tmp_path / f"trace-{time.monotonic_ns()}"
    return [sys.executable, "-c", _ROLLER, str(delay), str(trace)], trace


def _sigmoid_probabilities(frame):
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})


def _traced(trace):
    """(pid, rows) of each batch the roller process gave its model."""
    if not trace.exists():
        return []
    return [tuple(map(int, line.split())) for line in trace.read_text().splitlines()]


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _alive(pid) -> bool:
    """Running (a zombie waiting for a dead parent's reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _calls():
    """Odd inputs: nan and inf, a number as a column name, text, one-row and larger calls."""
    for i in range(6):
        yield pd.DataFrame(
            {
                "x": [0.5 * i, -1.0, np.inf, np.nan, 2.0, -np.inf],
                3: np.arange(6) + i,
                "plan": ["a", "b", None, "a", "", "é"],
            }
        )
    for i in range(20):
        yield pd.DataFrame({"x": [float(i)], 3: [i], "plan": ["c"]})
    yield pd.DataFrame({"x": np.linspace(-5, 5, 3000), 3: np.arange(3000), "plan": "d"})


def _write(root, **options):
    writer = PredictionLogWriter(
        str(root), model_name="churn", model_version="3", flush_seconds=0.2, **options
    )
    for k, frame in enumerate(_calls()):
        writer.submit(frame, np.zeros(len(frame)), latency_seconds=0.001, request_id=f"r{k}")
        if k % 7 == 0:
            time.sleep(0.1)  # several segments
    writer.close(timeout=120)
    return writer


def test_rows_rolled_by_the_process_equal_the_roller_threads(tmp_path):
    command, trace = _roller(tmp_path)
    by_process = _write(
        tmp_path / "process", probabilities=_sigmoid_probabilities, roller_command=command
    )
    _write(tmp_path / "thread", probabilities=_sigmoid_probabilities)
    stats = by_process.stats()
    assert stats["roller_fallbacks"] == 0 and stats["roll_failures"] == 0
    assert stats["rows_written"] == stats["rows_spooled"] == 3056
    # The probabilities were the process's work, and it exited when the writer closed.
    pids = {pid for pid, _ in _traced(trace)}
    assert pids == {by_process._process_pid} and os.getpid() not in pids
    assert by_process._process.process.returncode == 0
    left = read_logs(str(tmp_path / "process")).sort_values("request_id", ignore_index=True)
    right = read_logs(str(tmp_path / "thread")).sort_values("request_id", ignore_index=True)
    assert len(left) == 3056 and left["request_id"].is_unique
    differ = ["batch_id", "timestamp", "date"]  # the writer's token and clock
    pd.testing.assert_frame_equal(
        left.drop(columns=differ, errors="ignore"), right.drop(columns=differ, errors="ignore")
    )
    expected = 1.0 / (1.0 + np.exp(-left["x"].to_numpy()))
    np.testing.assert_allclose(left["probability_1"], expected)  # nan stays nan, inf 0 or 1


def test_sigkill_of_the_roller_process_mid_roll_loses_and_duplicates_nothing(tmp_path, caplog):
    command, trace = _roller(tmp_path, delay=2.0)
    writer = PredictionLogWriter(
        str(tmp_path / "log"),
        flush_seconds=0.1,
        probabilities=_sigmoid_probabilities,
        roller_command=command,
    )
    for i in range(10):
        writer.submit(
            pd.DataFrame({"x": np.arange(1000.0) + 1000 * i}), np.zeros(1000), latency_seconds=0
        )
        time.sleep(0.05)
    assert _wait_for(lambda: _traced(trace))  # a roll is in the model's hands
    with caplog.at_level(logging.WARNING):
        os.kill(writer._process_pid, signal.SIGKILL)
        for i in range(10, 20):  # predictions go on
            writer.submit(
                pd.DataFrame({"x": np.arange(1000.0) + 1000 * i}),
                np.zeros(1000),
                latency_seconds=0,
            )
        writer.close(timeout=120)
    stats = writer.stats()
    assert stats["roller_fallbacks"] == 1
    assert sum("roller process is unavailable" in r.getMessage() for r in caplog.records) == 1
    assert stats["rows_written"] == stats["rows_spooled"] == 20_000
    logs = read_logs(str(tmp_path / "log"))
    assert len(logs) == 20_000 and logs["request_id"].is_unique
    assert np.array_equal(np.sort(logs["x"].to_numpy()), np.arange(20_000.0))
    # The thread rolled the killed process's segment again, with the probabilities.
    np.testing.assert_allclose(logs["probability_1"], 1.0 / (1.0 + np.exp(-logs["x"])))


def test_a_roller_process_alive_but_hung_in_its_model_is_replaced_by_the_thread(
    tmp_path, caplog, monkeypatch
):
    # Its heartbeat goes on while predict_proba never returns: the writer gives it up once
    # its roll makes no progress, kills it and rolls the segment itself, losing nothing.
    from mlflow_observe.logs import roller

    monkeypatch.setattr(roller, "STALLED_SECONDS", 3.0)
    command, trace = _roller(tmp_path, delay=3600)
    writer = PredictionLogWriter(
        str(tmp_path / "log"),
        flush_seconds=0.2,
        probabilities=_sigmoid_probabilities,
        roller_command=command,
    )
    frame = pd.DataFrame({"x": np.linspace(-3, 3, 500)})
    with caplog.at_level(logging.WARNING):
        writer.submit(frame, np.zeros(500), latency_seconds=0.001)
        assert _wait_for(lambda: _traced(trace), timeout=120)  # the process took the segment
        hung = _traced(trace)[0][0]
        assert _wait_for(lambda: writer.stats()["rows_written"] == 500, timeout=60)
    assert not _alive(hung)
    writer.close(timeout=60)
    stats = writer.stats()
    assert stats["roller_fallbacks"] == 1 and stats["roll_failures"] == 0
    assert any("rolled nothing for 3 s" in r.getMessage() for r in caplog.records)
    logs = read_logs(str(tmp_path / "log"))
    assert len(logs) == 500 and logs["request_id"].is_unique
    np.testing.assert_allclose(logs["probability_1"], 1.0 / (1.0 + np.exp(-logs["x"])))


@pytest.mark.parametrize(
    "command",
    [["/nonexistent/roller"], [sys.executable, "-c", "import sys; sys.exit(3)"]],
    ids=["cannot-start", "exits-at-once"],
)
def test_a_roller_process_that_fails_leaves_the_roll_to_the_thread(tmp_path, caplog, command):
    with caplog.at_level(logging.WARNING):
        writer = _write(tmp_path, probabilities=_sigmoid_probabilities, roller_command=command)
    stats = writer.stats()
    assert stats["roller_fallbacks"] == 1 and stats["rows_written"] == 3056
    assert sum("roller process is unavailable" in r.getMessage() for r in caplog.records) == 1
    logs = read_logs(str(tmp_path))
    assert len(logs) == 3056 and logs["request_id"].is_unique
    np.testing.assert_allclose(logs["probability_1"], 1.0 / (1.0 + np.exp(-logs["x"])))


def test_close_during_a_long_roll_in_the_process_returns_by_its_deadline(tmp_path):
    command, trace = _roller(tmp_path, delay=0.3)
    root = str(tmp_path / "log")
    writer = PredictionLogWriter(
        root,
        flush_seconds=3600,
        roll_rows=10_000,
        max_queue_rows=400_000,
        probabilities=_sigmoid_probabilities,
        roller_command=command,
    )
    for i in range(30):
        writer.submit(
            pd.DataFrame({"x": np.arange(10_000.0) + 10_000 * i}),
            np.zeros(10_000),
            latency_seconds=0.0,
        )
    assert writer.spool_now(60)
    assert _wait_for(lambda: _traced(trace))  # the process is rolling
    start = time.monotonic()
    writer.close(timeout=3.0)
    took = time.monotonic() - start
    stats = writer.stats()
    assert took < 3.0 + 3.0, took  # the deadline, and a margin for a busy machine
    assert stats["rows_spooled"] == 300_000
    assert stats["rolls_deferred"] > 0 and 0 < stats["rows_written"] < 300_000
    assert not writer._roller.is_alive()
    assert writer._process.process.returncode is not None  # reaped: no zombie
    following = PredictionLogWriter(root, probabilities=_sigmoid_probabilities)
    following.close(timeout=120)
    assert stats["rows_written"] + following.stats()["rows_recovered"] == 300_000
    logs = read_logs(root)
    assert len(logs) == 300_000 and logs["request_id"].is_unique
    assert logs["probability_1"].notna().all()


@pytest.mark.parametrize("budget", [0, 1 << 30])
def test_the_spool_budget_still_decides_whether_a_lagging_process_sheds_load(tmp_path, budget):
    command, _ = _roller(tmp_path, delay=0.3)
    writer = PredictionLogWriter(
        str(tmp_path / "log"),
        flush_seconds=0.05,
        roll_rows=10_000,
        max_queue_rows=30_000,
        max_spool_bytes=budget,
        probabilities=_sigmoid_probabilities,
        roller_command=command,
    )
    assert _wait_for(lambda: writer.roller_pid is not None, timeout=300)  # loading, at niceness 10
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
    logs = read_logs(str(tmp_path / "log"))
    assert writer.stats()["roller_fallbacks"] == 0
    if budget:
        assert stats["rows_sampled_out"] == 0 and stats["rows_spooled"] == 400_000
        assert len(logs) == 400_000 and (logs["sample_weight"] == 1).all()
    else:
        assert stats["rows_sampled_out"] > 0
        lost = stats["rows_sampled_out"] + stats["rows_dropped_queue_full"]
        assert len(logs) + lost == 400_000
        assert logs["sample_weight"].max() > 1


_KILLED_WRITER = """
import sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter
def probabilities(frame):
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})
writer = PredictionLogWriter(sys.argv[1], flush_seconds=0.1, roll_rows=5_000,
                             max_queue_rows=500_000, probabilities=probabilities,
                             roller_command=sys.argv[2:])
for i in range(40):
    writer.submit(pd.DataFrame({"x": np.arange(5_000.0) + 5_000 * i}), np.zeros(5_000),
                  latency_seconds=0.0)
assert writer.spool_now(60)
while writer.roller_pid is None:
    time.sleep(0.01)
print("roller", writer.roller_pid, flush=True)
time.sleep(120)
"""


def test_the_roller_process_ends_within_the_stop_bound_when_its_writer_is_killed(tmp_path):
    command, trace = _roller(tmp_path, delay=0.5)
    root = tmp_path / "log"
    parent = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(root), *command],
        stdout=subprocess.PIPE,
        text=True,
    )
    word, pid = parent.stdout.readline().split()
    pid = int(pid)
    assert word == "roller" and _alive(pid)
    assert _wait_for(lambda: _traced(trace))  # mid-roll
    parent.send_signal(signal.SIGKILL)
    parent.wait(30)
    killed = time.monotonic()
    assert _wait_for(lambda: not _alive(pid), timeout=STOP_SECONDS + 5)
    assert time.monotonic() - killed < STOP_SECONDS + 3  # no orphan beyond the bound
    logs = read_logs(str(root))  # what neither rolled is recovered here, once
    assert len(logs) == 200_000 and logs["request_id"].is_unique
    assert np.array_equal(np.sort(logs["x"].to_numpy()), np.arange(200_000.0))


_STOPPED_GROUP = """
import sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter, install_stop_handlers
install_stop_handlers()
def probabilities(frame):
    p = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy(dtype=float)))
    return pd.DataFrame({0: 1.0 - p, 1: p})
writer = PredictionLogWriter(sys.argv[1], flush_seconds=3600, roll_rows=10_000,
                             max_queue_rows=500_000, probabilities=probabilities,
                             roller_command=sys.argv[2:])
for i in range(40):
    writer.submit(pd.DataFrame({"x": np.arange(10_000.0) + 10_000 * i}), np.zeros(10_000),
                  latency_seconds=0.0)
    if i == 35:
        assert writer.spool_now(60)
while writer.roller_pid is None:
    time.sleep(0.01)
print("backlog", writer.roller_pid, flush=True)
time.sleep(120)
"""


def test_sigterm_of_the_process_group_stops_both_in_bounded_time_losing_nothing(tmp_path):
    command, trace = _roller(tmp_path, delay=0.5)
    root = tmp_path / "log"
    parent = subprocess.Popen(
        [sys.executable, "-c", _STOPPED_GROUP, str(root), *command],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    word, pid = parent.stdout.readline().split()
    assert word == "backlog"
    start = time.monotonic()
    os.killpg(parent.pid, signal.SIGTERM)  # the writer's process and its roller alike
    assert parent.wait(timeout=STOP_SECONDS + 20) == -signal.SIGTERM
    assert _wait_for(lambda: not _alive(int(pid)), timeout=10)
    assert time.monotonic() - start < STOP_SECONDS + 5
    rolled_by_process = sum(rows for p, rows in _traced(trace) if p == int(pid))
    logs = read_logs(str(root))
    assert len(logs) == 400_000 and logs["request_id"].is_unique
    assert np.array_equal(np.sort(logs["x"].to_numpy()), np.arange(400_000.0))
    # The process went on rolling after the signal (within the bound), not the reader only.
    with_probabilities = logs["probability_1"].notna().sum() if "probability_1" in logs else 0
    # (The batch in the model's hands at the deadline may be cut short.)
    assert 0 < rolled_by_process - 10_000 <= with_probabilities <= rolled_by_process


# -- through the flavor: the roller process loads the served model --------------------------


class _NoProbabilities(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"].to_numpy() > 0


def _served(path, log_dir, monkeypatch, roller):
    monkeypatch.setenv("MLFLOW_OBSERVE_ROLLER", roller)
    monkeypatch.setenv("MLFLOW_OBSERVE_FLUSH_SECONDS", "0.2")
    return mo.load_model(str(path), model_config={"mlflow_observe_log_dir": str(log_dir)})


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_the_flavors_roller_process_logs_the_models_probabilities(tmp_path, monkeypatch):
    train = _frame(300, 0)
    model = LogisticRegression().fit(train, (train["x"] > 0).astype(int))
    mo.save_model(model, str(tmp_path / "model"), baseline=train)
    logs = {}
    for roller in ("process", "thread"):
        served = _served(tmp_path / "model", tmp_path / roller, monkeypatch, roller)
        for seed in range(5):
            served.predict(_frame(200, seed + 1))
        writer = served.get_raw_model().log_writer
        if roller == "process":
            assert _wait_for(lambda w=writer: w.roller_pid is not None, timeout=300)
        pid = writer.roller_pid
        writer.close(timeout=120)
        assert writer.stats()["roller_fallbacks"] == 0
        assert (pid is not None) == (roller == "process") and pid != os.getpid()
        logs[roller] = read_logs(str(tmp_path / roller)).sort_values(["batch_id"], kind="stable")
    process, thread = logs["process"], logs["thread"]
    assert len(process) == 1000 and process["request_id"].is_unique
    expected = model.predict_proba(process[["x", "y"]])
    np.testing.assert_allclose(process[["probability_0", "probability_1"]], expected)
    columns = ["x", "y", "prediction", "probability_0", "probability_1"]
    np.testing.assert_array_equal(
        process.sort_values("x")[columns].to_numpy(), thread.sort_values("x")[columns].to_numpy()
    )


def test_a_model_without_predict_proba_rolls_in_its_process_without_probabilities(
    tmp_path, monkeypatch
):
    mo.save_model(_NoProbabilities(), str(tmp_path / "model"), baseline=_frame(50, 0))
    served = _served(tmp_path / "model", tmp_path / "log", monkeypatch, "process")
    for seed in range(3):
        served.predict(_frame(100, seed))
    writer = served.get_raw_model().log_writer
    assert _wait_for(lambda: writer.roller_pid is not None, timeout=300)  # loading, at niceness 10
    writer.close(timeout=120)
    stats = writer.stats()
    assert stats["roller_fallbacks"] == 0 and stats["rows_written"] == 300
    logs = read_logs(str(tmp_path / "log"))
    assert len(logs) == 300 and not any(c.startswith("probability_") for c in logs.columns)
    assert (logs["prediction"] == (logs["x"] > 0)).all()


def test_a_fork_of_the_writers_process_lets_go_of_the_roller_channel(tmp_path):
    """A process forked after the roller started keeps no copy of its channel: the roller
    sees its writer's end when the writer's process ends, whatever that process forked."""
    command, _ = _roller(tmp_path)
    writer = PredictionLogWriter(
        str(tmp_path / "log"), probabilities=_sigmoid_probabilities, roller_command=command
    )
    assert _wait_for(lambda: writer.roller_pid is not None, timeout=300)  # loading, at niceness 10
    pid = os.fork()
    if pid == 0:  # the forked copy: only checks and leaves, without Python's exit hooks
        os._exit(0 if writer._process._channel is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.submit(pd.DataFrame({"x": [0.0, 1.0]}), [0, 1], latency_seconds=0.0)
    writer.close(timeout=60)
    assert writer.stats()["rows_written"] == 2 and writer.stats()["roller_fallbacks"] == 0
    assert writer._process.process.returncode == 0
    np.testing.assert_allclose(
        read_logs(str(tmp_path / "log"))["probability_1"], [0.5, 1 / (1 + np.exp(-1.0))]
    )
