"""Served attributions computed in a separate process (ProcessAttributionWorker): real child
processes, real files, real signals.

A linear model's exact attributions are known in closed form, ``coef * (x - mean of the
background)``; a forest's are SHAP's own TreeExplainer values.
"""

import gc
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import alive, process_state
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression

import mlflow_observe as mo
from mlflow_observe.logs.reader import read_attributions
from mlflow_observe.plugins.attribution import (
    STOP_SECONDS,
    AttributionWorker,
    serving_background,
)
from mlflow_observe.plugins.attribution_process import (
    _BOOTSTRAP,
    ENTRY_MODULE,
    FLUSH,
    MAX_IN_FLIGHT_ROWS,
    RAW,
    SEND_ROWS,
    ProcessAttributionWorker,
    arrow_table,
    finishing_scheduling,
    idle_scheduling,
    raw_header,
    raw_parts,
    read_message,
    write_message,
    write_parts,
)
from mlflow_observe.plugins.flavor import load_serving_explainer

# Starts processes: not in the fast subset.
pytestmark = pytest.mark.server

FEATURES = ["f0", "f1", "f2", "f3"]
COEF = np.array([1.5, -2.0, 0.5, 3.0])
ATTRIBUTIONS = [f"attribution_{c}" for c in FEATURES]


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


def _logged(model, X, y, name, **options):
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=X.assign(y=y),
            targets="y",
            registered_model_name=name,
            input_example=X.head(3),
            **options,
        )
    return mlflow.artifacts.download_artifacts(info.model_uri)


@pytest.fixture
def linear_root(tracking_uri):
    X = _frame(400, seed=0)
    y = X.to_numpy() @ COEF + 0.7
    model = LinearRegression().fit(X, y)
    return model, _logged(model, X, y, "linear")


def _loaded(worker):
    """The worker, once its child has loaded the model (seconds at idle priority on a busy
    machine): a close before that would be cut by the stop's bound."""
    assert worker.wait_loaded(180), "the attribution process did not load the model"
    return worker


def _offer_all(worker, rows, prefix, sizes=None):
    sizes = sizes or [1] * len(rows)
    start = 0
    for i, size in enumerate(sizes):
        worker.offer(rows.iloc[start : start + size], f"{prefix}-{i}", None)
        start += size


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_process_writes_what_the_thread_writes_the_closed_form(linear_root, tmp_path):
    """The same rows through the child and through the in-thread worker: the same stored
    rows (request ids, rates, values), and the values are the closed form."""
    model, root = linear_root
    rows = _frame(60, seed=1)
    sizes = [1] * 40 + [5] * 4  # one-row calls and 5-row calls (rows numbered <id>-<row>)
    by_process = _loaded(ProcessAttributionWorker(str(tmp_path / "process"), root, rate=1.0))
    by_thread = AttributionWorker(str(tmp_path / "thread"), load_serving_explainer(root), rate=1.0)
    for worker in (by_process, by_thread):
        _offer_all(worker, rows, "call", sizes)
    started = time.monotonic()
    by_process.close()
    by_thread.close()
    assert time.monotonic() - started < STOP_SECONDS + 1
    stats = by_process.stats()
    assert stats["rows_attributed"] == stats["rows_written"] == 60, stats
    assert stats["rows_failed"] == stats["rows_lost_at_stop"] == 0, stats
    assert by_process.process.returncode == 0  # exited on its own, and reaped
    process = read_attributions(str(tmp_path / "process")).sort_values("request_id")
    thread = read_attributions(str(tmp_path / "thread")).sort_values("request_id")
    assert len(process) == 60
    pd.testing.assert_frame_equal(process.reset_index(drop=True), thread.reset_index(drop=True))
    expected_ids = [f"call-{i}" for i in range(40)] + [
        f"call-{i}-{j}" for i in range(40, 44) for j in range(5)
    ]
    assert sorted(process["request_id"]) == sorted(expected_ids)
    # the closed form, row by row (rows are offered in order: call-<i> is row i)
    order = {rid: k for k, rid in enumerate(expected_ids)}
    values = process.set_index("request_id").loc[sorted(order, key=order.get)]
    background = serving_background(mo.load_baseline("models:/linear/1"), FEATURES)
    expected = (rows - background.mean()) * model.coef_
    assert np.allclose(values[ATTRIBUTIONS].to_numpy(), expected.to_numpy(), atol=1e-9)
    assert set(values["explain_method"]) == {"sampled_shapley"}


