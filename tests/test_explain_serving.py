"""Attributions of sampled served predictions (MLFLOW_OBSERVE_EXPLAIN_RATE), off the request path.

A linear model's exact attributions are known in closed form, ``coef * (x - mean of the
background)``, so every attribution the served model logs is checked against it.
"""

import logging
import os
import re
import signal
import threading
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from helpers import Server
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression

import mlflow_observe as mo
from mlflow_observe.core.explain import Attributions
from mlflow_observe.logs.attributions import attributions_uri
from mlflow_observe.logs.reader import read_attributions
from mlflow_observe.logs.schema import EXPLAIN_RATE
from mlflow_observe.plugins.attribution import (
    EXPLAIN_RATE_ENV,
    STOP_SECONDS,
    AttributionWorker,
    ServingExplainer,
    explain_rate,
    serving_background,
)
from mlflow_observe.plugins.attribution_process import ENTRY_MODULE

FEATURES = ["f0", "f1", "f2", "f3"]
COEF = np.array([1.5, -2.0, 0.5, 3.0])
ATTRIBUTIONS = [f"attribution_{c}" for c in FEATURES]
# The attribution process's command line (the roller process's names the same module).
_ENTRY = f"{ENTRY_MODULE} import attribution_main".encode()


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


@pytest.fixture
def linear_model(tracking_uri):
    X = _frame(400, seed=0)
    y = X.to_numpy() @ COEF + 0.7
    model = LinearRegression().fit(X, y)
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=X.assign(y=y),
            targets="y",
            registered_model_name="linear",
            input_example=X.head(3),
        )
    return model, info


def _closed_form(model, info, rows: pd.DataFrame) -> pd.DataFrame:
    """coef * (x - mean of the background the served model explains against)."""
    background = serving_background(mo.load_baseline("models:/linear/1"), FEATURES)
    return (rows[FEATURES] - background.mean()) * model.coef_


