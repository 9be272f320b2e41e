"""Attribution drift: the baseline's global importance, each window's, and their comparison.

The references are closed forms. For a linear model ``f = w . x`` the
interventional Shapley value of feature ``j`` is ``w_j (x_j - m_j)`` (``m``: the
background's means). For ``f = x1 * x2 + x3`` against background rows ``b``, an
ordering and its reverse give ``x1`` the value ``(x1 - b1)(x2 + b2) / 2``, so
averaged over the background ``phi_1 = ((x1 - m1) x2 + x1 m2 - m12) / 2`` (``m12``:
the mean of ``b1 b2``); with standard normal features the global importances are
``E|x1 x2| / 2 = 1 / pi`` for each of ``x1``, ``x2`` and ``E|x3| = sqrt(2 / pi)``.
"""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import DAY, churned, customers, write_traffic
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

import mlflow_observe as mo
from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import DataProfile, ProfileError
from mlflow_observe.logs.attributions import write_attributions
from mlflow_observe.monitoring.catalogue import metric_catalogue
from mlflow_observe.tracking.predictor import record_impact

LINEAR = np.array([2.0, 1.0, 0.5, 0.0])
COLUMNS = ["x1", "x2", "x3", "x4"]
HALF_NORMAL = math.sqrt(2 / math.pi)  # E|z| for a standard normal z


class Interaction:
    """``x1 * x2 + x3``: x1 matters as much as its partner x2 lets it."""

    def predict(self, frame):
        return frame["x1"].to_numpy() * frame["x2"].to_numpy() + frame["x3"].to_numpy()


def _normal(n, seed, columns=("x1", "x2", "x3"), scale=None):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(columns))), columns=list(columns))
    for column, factor in (scale or {}).items():
        frame[column] *= factor
    return frame


@pytest.fixture(scope="module")
def linear():
    reference = _normal(20_000, 0, COLUMNS)
    model = LinearRegression().fit(reference, reference.to_numpy() @ LINEAR)
    return model, reference, record_impact(mo.build_profile(reference), model, reference)


@pytest.fixture(scope="module")
def interaction():
    reference = _normal(20_000, 1)
    return reference, record_impact(mo.build_profile(reference), Interaction(), reference)


def _with_linear_attributions(window, means, *, rate=1.0, seed=0):
    """The window with closed-form attributions logged for a ``rate`` share of its rows."""
    values = (window[COLUMNS].to_numpy() - means) * LINEAR
    unsampled = np.random.default_rng(seed).random(len(window)) >= rate
    values[unsampled] = np.nan
    return window.assign(**{f"attribution_{c}": values[:, j] for j, c in enumerate(COLUMNS)})


def _interaction_attributions(window, background):
    """Closed-form Shapley values of ``x1 * x2 + x3`` against ``background`` (module docstring)."""
    m1, m2, m3 = (background[c].mean() for c in ("x1", "x2", "x3"))
    m12 = (background["x1"] * background["x2"]).mean()
    x1, x2, x3 = (window[c].to_numpy() for c in ("x1", "x2", "x3"))
    return window.assign(
        attribution_x1=((x1 - m1) * x2 + x1 * m2 - m12) / 2,
        attribution_x2=((x2 - m2) * x1 + x2 * m1 - m12) / 2,
        attribution_x3=x3 - m3,
    )


def test_baseline_importance_matches_closed_form_and_round_trips(linear, interaction):
    _, _, profile = linear
    impact = profile.impact
    assert impact.attribution_method == "sampled_shapley" and impact.attribution_rows == 200
    for column, weight in zip(COLUMNS, LINEAR, strict=True):
        # mean |w (x - m)| on 200 rows: |w| E|z| within sampling noise (sd ~ 0.6 / sqrt(200)).
        assert impact.attribution[column] == pytest.approx(weight * HALF_NORMAL, rel=0.2, abs=1e-9)
    assert impact.shap is None  # the same quantity is not computed twice
    restored = DataProfile.from_json(profile.to_json())
    assert restored.impact == impact
    _, profile = interaction
    importance = profile.impact.attribution
    assert importance["x1"] == pytest.approx(1 / math.pi, rel=0.2)
    assert importance["x2"] == pytest.approx(1 / math.pi, rel=0.2)
    assert importance["x3"] == pytest.approx(HALF_NORMAL, rel=0.15)