def test_a_forest_through_the_process_gets_shaps_own_values(tracking_uri, tmp_path):
    shap = pytest.importorskip("shap")
    X = _frame(300, seed=5)
    y = X["f0"] * X["f1"] + X["f2"]
    forest = RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    trusted = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]}
    root = _logged(forest, X, y, "forest", inner_options=trusted)
    rows = _frame(25, seed=6)
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    _offer_all(worker, rows, "t")
    worker.close()
    stored = read_attributions(str(tmp_path)).set_index("request_id")
    stored = stored.loc[[f"t-{i}" for i in range(25)]]
    assert set(stored["explain_method"]) == {"tree_shap"}
    expected = shap.TreeExplainer(forest).shap_values(rows)
    assert np.allclose(stored[ATTRIBUTIONS].to_numpy(), expected, atol=1e-9)


def test_odd_inputs_are_attributed_or_counted_never_raised(linear_root, tmp_path):
    """NaN and inf values, float32, int64, an empty call, a numpy array and a column Arrow
    cannot hold: the offers return, the child attributes what it can, the rest is counted."""
    _, root = linear_root
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    odd = pd.DataFrame({"f0": [np.nan], "f1": [np.inf], "f2": [1.0], "f3": [2.0]})
    assert worker.offer(odd, "nan", None) == "nan"
    assert worker.offer(_frame(1, seed=2).astype("float32"), "f32", None) == "f32"
    assert worker.offer((_frame(1, seed=5) * 10).astype("int64"), "ints", None) == "ints"
    assert worker.offer(_frame(0, seed=2), "empty", None) == "empty"
    assert worker.offer(_frame(2, seed=3).to_numpy(), "array", None) == "array"
    unholdable = _frame(1, seed=4)
    unholdable["f0"] = pd.Series([object()], dtype=object)
    assert worker.offer(unholdable, "bad", None) == "bad"
    worker.close()
    stats = worker.stats()
    stored = read_attributions(str(tmp_path)).set_index("request_id")
    assert set(stored.index) == {"f32", "ints"}
    assert np.isfinite(stored.loc[["f32", "ints"], ATTRIBUTIONS].to_numpy(dtype=float)).all()
    # failed, each alone: the NaN row (the model refuses it), the array's input_<i> columns
    # (not the baseline's; 2 rows), the object row (Arrow cannot hold it)
    assert stats["rows_failed"] == 4, stats
    assert stats["rows_written"] == stats["rows_attributed"] == 2, stats
    assert stats["rows_lost_at_stop"] == 0


def test_a_killed_child_is_one_warning_and_counted(linear_root, tmp_path, caplog):
    _, root = linear_root
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    _offer_all(worker, _frame(10, seed=1), "before")
    assert _wait(lambda: worker.stats()["rows_attributed"] == 10, 60), worker.stats()
    assert worker.drain()
    assert worker.stats()["rows_written"] == 10
    pid = worker.child_pid
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: process_state(pid) is None, 10)  # gone, and reaped by the worker
        assert _wait(lambda: "The attribution process stopped" in caplog.text, 10)
        for i in range(20):
            started = time.perf_counter()
            assert worker.offer(_frame(1, seed=i), f"after-{i}", None) == f"after-{i}"
            # Never waits on the dead process (that would take seconds); the margin is for
            # a busy machine that deschedules the test.
            assert time.perf_counter() - started < 0.5
        worker.close()
    assert caplog.text.count("The attribution process stopped") == 1, caplog.text
    assert "exited with code -9" in caplog.text
    stats = worker.stats()
    assert stats["rows_failed"] == 20 and stats["rows_written"] == 10, stats
    assert len(read_attributions(str(tmp_path))) == 10


def test_a_child_that_cannot_load_the_model_is_counted(tmp_path, caplog):
    (tmp_path / "model").mkdir()
    worker = ProcessAttributionWorker(str(tmp_path), str(tmp_path / "model"), rate=1.0)
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        assert _wait(lambda: worker.process is not None and worker.process.poll() is not None, 60)
        worker.offer(_frame(3, seed=0), "late", None)
        worker.close()
    assert "exited with code 1" in caplog.text
    assert worker.stats()["rows_failed"] == 3
    assert read_attributions(str(tmp_path)).empty