def _post(server, row: pd.DataFrame, request_id=None, session=None):
    body = {"dataframe_split": row.to_dict(orient="split")}
    if request_id is not None:
        body["params"] = {"request_id": request_id}
    response = (session or requests).post(f"{server.url}/invocations", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def _wait_for_attributions(log_dir, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(read_attributions(str(log_dir))) >= expected:
            break
        time.sleep(0.3)
    return read_attributions(str(log_dir))


@pytest.mark.server
def test_served_attributions_match_the_closed_form_and_a_sigterm_loses_none(
    linear_model, tracking_uri, tmp_path
):
    """Rate 1.0: every answered call is attributed exactly (by the attribution process), under
    its request id, even the ones still queued when SIGTERM came (the stop attributes them)."""
    model, info = linear_model
    log_dir = tmp_path / "logs"
    X = _frame(200, seed=1)
    server = Server("models:/linear/1", tracking_uri, log_dir, workers=1, **{EXPLAIN_RATE_ENV: "1"})
    answers = {}
    try:
        session = requests.Session()
        # The attribution process loads the model while the server starts; at a low priority
        # on a busy machine that can take longer than the stop's bound: wait for it first.
        answers["order-0"] = _post(server, X.iloc[[0]], "order-0", session)[0]
        assert len(_wait_for_attributions(log_dir, 1, timeout=180)) == 1, server.output()
        for i in range(1, 190):  # 190 one-row calls named by the caller
            answers[f"order-{i}"] = _post(server, X.iloc[[i]], f"order-{i}", session)[0]
        # two calls of 5 rows, one named, one not: rows numbered <id>-<row>
        many = _post(server, X.iloc[190:195], "batch-a", session)
        unnamed = _post(server, X.iloc[195:200], None, session)
    finally:
        server.stop()  # SIGTERM right after the last answer
    output = server.output()
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == 200, output
    # every answered row is attributed: none lost at the stop
    assert logs[ATTRIBUTIONS].notna().all().all(), output
    assert (logs["explain_rate"] == 1.0).all()
    assert set(logs["explain_method"]) == {"sampled_shapley"}
    assert set(logs["explain_output"]) == {"prediction"}
    # request ids match: the caller's, numbered for the 5-row calls
    named = logs[logs["request_id"].str.startswith("order-")]
    assert set(named["request_id"]) == set(answers)
    assert np.allclose(
        named.set_index("request_id")["prediction"][list(answers)], list(answers.values())
    )
    assert sorted(logs.loc[logs["request_id"].str.startswith("batch-a"), "request_id"]) == [
        f"batch-a-{i}" for i in range(5)
    ]
    generated = logs[~logs["request_id"].str.startswith(("order-", "batch-a"))]
    assert (
        len(generated) == 5 and generated["request_id"].str.fullmatch(r"[0-9a-f]{32}-[0-4]").all()
    )
    assert np.allclose(np.sort(generated["prediction"]), np.sort(unnamed))
    assert np.allclose(
        np.sort(logs.loc[logs["request_id"].str.startswith("batch-a"), "prediction"]), np.sort(many)
    )
    # the attributions are the closed form, for the logged row's own values
    expected = _closed_form(model, info, logs)
    assert np.allclose(logs[ATTRIBUTIONS].to_numpy(), expected.to_numpy(), atol=1e-9)
    # and they reconcile: base value + attributions = the logged prediction
    total = logs[ATTRIBUTIONS].sum(axis=1) + logs["explain_base_value"]
    assert np.allclose(total, logs["prediction"], atol=1e-9)
    # the window read for drift keeps the attributions out of the model's inputs
    with mlflow.start_run():
        result = mo.evaluate_drift(logs, baseline="models:/linear/1")
    assert result.metrics["drift/n_evaluated_columns"] == len(FEATURES)


@pytest.mark.server
def test_served_rate_samples_a_uniform_share_with_its_rate_recorded(
    linear_model, tracking_uri, tmp_path
):
    model, info = linear_model
    log_dir = tmp_path / "logs"
    n, rate = 400, 0.2
    X = _frame(n, seed=2)
    server = Server(
        "models:/linear/1", tracking_uri, log_dir, workers=2, **{EXPLAIN_RATE_ENV: str(rate)}
    )
    try:
        session = requests.Session()
        for i in range(n):
            _post(server, X.iloc[[i]], f"r-{i}", session)
    finally:
        server.stop()
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == n
    sampled = logs[logs["attribution_f0"].notna()]
    # binomial: outside [lo, hi] with probability < 1e-6 under the stated rate
    lo, hi = stats.binom.ppf(5e-7, n, rate), stats.binom.isf(5e-7, n, rate)
    assert lo <= len(sampled) <= hi, (len(sampled), lo, hi)
    assert (sampled["explain_rate"] == rate).all()  # the worker never fell behind
    assert (
        logs.loc[logs["attribution_f0"].isna(), ATTRIBUTIONS + ["explain_rate"]].isna().all().all()
    )
    # every attribution is the one of its own row
    expected = _closed_form(model, info, sampled)
    assert np.allclose(sampled[ATTRIBUTIONS].to_numpy(), expected.to_numpy(), atol=1e-9)
    assert set(read_attributions(str(log_dir))["request_id"]) == set(sampled["request_id"])


@pytest.mark.server
def test_an_explainer_that_raises_never_breaks_a_prediction(tracking_uri, tmp_path):
    """The model answers requests but fails on the explainer's large batches: every call is
    answered right, the failures are counted and logged once, no attribution is stored."""

    class FailsOnLargeBatches(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if len(model_input) > 50:
                raise RuntimeError("too many rows for this model")
            return model_input.to_numpy() @ np.array([1.5, -2.0, 0.5, 3.0])

    X = _frame(300, seed=3)
    with mlflow.start_run():
        mo.log_model(
            FailsOnLargeBatches(),
            name="model",
            baseline=X,
            registered_model_name="fragile",
            input_example=X.head(3),
        )
    log_dir = tmp_path / "logs"
    server = Server(
        "models:/fragile/1", tracking_uri, log_dir, workers=1, **{EXPLAIN_RATE_ENV: "1"}
    )
    rows = _frame(40, seed=4)
    try:
        session = requests.Session()
        answers = [_post(server, rows.iloc[[i]], f"q-{i}", session)[0] for i in range(40)]
        time.sleep(1.0)  # the explainer has failed by now
        assert np.allclose(answers, rows.to_numpy() @ COEF)
        assert _post(server, rows.iloc[[0]], "after", session)[0] == pytest.approx(answers[0])
    finally:
        server.stop()
    output = server.output()
    if "rows left without attributions" not in output:
        assert output.count("Could not attribute sampled predictions") == 1, output
        assert "too many rows for this model" in output
    else:  # on a machine busy all along, the idle-priority process got no CPU before the stop
        assert output.count("Could not attribute sampled predictions") <= 1, output
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == 41
    assert not [c for c in logs.columns if c.startswith(("attribution_", "explain_"))]


def _attribution_children() -> list:
    """This process's attribution processes."""
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
        except (OSError, ValueError):
            continue
        if parent == os.getpid() and _ENTRY in command:
            children.append(int(entry))
    return children


def _explainer_threads():
    return [t for t in threading.enumerate() if t.name == "mlflow-observe-explainer"]


@pytest.mark.parametrize("setting", [None, "0", "0.0", " "])
def test_rate_off_starts_no_thread_and_stores_no_attribution(
    linear_model, tmp_path, monkeypatch, setting
):
    _, info = linear_model
    log_dir = tmp_path / "logs"
    monkeypatch.setenv("MLFLOW_OBSERVE_LOG_DIR", str(log_dir))
    if setting is None:
        monkeypatch.delenv(EXPLAIN_RATE_ENV, raising=False)
    else:
        monkeypatch.setenv(EXPLAIN_RATE_ENV, setting)
    before = len(_explainer_threads())
    children_before = set(_attribution_children())
    model = mo.load_model(info.model_uri)
    for i in range(5):
        model.predict(_frame(1, seed=i), params={"request_id": f"r{i}"})
    model._model_impl.log_writer.close()
    assert len(_explainer_threads()) == before
    assert model._model_impl.attribution_worker is None
    assert not set(_attribution_children()) - children_before
    assert not os.path.exists(attributions_uri(str(log_dir)))
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == 5
    assert not [c for c in logs.columns if c.startswith(("attribution_", "explain_"))]


@pytest.mark.parametrize("setting", ["abc", "1.5", "-0.1", "nan", "inf"])
def test_an_invalid_rate_is_a_warning_and_off(linear_model, tmp_path, monkeypatch, caplog, setting):
    _, info = linear_model
    monkeypatch.setenv("MLFLOW_OBSERVE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv(EXPLAIN_RATE_ENV, setting)
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        model = mo.load_model(info.model_uri)
    assert f"Got {setting!r} instead: attributions are off" in caplog.text
    before = len(_explainer_threads())
    model.predict(_frame(2, seed=0))
    model._model_impl.log_writer.close()
    assert len(_explainer_threads()) == before
    assert explain_rate(setting) == 0.0


def test_a_rate_without_baseline_or_log_is_a_warning_and_off(
    tracking_uri, tmp_path, monkeypatch, caplog
):
    X = _frame(50, seed=0)
    with mlflow.start_run():
        info = mo.log_model(
            LinearRegression().fit(X, X["f0"]), name="model", input_example=X.head(2)
        )
    monkeypatch.setenv(EXPLAIN_RATE_ENV, "0.5")
    monkeypatch.delenv("MLFLOW_OBSERVE_LOG_DIR", raising=False)
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        mo.load_model(info.model_uri)
    assert "set MLFLOW_OBSERVE_LOG_DIR" in caplog.text
    monkeypatch.setenv("MLFLOW_OBSERVE_LOG_DIR", str(tmp_path / "logs"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        model = mo.load_model(info.model_uri)
    assert "the model has no baseline" in caplog.text
    model.predict(X.head(3))
    assert model._model_impl.attribution_worker is None
    # the call was logged all the same: close the writer (and its roller process) it opened
    writer = model._model_impl.log_writer
    writer.close()
    assert len(mo.read_logs(str(tmp_path / "logs"))) == 3


def _linear_explainer(rows):
    values = rows.astype(float) * 2.0
    return Attributions(values, 1.0, values.sum(axis=1).to_numpy() + 1.0, "demo"), "prediction"


def test_worker_counts_a_raising_explainer_and_warns_once(tmp_path, caplog):
    calls = []

    def explainer(rows):
        calls.append(len(rows))
        raise ValueError("no background for these columns")

    worker = AttributionWorker(str(tmp_path), explainer, rate=1.0)
    with caplog.at_level(logging.WARNING, logger="mlflow_observe"):
        for i in range(30):
            assert worker.offer(pd.DataFrame({"a": [float(i)]}), f"r{i}", None) == f"r{i}"
            time.sleep(0.01)
        worker.close()
    assert worker.stats()["rows_failed"] == 30 == sum(calls)
    assert worker.stats()["rows_written"] == 0
    assert caplog.text.count("Could not attribute sampled predictions") == 1
    assert read_attributions(str(tmp_path)).empty


def test_worker_behind_samples_down_uniformly_and_records_the_rate(tmp_path):
    """A slow explainer and a small queue: the rate halves, each row keeps the rate it was
    sampled at, and sum(1 / rate) over the attributed rows estimates the offered calls."""
    gate = threading.Event()

    def slow(rows):
        gate.wait(10)
        return _linear_explainer(rows)

    worker = AttributionWorker(str(tmp_path), slow, rate=1.0)
    worker.max_queue_rows = 64
    n = 2_000
    for i in range(n):
        worker.offer(pd.DataFrame({"a": [float(i)]}), f"r{i}", None)
    assert worker.stats()["rate"] < 1.0 and worker.stats()["rows_sampled_out"] > 0
    gate.set()
    worker.close()
    stored = read_attributions(str(tmp_path))
    assert len(stored) == worker.stats()["rows_written"] <= 64 + 16
    rates = stored["explain_rate"].to_numpy()
    assert set(np.round(np.log2(rates))) <= set(range(-12, 1)) and rates.min() < 1.0
    # the estimate is unbiased; with ~70 rows kept out of 2000 it is within a factor of 2
    assert n / 2 <= (1.0 / rates).sum() <= 2 * n
    # the rows the queue kept are spread over the whole run, not one burst
    order = stored["request_id"].str[1:].astype(int)
    assert order.max() - order.min() > n / 2


def test_a_call_that_still_does_not_fit_after_one_halving_is_halved_again(tmp_path):
    """Worked example, coins fixed: four 1-row calls fill a 4-row queue; a 3-row call halves
    the rate and keeps all four (no room yet), then halves it again, keeps one of them and
    itself. Nothing is sampled out for lack of room alone; the rates say 1/4."""

    class Held(AttributionWorker):
        release = threading.Event()

        def _ready(self):
            return self.release.is_set()

    worker = Held(str(tmp_path), _linear_explainer, rate=1.0)
    worker.max_queue_rows = 4
    coins = iter([0.0] * 4 + [0.0] + [0.1] * 4 + [0.1] + [0.9, 0.9, 0.1, 0.9] + [0.1])
    worker._random = lambda: next(coins)
    for i in range(4):
        worker.offer(pd.DataFrame({"a": [float(i)]}), f"r{i}", None)
    worker.offer(pd.DataFrame({"a": [10.0, 11.0, 12.0]}), "big", None)
    assert next(coins, None) is None  # every coin was used: two halvings happened
    assert worker.stats()["rows_sampled_out"] == 3
    Held.release.set()
    worker.close()
    stored = read_attributions(str(tmp_path)).sort_values("request_id")
    assert stored["request_id"].tolist() == ["big-0", "big-1", "big-2", "r2"]
    assert stored["explain_rate"].tolist() == [0.25] * 4


def test_after_a_drain_an_offered_call_is_written_before_offer_returns(tmp_path):
    """After a stop signal's drain the server may die as soon as it answers: a call sampled
    then is attributed and written when ``offer`` returns, not at the worker's next tick."""
    worker = AttributionWorker(str(tmp_path), _linear_explainer, rate=1.0)
    assert worker.drain()
    worker.offer(pd.DataFrame({"a": [2.0]}), "late", None)
    stored = read_attributions(str(tmp_path))  # before any close
    assert stored["request_id"].tolist() == ["late"]
    assert stored["attribution_a"].tolist() == [4.0]
    worker.close()


def test_worker_numbers_rows_like_the_log_and_partitions_by_event_time(tmp_path):
    worker = AttributionWorker(str(tmp_path), _linear_explainer, rate=1.0)
    two_days_ago = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=2)).isoformat()
    worker.offer(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), "many", None)
    worker.offer(pd.DataFrame({"a": [4.0]}), "past", two_days_ago)
    worker.offer(pd.DataFrame({"a": [5.0]}), "odd", "not a time")
    worker.offer(pd.DataFrame({"a": [np.nan]}), "nan", None)
    worker.close()
    stored = read_attributions(str(tmp_path)).set_index("request_id")
    assert sorted(stored.index) == ["many-0", "many-1", "many-2", "nan", "odd", "past"]
    assert stored.loc["many-2", "attribution_a"] == 6.0
    assert np.isnan(stored.loc["nan", "attribution_a"])
    days = sorted(os.listdir(attributions_uri(str(tmp_path))))
    assert days[0] == f"date={two_days_ago[:10]}" and len(days) == 2
    # a window around today only finds the past row's day when it reaches it
    today = pd.Timestamp.now(tz="UTC").normalize()
    near = read_attributions(str(tmp_path), start=today, end=today + pd.Timedelta(days=1))
    assert "past" not in set(near["request_id"]) and "odd" in set(near["request_id"])


def test_an_input_with_a_reserved_name_is_attributed_under_its_logged_name(tmp_path):
    worker = AttributionWorker(str(tmp_path), _linear_explainer, rate=1.0)
    worker.offer(pd.DataFrame({"timestamp": [1.0], "x": [2.0]}), "r", None)
    worker.close()
    stored = read_attributions(str(tmp_path))
    assert {"attribution_input_timestamp", "attribution_x"} <= set(stored.columns)


def test_tree_model_served_explainer_gives_shaps_own_values():
    shap = pytest.importorskip("shap")
    X = _frame(300, seed=5)
    forest = RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0)
    forest.fit(X, X["f0"] * X["f1"] + X["f2"])
    profile = mo.build_profile(X)
    explainer = ServingExplainer(profile, forest.predict, raw_model=forest)
    rows = _frame(20, seed=6)
    attributions, output = explainer(rows)
    assert attributions.method == "tree_shap" and output == "prediction"
    expected = shap.TreeExplainer(forest).shap_values(rows)
    assert np.allclose(attributions.values.to_numpy(), expected, atol=1e-9)
    assert attributions.reconciliation_error < 1e-6


def test_read_logs_with_attributions_joins_on_request_id_and_leaves_the_rest_null(tmp_path):
    from mlflow_observe.logs.writer import PredictionLogWriter

    writer = PredictionLogWriter(str(tmp_path), model_name="m")
    worker = AttributionWorker(str(tmp_path), _linear_explainer, rate=1.0)
    for i in range(6):
        frame = pd.DataFrame({"a": [float(i)]})
        request_id = worker.offer(frame, None, None) if i % 2 == 0 else None
        writer.submit(frame, [float(i)], latency_seconds=0.0, request_id=request_id)
    writer.close()
    worker.close()
    logs = mo.read_logs(str(tmp_path), with_attributions=True).sort_values("a")
    assert logs["attribution_a"].tolist()[::2] == [0.0, 4.0, 8.0]
    assert logs["attribution_a"].isna().tolist() == [False, True] * 3
    assert len(mo.read_logs(str(tmp_path))) == 6
    assert "attribution_a" not in mo.read_logs(str(tmp_path)).columns


def _attribution_processes(server) -> dict:
    """``{pid: parent pid}`` of the server's attribution processes (each in a session of its
    own, a child of a uvicorn worker)."""
    return {
        pid: parent for pid, (parent, command) in server.processes().items() if _ENTRY in command
    }


@pytest.mark.server
def test_a_killed_attribution_process_leaves_predictions_and_log_rows_alone(
    linear_model, tracking_uri, tmp_path
):
    model, _ = linear_model
    log_dir = tmp_path / "logs"
    X = _frame(60, seed=7)
    server = Server("models:/linear/1", tracking_uri, log_dir, workers=1, **{EXPLAIN_RATE_ENV: "1"})
    try:
        session = requests.Session()
        before = [_post(server, X.iloc[[i]], f"before-{i}", session)[0] for i in range(20)]
        assert len(_wait_for_attributions(log_dir, 20, timeout=180)) == 20
        children = _attribution_processes(server)
        assert len(children) == 1, children
        os.kill(next(iter(children)), signal.SIGKILL)
        time.sleep(0.5)
        after = [_post(server, X.iloc[[i]], f"after-{i}", session)[0] for i in range(20, 60)]
        assert _attribution_processes(server) == {}  # reaped, not restarted
    finally:
        server.stop()
    output = server.output()
    assert output.count("The attribution process stopped") == 1, output
    # the reason is the first seen: its exit code, or (when the thread reading its answers is
    # scheduled late on a busy machine) the pipe the next sampled call finds broken
    assert "exited with code -9" in output or "its input is closed" in output, output
    # every answer right, every call logged, attributions only from before the kill
    assert np.allclose(before + after, model.predict(X))
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == 60 and logs["request_id"].is_unique
    assert np.allclose(
        logs.set_index("request_id").loc[[f"before-{i}" for i in range(20)]]["prediction"], before
    )
    attributed = set(logs.loc[logs["attribution_f0"].notna(), "request_id"])
    assert attributed == {f"before-{i}" for i in range(20)}


@pytest.mark.server
def test_a_starved_attribution_process_leaves_predictions_and_log_rows_alone(
    linear_model, tracking_uri, tmp_path
):
    """The attribution process stopped (SIGSTOP: what SCHED_IDLE gives it under sustained
    full load) while calls keep coming: every answer right and logged, the worker samples
    down, and the stop counts the rows it never attributed, within its bound."""
    model, _ = linear_model
    log_dir = tmp_path / "logs"
    X = _frame(1520, seed=9)
    server = Server("models:/linear/1", tracking_uri, log_dir, workers=1, **{EXPLAIN_RATE_ENV: "1"})
    try:
        session = requests.Session()
        before = [_post(server, X.iloc[[i]], f"before-{i}", session)[0] for i in range(20)]
        assert len(_wait_for_attributions(log_dir, 20, timeout=180)) == 20
        (child,) = _attribution_processes(server)
        assert os.sched_getscheduler(child) == os.SCHED_IDLE
        os.kill(child, signal.SIGSTOP)
        # 1,500 rows in calls of 50: more than the rows in flight and the queue hold
        after = [
            _post(server, X.iloc[20 + 50 * k : 70 + 50 * k], f"starved-{k}", session)
            for k in range(30)
        ]
    finally:
        stopped = time.monotonic()
        server.stop()  # every process of the group gone: the stopped child too
    took = time.monotonic() - stopped
    output = server.output()
    assert took <= 2 * STOP_SECONDS + 10, (took, output)
    assert np.allclose(before + [p for answer in after for p in answer], model.predict(X))
    logs = mo.read_logs(str(log_dir), with_attributions=True)
    assert len(logs) == len(X) and np.allclose(
        logs.sort_values("timestamp", kind="stable")["prediction"], model.predict(X)
    )
    attributed = set(logs.loc[logs["attribution_f0"].notna(), "request_id"])
    assert attributed == {f"before-{i}" for i in range(20)}
    # sampled down, and the rows still queued or in flight at the stop named in the warning
    assert "The explainer falls behind the sampled predictions" in output, output
    lost = [int(n) for n in re.findall(r"(\d+) rows left without attributions", output)]
    assert lost and lost[0] > 0, output


@pytest.mark.server
def test_sigterm_under_load_attributes_every_answered_call_within_the_bound(
    linear_model, tracking_uri, tmp_path
):
    """Two uvicorn workers, each with its own attribution process; four clients send calls
    while SIGTERM comes: every answered call has its log row and its attribution, and every
    process of the server (the attribution processes too) has exited within the bound."""
    model, _ = linear_model
    log_dir = tmp_path / "logs"
    X = _frame(400, seed=8)
    server = Server("models:/linear/1", tracking_uri, log_dir, workers=2, **{EXPLAIN_RATE_ENV: "1"})
    answered: dict = {}
    stop = threading.Event()

    def client(k):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            request_id = f"c{k}-{i}"
            row = X.iloc[[(k * 100 + i) % len(X)]]
            try:
                response = session.post(
                    f"{server.url}/invocations",
                    json={
                        "dataframe_split": row.to_dict(orient="split"),
                        "params": {"request_id": request_id},
                    },
                    timeout=30,
                )
            except requests.RequestException:
                break  # the server is stopping
            if response.status_code == 200:
                answered[request_id] = (row, response.json()["predictions"][0])
            i += 1
            time.sleep(0.01)

    try:
        for i in range(8):
            _post(server, X.iloc[[i]], f"warm-{i}", requests)  # new connections: both workers
        assert len(_wait_for_attributions(log_dir, 8, timeout=180)) == 8
        children = _attribution_processes(server)
        # one attribution process per uvicorn worker
        assert len(children) == 2 and len(set(children.values())) == 2, children
        clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(3.0)
    finally:
        outside = server.processes()
        stopped = time.monotonic()
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
        stop.set()
        for thread in clients:
            thread.join(60)
        server.process.wait(timeout=60)
        server.wait_for_group(also=outside)  # the attribution processes too
    took = time.monotonic() - stopped
    output = server.output()
    assert took <= 2 * STOP_SECONDS + 5, (took, output)
    assert len(answered) > 20, output
    logs = mo.read_logs(str(log_dir), with_attributions=True).set_index("request_id")
    ids = sorted(answered)
    assert set(ids) <= set(logs.index), output
    rows = pd.concat([answered[i][0] for i in ids], ignore_index=True)
    assert np.allclose(logs.loc[ids, "prediction"], [answered[i][1] for i in ids])
    # Every answered call is attributed, except what the worker sampled out when its
    # attribution process (SCHED_IDLE) fell behind on a busy machine (the kept rows then
    # record a rate below 1), or what that process had not finished when the stop's bound
    # passed (counted and named in its warning): never a silent loss.
    attributed = logs.loc[ids, ATTRIBUTIONS].notna().all(axis=1).to_numpy()
    missing = int((~attributed).sum())
    reported = sum(int(n) for n in re.findall(r"(\d+) rows left without attributions", output))
    sampled_down = bool((logs[EXPLAIN_RATE].dropna() < 1).any())
    unattributed = [i for i, done in zip(ids, attributed, strict=True) if not done]
    assert missing <= reported or sampled_down, (unattributed, reported, output)
    assert attributed.sum() > 20, output
    expected = _closed_form(model, None, rows)[attributed]
    assert np.allclose(
        logs.loc[ids, ATTRIBUTIONS].to_numpy()[attributed], expected.to_numpy(), atol=1e-9
    )