def test_tree_models_record_shaps_tree_values():
    shap = pytest.importorskip("shap")
    reference = _normal(3000, 2, COLUMNS)
    forest = RandomForestRegressor(20, max_depth=5, random_state=0, n_jobs=1)
    forest.fit(reference, reference.to_numpy() @ LINEAR)
    profile = record_impact(mo.build_profile(reference), forest, reference)
    assert profile.impact.attribution_method == "tree_shap"
    assert profile.impact.attribution_rows == 1000
    # Against SHAP on all 3000 rows: the same ranking, shares within sampling noise.
    values = np.abs(shap.TreeExplainer(forest).shap_values(reference)).mean(axis=0)
    expected = dict(zip(COLUMNS, values / values.sum(), strict=True))
    total = sum(profile.impact.attribution.values())
    for column in COLUMNS:
        assert profile.impact.attribution[column] / total == pytest.approx(
            expected[column], abs=0.03
        )


def test_the_profile_refuses_a_damaged_importance(linear):
    payload = json.loads(linear[2].to_json())
    for bad, message in (
        ({"x1": -1.0}, ">= 0"),
        ({"x1": "high"}, "a finite number"),
        ([1.0, 2.0], "an object of column names"),
        ({f"c{i}": 1.0 for i in range(50)}, "at most 4 entries"),
    ):
        damaged = json.loads(json.dumps(payload))
        damaged["impact"]["attribution"] = bad
        with pytest.raises(ProfileError, match=message):
            DataProfile.from_dict(damaged)
    damaged = json.loads(json.dumps(payload))
    damaged["impact"]["attribution_rows"] = -3
    with pytest.raises(ProfileError, match="attribution_rows"):
        DataProfile.from_dict(damaged)


@pytest.mark.parametrize("source", ["computed", "logged"])
def test_a_partner_change_moves_the_reliance_while_the_marginals_stay_calm(interaction, source):
    """x2's scale triples; x1's and x3's distributions do not move, the model's use of them does.

    Closed form with standard normal features, x2 scaled by 3: importances
    1/pi, 1/pi, sqrt(2/pi) become 3/pi, 3/pi, sqrt(2/pi); x1's share goes from
    0.222 to 0.353 (+0.131), x3's from 0.557 to 0.295 (-0.262).
    """
    reference, profile = interaction
    window = _normal(5000, 7, scale={"x2": 3.0})
    if source == "logged":
        background = reference.sample(100, random_state=0)
        window = _interaction_attributions(window, background)
        comparison = compare(profile, window)
    else:
        comparison = compare(profile, window, explain_model=Interaction())
    by_column = {c.column: c for c in comparison.drift.columns}
    assert set(by_column) == {"x1", "x2", "x3"}  # attribution columns are never features
    assert by_column["x2"].drifted
    assert not by_column["x1"].drifted and not by_column["x3"].drifted
    result = comparison.attribution
    assert result.source == source and result.drifted
    total = 2 / math.pi + HALF_NORMAL
    shifted = 6 / math.pi + HALF_NORMAL
    expected = {
        "x1": (3 / math.pi) / shifted - (1 / math.pi) / total,
        "x3": HALF_NORMAL / shifted - HALF_NORMAL / total,
    }
    assert result.share_change["x1"] == pytest.approx(expected["x1"], abs=0.04)
    assert result.share_change["x3"] == pytest.approx(expected["x3"], abs=0.05)
    metrics = comparison.metrics()
    assert metrics["drift/attribution/drifted"] == 1.0
    assert metrics["drift/attribution/x1"] == result.share_change["x1"]
    assert 0 < metrics["drift/attribution/ndcg"] <= 1
    assert comparison.to_records()[-1]["column"] == "attribution"