def test_the_child_exits_within_the_bound_when_its_parent_is_killed(linear_root, tmp_path):
    """A server process SIGKILLed: its child writes what it has and exits within STOP_SECONDS,
    not an orphan left running."""
    _, root = linear_root
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np, pandas as pd
        from mlflow_observe.plugins.attribution_process import ProcessAttributionWorker
        worker = ProcessAttributionWorker({str(tmp_path)!r}, {root!r}, rate=1.0)
        rows = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 4)), columns={FEATURES!r})
        for i in range(30):
            worker.offer(rows.iloc[[i]], f"k-{{i}}", None)
        worker.wait_loaded(180)
        while worker.stats()["rows_attributed"] < 5:
            time.sleep(0.05)
        print(worker.child_pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait()
        killed = time.monotonic()
        assert _wait(lambda: not alive(child), STOP_SECONDS + 5), "the child outlived the bound"
        assert time.monotonic() - killed <= STOP_SECONDS + 5
    finally:
        if parent.poll() is None:
            parent.kill()
    # what it had received was attributed and written before it exited
    stored = read_attributions(str(tmp_path))
    assert len(stored) >= 5 and stored["request_id"].str.startswith("k-").all()


def _send_raw_message(stream, rows, prefix):
    """One ``RAW`` message of one-row calls, as the server's worker sends it."""
    calls = [[None, f"{prefix}-{i}", None, 0, 1.0] for i in range(len(rows))]
    values = [rows.to_numpy()[[i]] for i in range(len(rows))]
    header = raw_header(tuple(rows.columns), values[0].dtype)
    write_parts(stream, RAW, raw_parts(header, calls, [0] * len(calls), values))


def test_the_child_acknowledges_a_message_in_one_line_and_each_chunk_after_a_stop(
    linear_root, tmp_path
):
    """Each acknowledgement wakes a thread of the server, which takes the interpreter from a
    request: a message of SEND_ROWS rows (16 chunks) is one line, not sixteen. After the
    stop's flush, each chunk is written and acknowledged at once."""
    _, root = linear_root
    child = subprocess.Popen(
        [sys.executable, "-c", _BOOTSTRAP, "--model", root, "--log", str(tmp_path)]
        + ["--token", "t", "--parent", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert json.loads(child.stdout.readline()) == {"ready": True}
        _send_raw_message(child.stdin, _frame(SEND_ROWS, seed=1), "calm")
        first = json.loads(child.stdout.readline())
        assert first["attributed"] == SEND_ROWS and not first.get("failed")
        write_parts(child.stdin, FLUSH, [])
        _send_raw_message(child.stdin, _frame(8, seed=2), "stop")
        child.stdin.close()
        rest = [json.loads(line) for line in child.stdout]
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    # after the flush: two chunks of four, each written with its acknowledgement (the calm
    # message's rows were written at the flush, or with its line if the child was slow)
    chunks = [line for line in rest if line.get("attributed")]
    assert [(line["attributed"], line.get("written")) for line in chunks] == [(4, 4), (4, 4)]
    assert sum(line.get("written", 0) for line in [first, *rest]) == SEND_ROWS + 8
    stored = read_attributions(str(tmp_path))
    assert len(stored) == SEND_ROWS + 8
    assert stored["request_id"].str.startswith(("calm-", "stop-")).all()


def test_a_call_answered_after_the_stop_signal_is_handed_over_before_it_returns(
    linear_root, tmp_path
):
    """uvicorn answers its last calls after the stop signal, then dies by that signal (no exit
    handler runs): a call sampled then must be in the child's hands when ``offer`` returns, so
    that the child attributes and writes it after its server is gone."""
    _, root = linear_root
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np, pandas as pd
        from mlflow_observe.plugins.attribution_process import ProcessAttributionWorker
        worker = ProcessAttributionWorker({str(tmp_path)!r}, {root!r}, rate=1.0)
        rows = pd.DataFrame(np.random.default_rng(0).normal(size=(3, 4)), columns={FEATURES!r})
        worker.wait_loaded(180)
        worker.offer(rows.iloc[[0]], "before", None)
        assert worker.drain(), "the drain did not finish"
        for i in (1, 2):
            worker.offer(rows.iloc[[i]], f"late-{{i}}", None)
        print(worker.child_pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the server's death right after its last answer
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        parent.wait(60)
        assert parent.returncode == -signal.SIGKILL
        assert _wait(lambda: not alive(child), STOP_SECONDS + 5), "the child outlived the bound"
    finally:
        if parent.poll() is None:
            parent.kill()
    stored = read_attributions(str(tmp_path))
    assert sorted(stored["request_id"]) == ["before", "late-1", "late-2"]


def test_a_child_still_busy_at_the_bound_after_its_parent_died_names_what_it_leaves(
    tracking_uri, tmp_path
):
    """The server is killed while its child attributes a slow model: nobody is left to count
    the child's unfinished rows, so the child names them itself when it exits at the bound."""

    class Slow(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if len(model_input) > 50:  # the explainer's batches, not the baseline's rows
                time.sleep(0.5)
            return model_input.to_numpy() @ np.array([1.5, -2.0, 0.5, 3.0])

    X = _frame(200, seed=5)
    with mlflow.start_run():
        info = mo.log_model(Slow(), name="model", baseline=X, input_example=X.head(3))
    root = mlflow.artifacts.download_artifacts(info.model_uri)
    script = textwrap.dedent(
        f"""
        import time
        import numpy as np, pandas as pd
        from mlflow_observe.plugins.attribution_process import ProcessAttributionWorker
        worker = ProcessAttributionWorker({str(tmp_path)!r}, {root!r}, rate=1.0)
        rows = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 4)), columns={FEATURES!r})
        worker.wait_loaded(180)
        for i in range(100):
            worker.offer(rows.iloc[[i]], f"s-{{i}}", None)
        time.sleep(1.0)
        print(worker.child_pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        killed = time.monotonic()
        assert _wait(lambda: not alive(child), STOP_SECONDS + 5), "the child outlived the bound"
        assert time.monotonic() - killed <= STOP_SECONDS + 5
        errors = parent.stderr.read()  # the child wrote to the same pipe until it exited
    finally:
        if parent.poll() is None:
            parent.kill()
    left = re.findall(r"stops at the bound .*: (\d+) rows left without attributions", errors)
    assert left and int(left[0]) > 0, errors
    written = read_attributions(str(tmp_path))
    # the rows left are the rows it received and did not write: 100 were offered, at most
    # MAX_IN_FLIGHT_ROWS sent, and each row is either written or named
    assert len(written) + int(left[0]) <= 100
    assert len(written) < 100


def test_messages_round_trip_through_a_pipe(tmp_path):
    """The framing: a message of several tables of different schemas, then the end."""
    keys = pd.DataFrame({"request_id": ["a", "b"], "explain_rate": [1.0, 0.5]})
    rows = pd.DataFrame({"x": [1, 2], "s": ["u", None], "t": pd.to_datetime(["2026-01-01"] * 2)})
    import pyarrow as pa

    read, write = os.pipe()
    with os.fdopen(write, "wb") as sink:
        write_message(
            sink,
            b"B",
            [pa.Table.from_pandas(keys), pa.Table.from_pandas(rows, preserve_index=False)],
        )
        write_message(sink, b"F")
    with os.fdopen(read, "rb", buffering=0) as source:
        kind, tables = read_message(source)
        assert kind == b"B"
        pd.testing.assert_frame_equal(tables[0].to_pandas(), keys)
        pd.testing.assert_frame_equal(tables[1].to_pandas(), rows)
        assert read_message(source) == (b"F", [])
        assert read_message(source) is None


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="no SCHED_IDLE on this OS")
def test_the_child_runs_under_sched_idle_at_niceness_19_in_a_session_of_its_own(
    linear_root, tmp_path
):
    _, root = linear_root
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    try:
        worker.offer(_frame(1, seed=0), "n", None)
        _assert_idle_in_a_session_of_its_own(worker.child_pid)
    finally:
        worker.close()  # a failed assertion must not leave the child to later tests
    assert worker.process.returncode == 0
    assert worker.stats()["rows_written"] == 1


def test_a_stop_with_every_core_busy_ends_in_time_with_every_row_written(linear_root, tmp_path):
    """At idle priority the child gets next to no CPU while every core is busy. At the stop
    it leaves SCHED_IDLE (where the OS allows it) and, once its rows are written, exits at
    once: the interpreter's teardown took 0.7 s of CPU, which it did not get within the
    stop's bound, and the server killed it.

    The busy processes run at niceness 19: they starve an idle-priority process, and leave
    the tests beside this one their CPU."""
    _, root = linear_root
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    # Where neither holds, an idle-priority process on a busy machine gets no CPU at all,
    # and only the row's being written (and counted) can be asked for.
    gets_cpu = _may_leave_sched_idle() or (_autogroups_on() and bool(_autogroup(worker.child_pid)))
    busy = []
    try:
        worker.offer(_frame(1, seed=0), "busy", None)
        assert _wait(lambda: worker.stats()["rows_attributed"] == 1, 60)
        spin = [sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"]
        busy = [subprocess.Popen(spin) for _ in range(4 * (os.cpu_count() or 1))]
        time.sleep(0.5)  # the spinners have the cores
        started = time.monotonic()
        worker.close()
        took = time.monotonic() - started
    finally:
        worker.close()
        for process in busy:
            process.kill()
            process.wait()
    stats = worker.stats()
    assert stats["rows_written"] == 1 and stats["rows_lost_at_stop"] == 0, stats
    assert list(read_attributions(str(tmp_path))["request_id"]) == ["busy"]
    if gets_cpu:
        assert worker.process.returncode == 0, f"killed at the bound after {took:.1f} s"
        assert took < STOP_SECONDS


def _autogroups_on() -> bool:
    """Whether the kernel groups processes by session (then the child's group has a share)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


def _may_leave_sched_idle() -> bool:
    """Whether this process may move another out of SCHED_IDLE (root, CAP_SYS_NICE)."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        idle_scheduling(other.pid)
        return finishing_scheduling(other.pid)
    finally:
        other.kill()
        other.wait()


def _autogroup(pid) -> list:
    """The scheduling autogroup of ``pid`` as ``["/autogroup-N", "nice", "K"]``; empty where
    the task is in none (autogroups off, or a container's cgroup governs its CPU)."""
    try:
        with open(f"/proc/{pid}/autogroup") as handle:
            return handle.read().split()
    except OSError:
        return []


def _assert_idle_in_a_session_of_its_own(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        assert ENTRY_MODULE.encode() in handle.read()
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    # its threads too (numpy's, the parent watch): started after the policy was set
    for task in os.listdir(f"/proc/{pid}/task"):
        assert os.sched_getscheduler(int(task)) == os.SCHED_IDLE, task
    # the server's side keeps its own scheduling
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    # a session of its own: on a kernel with autogroups its CPU is not charged to the
    # server's group, and its group has niceness 19
    assert os.getsid(pid) == pid != os.getsid(0)
    child_group, own_group = _autogroup(pid), _autogroup("self")
    if child_group and own_group:
        assert child_group[0] != own_group[0] and child_group[-1] == "19", child_group


def test_a_starved_child_samples_down_and_counts_what_it_never_attributed(
    linear_root, tmp_path, caplog
):
    """The child stopped (SIGSTOP: what SCHED_IDLE does under sustained full load) while
    calls keep coming: offers never wait, the queue samples down with the rate recorded,
    and the stop's bounds hold, counting every row left unattributed."""
    _, root = linear_root
    worker = _loaded(ProcessAttributionWorker(str(tmp_path), root, rate=1.0))
    _offer_all(worker, _frame(5, seed=1), "before")
    assert _wait(lambda: worker.stats()["rows_written"] == 5, 60), worker.stats()
    os.kill(worker.child_pid, signal.SIGSTOP)
    assert _wait(lambda: process_state(worker.child_pid) == "T", 10)
    rows = _frame(3000, seed=2)
    slowest = 0.0
    # One offer took 0.5 s once on a busy CI machine, most likely a full collection of this
    # test process's heap: the collector's pauses are not what is measured. A wait for the
    # stopped child would never end.
    gc.disable()
    try:
        for i in range(len(rows)):
            started = time.perf_counter()
            worker.offer(rows.iloc[[i]], f"starved-{i}", None)
            slowest = max(slowest, time.perf_counter() - started)
    finally:
        gc.enable()
    assert slowest < 1.0  # never waits for the child (the margin is for a busy machine)
    assert worker.stats()["rate"] < 1.0  # sampled down
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        # nothing acknowledged: the drain gives up at its bound and ends the child (the
        # server may die by the signal's default action next, with no exit handler)
        assert not worker.drain(timeout=1.0)
        assert time.monotonic() - started < 1.0 + 7.0  # the bound, the kill, the join
        assert _wait(lambda: process_state(worker.child_pid) is None, 10)  # killed though stopped
        worker.close(timeout=3.0)
    stats = worker.stats()
    assert stats["rows_written"] == 5 and stats["rows_failed"] == 0, stats
    assert stats["rows_sampled_out"] > 0, stats
    # Every starved row admitted to the queue is either sampled out of it or lost at the stop
    # (the warning names the lost); a row the lowered rate's draw skipped is accounted for
    # by the rate, and one refused at the full queue is sampled out without being admitted.
    lost = stats["rows_lost_at_stop"]
    assert lost >= MAX_IN_FLIGHT_ROWS, stats
    assert f"{lost} rows left without attributions" in caplog.text, caplog.text
    admitted = stats["calls_sampled"] - 5
    assert admitted <= lost + stats["rows_sampled_out"] <= len(rows), stats
    stored = read_attributions(str(tmp_path))
    assert sorted(stored["request_id"]) == [f"before-{i}" for i in range(5)]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1.0, np.nan, np.inf], "b": [-0.0, 2.5, -np.inf]}),
        pd.DataFrame({"a": np.array([1, 2, 3], dtype="int32"), "b": np.array([4, 5, 6], "int32")}),
        pd.DataFrame({"a": [True, False, True]}),
        pd.DataFrame({"a": np.array([1.5, 2.5, 3.5], dtype="float32"), "b": [1, 2, 3]}),
        pd.DataFrame({"s": ["x", None, "é"], "c": pd.Categorical(["u", "v", "u"])}),
        pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None, "2026-01-03"], utc=True)}),
        pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}),
        pd.DataFrame({0: [1.0, 2.0, 3.0], 1: [4.0, 5.0, 6.0]}),
        pd.DataFrame({"a": [], "b": []}, dtype=float),
    ],
)
def test_arrow_table_gives_the_child_the_frame_it_was_given(frame):
    """The hand-over keeps values, dtypes and names (as strings, as the log names inputs),
    whichever path it takes."""
    pd.testing.assert_frame_equal(arrow_table(frame).to_pandas(), frame.rename(columns=str))


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(
            np.random.default_rng(0).normal(size=(1, 20)), columns=[f"f{i:02d}" for i in range(20)]
        ),
        pd.DataFrame({"a": [1.0, np.nan, np.inf], "é b": [-0.0, 2.5, -np.inf]}),
        pd.DataFrame({"a": np.array([1, 2, 3], dtype="int32"), "b": np.array([4, 5, 6], "int32")}),
        pd.DataFrame({"a": np.array([2**62, -1, 0], dtype="int64")}),
        pd.DataFrame({"a": [True, False, True], "b": [False, False, True]}),
        pd.DataFrame({"a": np.array([1.5, 2.5, 3.5], dtype="float32")}),
        pd.DataFrame({"a": np.array([1.5, 2.5], dtype=">f8")}),
    ],
)
def test_the_raw_path_gives_the_child_what_the_arrow_path_gives(frame):
    """A numeric call's raw bytes and cached header, through a real pipe, give the child the
    same rows and keys as the Arrow IPC message it replaces."""
    from mlflow_observe.plugins.attribution import AttributionWorker as Thread
    from mlflow_observe.plugins.attribution_process import (
        RAW,
        numeric_block,
        raw_frames,
        raw_header,
        raw_parts,
        write_parts,
    )

    names, values = numeric_block(frame)
    calls = [[frame, "order-7", None, 1_700_000_000_000_000_000, 0.25]]
    stamps = [calls[0][3]]
    read, write = os.pipe()
    with os.fdopen(write, "wb") as sink:
        write_parts(sink, RAW, raw_parts(raw_header(names, values.dtype), calls, stamps, [values]))
    with os.fdopen(read, "rb", buffering=0) as source:
        kind, parts = read_message(source)
        assert read_message(source) is None
    assert kind == RAW
    keys, rows = raw_frames(parts)
    expected_keys = Thread._keys(Thread.__new__(Thread), calls).to_pandas()
    pd.testing.assert_frame_equal(keys, expected_keys)
    pd.testing.assert_frame_equal(rows, frame, check_column_type=False)
    if frame.dtypes.iloc[0].isnative:  # Arrow takes no byte-swapped array: it counted it failed
        pd.testing.assert_frame_equal(rows, arrow_table(frame).to_pandas())


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1.0], "b": [2]}),  # two dtypes
        pd.DataFrame({0: [1.0], 1: [2.0]}),  # names not strings
        pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}),  # not a numpy dtype
        pd.DataFrame({"s": ["x"]}),
        pd.DataFrame(index=[0, 1]),  # no columns
    ],
)
def test_other_frames_keep_the_arrow_path(frame):
    from mlflow_observe.plugins.attribution_process import numeric_block

    assert numeric_block(frame) is None


def _frames_of_every_dtype():
    n = 3
    yield pd.DataFrame({"a": np.arange(n, dtype=float)})
    yield pd.DataFrame(np.ones((n, 4), dtype=np.float32), columns=list("abcd"))
    yield pd.DataFrame({"f": np.ones(n), "i": np.arange(n), "u": np.arange(n, dtype=np.uint8)})
    yield pd.DataFrame({"b": [True, False, True], "o": [1, "x", None]})
    yield pd.DataFrame({"s": ["x", "y", None], "c": pd.Categorical(["a", "b", "a"])})
    yield pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "f": [1.0, np.nan, 2.0]})
    yield pd.DataFrame(
        {
            "t": pd.date_range("2026-01-01", periods=n, tz="UTC"),
            "naive": pd.date_range("2026-01-01", periods=n),
            "d": pd.to_timedelta(np.arange(n), unit="s"),
        }
    )
    yield pd.DataFrame({"big": np.ones(n, dtype=">f8")})  # byte-swapped
    frame = pd.DataFrame({"a": np.ones(n)})
    frame["b"] = 2  # a second block of another dtype
    frame["c"] = np.ones(n)  # and a third, of the first's
    yield frame
    yield pd.DataFrame(index=range(n))


@pytest.mark.parametrize("frame", list(_frames_of_every_dtype()))
def test_column_dtypes_are_the_frame_s_dtypes(frame):
    from mlflow_observe.plugins.attribution_process import column_dtypes

    assert column_dtypes(frame) == set(frame.dtypes)