def test_calm_windows_stay_quiet(linear, interaction):
    """False-alarm rate on windows drawn from the reference: 0 of 300 logged, 0 of 30 computed."""
    model, reference, profile = linear
    means = reference.sample(100, random_state=0).mean().to_numpy()
    rng = np.random.default_rng(11)
    alarms = evaluated = 0
    for seed in range(300):
        # 1,000 served rows, a tenth of them attributed: the rule's smallest window and more.
        window = _with_linear_attributions(
            _normal(1000, 1000 + seed, COLUMNS), means, rate=0.1 + 0.2 * rng.random(), seed=seed
        )
        result = compare(profile, window).attribution
        if hasattr(result, "drifted"):
            evaluated += 1
            alarms += result.drifted
    assert evaluated >= 290 and alarms == 0
    _, interaction_profile = interaction
    computed = [
        compare(interaction_profile, _normal(400, 2000 + seed), explain_model=Interaction())
        for seed in range(30)
    ]
    assert sum(c.attribution.drifted for c in computed) == 0
    assert {c.attribution.n_current for c in computed} == {200}  # the sampled method's bound


def test_odd_logs_are_counted_or_skipped_never_wrong(linear):
    _, reference, profile = linear
    means = reference.mean().to_numpy()
    window = _with_linear_attributions(_normal(2000, 3, COLUMNS), means, rate=0.5)
    # An infinite value and text where a number belongs count as not attributed.
    window["attribution_x1"] = window["attribution_x1"].astype(object)
    window.loc[0, "attribution_x1"] = "n/a"
    window.loc[1, "attribution_x2"] = np.inf
    result = compare(profile, window).attribution
    assert not result.drifted and 900 < result.n_current < 1100
    # Too few attributed rows: a skipped row with its reason, and no metric at all.
    few = _with_linear_attributions(_normal(2000, 4, COLUMNS), means, rate=0.01)
    comparison = compare(profile, few)
    record = comparison.to_records()[-1]
    assert record["status"] == "skipped" and "attribution_min_rows=100" in record["note"]
    assert not [k for k in comparison.metrics() if k.startswith("drift/attribution/")]
    lower = compare(profile, few, DriftOptions(attribution_min_rows=5)).attribution
    assert lower.n_current == record["n_current"] and lower.n_current >= 5
    # Every value missing, a feature the log never attributed, a one-row window.
    empty = _with_linear_attributions(_normal(500, 5, COLUMNS), means, rate=0.0)
    assert compare(profile, empty).attribution.reason == "no row of the window was attributed"
    partial = _with_linear_attributions(_normal(500, 5, COLUMNS), means).drop(
        columns=["attribution_x4"]
    )
    assert "lack the features ['x4']" in compare(profile, partial).attribution.reason
    one = _with_linear_attributions(_normal(1, 6, COLUMNS), means)
    assert compare(profile, one).attribution.n_current == 1
    # No model and no logged attribution: nothing to say, nothing said.
    assert compare(profile, _normal(500, 8, COLUMNS)).attribution is None
    # Logged attributions but a baseline without global importance: said, not guessed.
    plain = mo.build_profile(reference)
    skipped = compare(plain, _with_linear_attributions(_normal(500, 9, COLUMNS), means))
    assert "recorded no global importance" in skipped.attribution.reason
    assert {c.column for c in skipped.drift.columns} == set(COLUMNS)


def test_a_model_that_fails_on_the_sample_is_skipped_with_its_reason(interaction):
    _, profile = interaction

    def broken(frame):
        raise RuntimeError("model server down")

    result = compare(profile, _normal(500, 3), explain_model=broken).attribution
    assert result.to_records()[0]["status"] == "skipped" and "model server down" in result.reason


def test_a_feature_named_like_a_window_metric_gets_its_own_key():
    reference = pd.DataFrame(
        np.random.default_rng(0).normal(size=(3000, 2)), columns=["ndcg", "drifted"]
    )

    def model(frame):
        return 2 * frame["ndcg"].to_numpy() + frame["drifted"].to_numpy()

    profile = record_impact(mo.build_profile(reference), model, reference)
    metrics = compare(profile, reference.iloc[:500], explain_model=model).metrics()
    assert {"drift/attribution/ndcg_2", "drift/attribution/drifted_2"} <= set(metrics)
    assert metrics["drift/attribution/drifted"] in (0.0, 1.0)
    assert "drift/attribution/ndcg_2" in metric_catalogue(profile)


def test_the_evaluator_logs_keys_table_chart_and_report(tracking_uri, interaction):
    reference, profile = interaction
    with mlflow.start_run() as baseline_run:
        mo.log_baseline(reference, model=Interaction())
    window = _interaction_attributions(
        _normal(3000, 12, scale={"x2": 3.0}), reference.sample(100, random_state=0)
    )
    with mlflow.start_run() as run:
        result = mo.evaluate_drift(
            window, baseline_run.info.run_id, attribution_max_share_change=0.2
        )
    client = MlflowClient()
    logged = client.get_run(run.info.run_id).data.metrics
    assert logged["drift/attribution/drifted"] == 1.0
    assert logged["drift/attribution/n_rows"] == 3000
    assert {"drift/attribution/x1", "drift/attribution/x3", "drift/attribution/ndcg"} <= set(logged)
    assert "drift/attribution_x1/wasserstein" not in logged  # never compared as a column
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"drift_attribution.json", "drift_table.json", "drift_report.html"} <= paths
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "drift_plots")}
    assert "drift_plots/attribution_drift.png" in plots
    table = result.artifacts["drift_table"].content
    row = next(r for r in table if r["column"] == "attribution")
    assert row["statistic"] == logged["drift/attribution/ndcg"] and row["threshold"] == 0.9
    assert row["statistics"]["max_share_change"] == 0.2
    page = result.artifacts["drift_report"].content
    assert "Attribution drift" in page and "data:image/png;base64" in page


def test_the_monitor_attributes_windows_with_the_model_version(tracking_uri, tmp_path):
    train = customers(3000, seed=0)
    model = LogisticRegression(max_iter=1000).fit(train, churned(train))
    with mlflow.start_run():
        mo.log_model(
            model,
            name="model",
            baseline=train.assign(churned=churned(train)),
            targets="churned",
            registered_model_name="churn",
            input_example=train.head(3),
        )
    log_dir = tmp_path / "log"
    write_traffic(log_dir, model, 1, hours=4, drift_from=None)
    result = mo.monitor(
        "models:/churn/1",
        str(log_dir),
        window="1h",
        since=str(DAY),
        until=str(DAY + pd.Timedelta(hours=4)),
    )
    assert len(result.evaluated) == 4
    client = MlflowClient()
    for window in result.evaluated:
        metrics = client.get_run(window.run_id).data.metrics
        assert metrics["drift/attribution/n_rows"] == 200
        assert {"drift/attribution/tenure", "drift/attribution/ndcg"} <= set(metrics)
        assert metrics["drift/attribution/drifted"] == 0.0  # calm traffic
    path = client.download_artifacts(result.monitor_run_id, "charts/windows.json", str(tmp_path))
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    assert all(w["drifted"].get("attribution") == 0.0 for w in record["windows"])


def test_the_monitor_reads_the_attributions_the_server_logged(tracking_uri, tmp_path):
    train = customers(3000, seed=0)
    model = LogisticRegression(max_iter=1000).fit(train, churned(train))
    with mlflow.start_run():
        mo.log_model(
            model,
            name="model",
            baseline=train.assign(churned=churned(train)),
            targets="churned",
            registered_model_name="churn",
            input_example=train.head(3),
        )
    log_dir = tmp_path / "log"
    write_traffic(log_dir, model, 1, hours=2, drift_from=None)
    # What a served model at MLFLOW_OBSERVE_EXPLAIN_RATE=0.5 writes beside the log: every
    # second row's attributions, here a linear model's exact ones on the log-odds.
    logged = mo.read_logs(str(log_dir))
    sampled = logged.iloc[::2].reset_index(drop=True)  # 120 of each hour's 240
    centred = sampled[list(train.columns)] - train.mean()
    stream = pd.DataFrame(
        {
            "request_id": sampled["request_id"],
            "timestamp": sampled["timestamp"],
            **{f"attribution_{c}": model.coef_[0][j] * centred[c] for j, c in enumerate(train)},
            "explain_base_value": 0.0,
            "explain_rate": 0.5,
            "explain_method": "exact",
            "explain_output": "prediction",
        }
    )
    write_attributions(str(log_dir), stream, name="test-1")
    result = mo.monitor(
        "models:/churn/1",
        str(log_dir),
        window="1h",
        since=str(DAY),
        until=str(DAY + pd.Timedelta(hours=2)),
    )
    assert len(result.evaluated) == 2
    client = MlflowClient()
    for window in result.evaluated:
        metrics = client.get_run(window.run_id).data.metrics
        span = window.window
        in_window = (sampled["timestamp"] >= span.start) & (sampled["timestamp"] < span.end)
        # The logged rows decide, not the model on the window's 200-row sample.
        assert metrics["drift/attribution/n_rows"] == in_window.sum() != 200
        assert metrics["drift/attribution/drifted"] == 0.0