def test_sampled_calls_with_equal_columns_are_queued_with_one_index(tmp_path):
    """Each request parses its own frame, with its own column index (8 tracked objects for
    pandas' string columns): the queue keeps one index for equal columns, not one a call."""
    import weakref

    worker = ProcessAttributionWorker(str(tmp_path), str(tmp_path), rate=1.0)
    try:
        frames = [_frame(1, seed=i) for i in range(3)]
        own = [weakref.ref(frame.columns) for frame in frames]
        for i, frame in enumerate(frames):
            worker.offer(frame, f"r-{i}", None)
        kept = [call[0] for call in list(worker._queue)[-3:]]
        del frame, frames
        gc.collect()
        assert kept[0].columns is kept[1].columns is kept[2].columns
        assert [ref() is None for ref in own] == [False, True, True]
        # labels equal to pandas but of another type are columns of their own
        for labels in ([1, 2], [1.0, 2.0]):
            columns = pd.Index(labels, dtype=object)
            worker.offer(pd.DataFrame(np.ones((1, 2)), columns=columns), "typed", None)
            assert [type(c) for c in worker._queue[-1][0].columns] == [type(labels[0])] * 2
    finally:
        worker.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8, ">f8"])
def test_a_sampled_numeric_frame_is_queued_as_its_values_not_the_frame(tmp_path, dtype):
    import weakref

    from mlflow_observe.plugins.attribution_process import NumericRows, numeric_block

    values = (np.arange(40).reshape(2, 20) % 7).astype(dtype)
    frame = pd.DataFrame(values, columns=[f"f{i:02d}" for i in range(20)])
    frame_ref = weakref.ref(frame)
    # The model directory cannot be loaded: nothing is attributed, the queue is what counts.
    worker = ProcessAttributionWorker(str(tmp_path), str(tmp_path), rate=1.0)
    try:
        # The worker's thread takes its first calls a second after it starts.
        assert worker.offer(frame, "order-1", None) == "order-1"
        kept = worker._queue[-1][0]
        del frame
        gc.collect()
        # A frame kept until the hand-over outlives the collector's young generations.
        assert frame_ref() is None
        assert isinstance(kept, NumericRows) and len(kept) == 2
        assert not gc.is_tracked(kept.values)
        names, block = numeric_block(kept)
        assert names == tuple(f"f{i:02d}" for i in range(20))
        np.testing.assert_array_equal(block, values)
        assert block.dtype == np.dtype(dtype) and block.flags.c_contiguous
    finally:
        worker.close()