def test_a_streamed_window_reads_its_logged_attributions_part_by_part(tracking_uri, interaction):
    reference, _ = interaction
    with mlflow.start_run() as baseline_run:
        mo.log_baseline(reference, model=Interaction())
    window = _interaction_attributions(
        _normal(3000, 13, scale={"x2": 3.0}), reference.sample(100, random_state=0)
    )
    whole = compare(mo.load_baseline(baseline_run.info.run_id), window).attribution
    parts = iter([window.iloc[:1000], window.iloc[1000:]])
    with mlflow.start_run():
        streamed = mo.evaluate_drift(parts, baseline_run.info.run_id).metrics
    assert streamed["drift/attribution/n_rows"] == 3000
    assert streamed["drift/attribution/x1"] == pytest.approx(whole.share_change["x1"], abs=1e-12)
    # No logged attributions: the model attributes the streamed window's row sample.
    plain = iter([window[["x1", "x2", "x3"]].iloc[:1500], window[["x1", "x2", "x3"]].iloc[1500:]])
    with mlflow.start_run():
        computed = mo.evaluate_drift(
            plain, baseline_run.info.run_id, attribution_model=Interaction()
        ).metrics
    assert computed["drift/attribution/n_rows"] == 200 and computed["drift/attribution/drifted"]


def test_the_report_sections_escape_feature_names():
    from mlflow_observe.core.explain.errors import error_attribution
    from mlflow_observe.core.performance.degradation import DegradationResult
    from mlflow_observe.report.html import render_degradation_report, render_report

    name = "<img src=x onerror=alert(1)>"
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({name: rng.normal(size=2000), "b": rng.normal(size=2000)})

    def model(frame):
        return 3 * frame[name].to_numpy() + frame["b"].to_numpy()

    profile = record_impact(mo.build_profile(reference), model, reference)
    comparison = compare(profile, reference.iloc[:500], explain_model=model)
    page = render_report(
        comparison, baseline=profile, options=DriftOptions(), baseline_label="x", plots={}
    )
    assert "Attribution drift" in page and name not in page and "&lt;img" in page
    errors = error_attribution(
        pd.DataFrame({name: rng.normal(size=100), "b": rng.normal(size=100)}),
        np.r_[np.ones(50), np.zeros(50)],
        task="classification",
    )
    page = render_degradation_report(
        DegradationResult("classification", "realised", [], False, 100, []),
        baseline_label="x",
        errors=errors,
    )
    assert "Features behind the errors" in page and name not in page and "&lt;img" in page


def test_text_and_integer_inputs_of_a_pipeline_are_attributed():
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    n = 4000
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "age": rng.integers(18, 80, n),
            "noise": rng.normal(size=n),
        }
    )
    labels = ((frame["plan"] == "pro") | (frame["age"] > 60)).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(max_iter=1000),
    ).fit(frame, labels)
    profile = record_impact(mo.build_profile(frame), model, frame)
    importance = profile.impact.attribution
    assert set(importance) == {"plan", "age", "noise"}
    assert importance["noise"] < min(importance["plan"], importance["age"])
    # A window where only plan's mix moved: plan's marginal drifts, and so does its share.
    window = frame.sample(1000, random_state=1).assign(
        plan=rng.choice(["basic", "plus", "pro"], 1000, p=[0.1, 0.1, 0.8])
    )
    result = compare(profile, window, explain_model=model).attribution
    assert result.n_current == 200 and result.method == "sampled_shapley"
    assert np.isfinite(list(result.share_change.values())).all()
    calm = compare(profile, frame.sample(1000, random_state=2), explain_model=model).attribution
    assert not calm.drifted
