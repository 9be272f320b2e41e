"""Text and embedding columns through the profile, compare, the evaluator and the report.

Real text: Rotten Tomatoes critics' snippets (fresh against rotten, and against plot
summaries) and Guardian headlines (before the pandemic against its first months, and one
period split at random); synthetic embeddings with a known mean shift, a correlation-only
change and none.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from corpora import guardian_headlines, rotten_tomatoes
from mlflow.tracking import MlflowClient

import mlflow_observe as mo
from mlflow_observe.core.profile.data_profile import DataProfile, ProfileError
from mlflow_observe.monitoring.catalogue import metric_catalogue


@pytest.fixture(scope="module")
def tomatoes():
    frame = rotten_tomatoes()
    return {k: g.sample(frac=1, random_state=0)["text"] for k, g in frame.groupby("category")}


@pytest.fixture(scope="module")
def headlines():
    return guardian_headlines()


def _frame(texts, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"review": np.asarray(texts, dtype=object), "x": rng.normal(size=len(texts))}
    )


@pytest.fixture(scope="module")
def fresh_baseline(tomatoes):
    return mo.build_profile(_frame(tomatoes["fresh"].iloc[:2000]))


def test_a_text_column_is_profiled_with_descriptors_vocabulary_and_a_bounded_sample(
    fresh_baseline,
):
    assert "review" in fresh_baseline.unstructured and "review" not in fresh_baseline.excluded
    assert [c for c in fresh_baseline.columns if c.startswith("review.")] == [
        "review.length_characters",
        "review.length_words",
        "review.sentence_count",
        "review.non_letter_share",
        "review.oov_share",
    ]
    part = fresh_baseline.unstructured["review"]
    assert part.count == 2000 and len(part.texts()) == 2000 <= part.sample_size
    assert all(len(t) <= 1000 for t in part.texts())
    # Leave-one-out: the reference's own texts are not all in-vocabulary (a word only one
    # text holds is out of vocabulary for it, as for a window text).
    oov = fresh_baseline.columns["review.oov_share"]
    assert oov.count == 2000 and oov.mean > 0.01
    again = DataProfile.from_json(fresh_baseline.to_json())
    assert again.unstructured["review"].vocabulary == part.vocabulary
    assert again.unstructured["review"].texts() == part.texts()


def test_critics_drift_from_plot_summaries_and_rotten_from_fresh_but_not_fresh_from_fresh(
    fresh_baseline, tomatoes
):
    calm = mo.compare(fresh_baseline, _frame(tomatoes["fresh"].iloc[2000:3000], 1))
    rotten = mo.compare(fresh_baseline, _frame(tomatoes["rotten"].iloc[:1000], 2))
    plot = mo.compare(fresh_baseline, _frame(tomatoes["plot"].iloc[:1000], 3))
    auc = {
        name: c.metrics()["drift/review/text_domain_auc"]
        for name, c in (("calm", calm), ("rotten", rotten), ("plot", plot))
    }
    assert auc["calm"] < calm.drift.column("review").threshold < auc["rotten"] < auc["plot"]
    assert calm.metrics()["drift/review/drifted"] == 0.0
    assert rotten.metrics()["drift/review/drifted"] == 1.0
    # The words say why: sentiment words for rotten reviews, pronouns for plot summaries.
    why = rotten.drift.column("review").note
    assert "more frequent in the window" in why and "bad" in why
    assert plot.drift.column("review.length_words").drifted
    assert not any(c.drifted for c in calm.drift.columns)
    # The text column counts once: its descriptors are not features of the verdict.
    assert calm.drift.n_evaluated == 2 and plot.drift.n_evaluated == 2
    assert {c.role for c in plot.drift.columns if c.column.startswith("review.")} == {"descriptor"}
    assert not [f for f in calm.integrity.findings if f.check in ("missing_column", "extra_column")]
    assert {k for k in plot.metrics() if k.startswith("drift/review")} <= set(
        metric_catalogue(fresh_baseline)
    )
    row = next(r for r in rotten.to_records() if r["column"] == "review")
    assert row["metric_key"] == "drift/review/text_domain_auc"
    assert row["statistics"]["separating_terms"][0]["side"] in ("window", "reference")


def test_headlines_drift_across_the_pandemic_and_not_within_one_period(headlines):
    before = headlines.loc[headlines["date"] < "2020-03-01", "text"].sample(frac=1, random_state=0)
    during = headlines.loc[headlines["date"].between("2020-04-01", "2020-05-31"), "text"]
    baseline = mo.build_profile(pd.DataFrame({"headline": before.iloc[: len(before) // 2]}))
    calm = mo.compare(baseline, pd.DataFrame({"headline": before.iloc[len(before) // 2 :]}))
    moved = mo.compare(baseline, pd.DataFrame({"headline": during}))
    assert not calm.drift.column("headline").drifted
    assert moved.drift.column("headline").drifted
    assert moved.drift.dataset_drift and not calm.drift.dataset_drift


def test_text_opt_out_and_awkward_texts():
    texts = [f"a quiet evening {i} at home with the cat number {i % 7}" for i in range(150)] + [
        "",
        None,
        np.nan,
        12345,
        "Ünïcode wörds, and 42 numbers!",
    ] * 30
    frame = pd.DataFrame({"note": pd.Series(texts, dtype=object)})
    opted_out = mo.build_profile(frame, text_columns=False)
    assert "note" in opted_out.excluded and not opted_out.unstructured
    profile = mo.build_profile(frame)
    part = profile.unstructured["note"]
    assert part.n_missing == 60 and part.count == 150 + 90
    # A one-row window: the domain classifier is skipped with its reason, nothing raises.
    with pytest.warns(RuntimeWarning, match="at least 100 texts"):
        one = mo.compare(profile, pd.DataFrame({"note": ["hello there"]}))
    row = one.drift.column("note")
    assert row.status == "skipped" and "at least 100 texts" in row.note
    assert "drift/note/text_domain_auc" not in one.metrics()
    # A window without the text column: one finding for the column, none for its descriptors.
    lacking = mo.compare(profile, pd.DataFrame({"other": range(300)}))
    missing = [f.column for f in lacking.integrity.findings if f.check == "missing_column"]
    assert missing == ["note"]
    assert lacking.drift.column("note").note == "column missing from the window"
    # Numbers in a text column are read as their text.
    window = pd.DataFrame({"note": pd.Series([3.5, "fine", None] * 100, dtype=object)})
    assert mo.compare(profile, window).drift.column("note").status != "skipped"


# -- embeddings --------------------------------------------------------------------------


def _vectors(n, dim=16, shift=0.0, rho=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    if rho:  # the first two dimensions correlated, each still standard normal
        x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]
    x[:, 0] += shift
    return x


def test_a_column_of_vectors_with_a_moved_mean_drifts_by_every_method():
    baseline = mo.build_profile(pd.DataFrame({"doc": list(_vectors(1500))}))
    assert baseline.unstructured["doc"].dimension == 16 and not baseline.columns
    calm = mo.compare(baseline, pd.DataFrame({"doc": list(_vectors(1000, seed=1))}))
    moved = mo.compare(baseline, pd.DataFrame({"doc": list(_vectors(1000, shift=0.5, seed=2))}))
    keys = [
        "drift/doc/embedding_domain_auc",
        "drift/doc/embedding_euclidean_distance",
        "drift/doc/embedding_cosine_distance",
        "drift/doc/embedding_share_drifted_components",
        "drift/doc/drifted",
    ]
    assert set(keys) <= set(moved.metrics()) and set(keys) <= set(calm.metrics())
    # Alert rules and gate thresholds may name every key a window logs.
    assert set(keys) <= set(metric_catalogue(baseline))
    assert (
        moved.metrics()["drift/doc/drifted"] == 1.0 and calm.metrics()["drift/doc/drifted"] == 0.0
    )
    row = moved.drift.column("doc")
    assert row.statistics["euclidean"]["drifted"] and row.statistics["cosine"]["drifted"]
    # The moments see every row: the mean moved by 0.5 on one dimension.
    assert row.statistics["mean_shift"] == pytest.approx(0.5, abs=0.08)
    assert calm.drift.column("doc").status == "ok"


def test_a_correlation_only_change_of_a_declared_group_is_the_classifier_s():
    def frame(rho, n, seed):
        x = _vectors(n, dim=8, rho=rho, seed=seed)
        return pd.DataFrame({f"e{j}": x[:, j] for j in range(8)})

    group = {"doc": [f"e{j}" for j in range(8)]}
    baseline = mo.build_profile(frame(0.0, 2000, 0), embeddings=group)
    assert list(baseline.unstructured) == ["doc"] and not baseline.columns
    changed = mo.compare(baseline, frame(0.9, 2000, 1)).drift.column("doc")
    assert changed.drifted
    assert not changed.statistics["euclidean"]["drifted"]
    assert not changed.statistics["components_drifted"]
    with pytest.raises(ProfileError, match=r"not found in the reference data: \['e9'\]"):
        mo.build_profile(frame(0.0, 200, 0), embeddings={"doc": ["e0", "e9"]})
    lacking = mo.compare(baseline, frame(0.0, 500, 2).drop(columns=["e3"]))
    assert "missing from the window: ['e3']" in lacking.drift.column("doc").note
    missing = [f.column for f in lacking.integrity.findings if f.check == "missing_column"]
    assert missing == ["e3"]


def test_vectors_of_other_lengths_or_with_nan_are_counted_apart_and_said():
    uneven = pd.DataFrame({"v": [[1.0, 2.0], [1.0, 2.0, 3.0]] * 60})
    profile = mo.build_profile(uneven)
    assert "different lengths" in profile.excluded["v"] and not profile.unstructured
    baseline = mo.build_profile(pd.DataFrame({"v": list(_vectors(300, dim=4))}))
    window = [list(v) for v in _vectors(300, dim=4, seed=1)]
    window[:50] = [[1.0, 2.0]] * 50  # another encoder's length
    window[50:60] = [[np.nan, 0.0, 0.0, 0.0]] * 10
    window[60:70] = [None] * 10
    result = mo.compare(baseline, pd.DataFrame({"v": pd.Series(window, dtype=object)}))
    part = result.current.unstructured["v"]
    assert (part.n_invalid, part.n_missing, part.count) == (60, 10, 230)
    assert "60 vectors of the window were left out" in result.drift.column("v").note
    wrong = mo.compare(baseline, pd.DataFrame({"v": [[1.0, 2.0]] * 300}))
    assert wrong.drift.column("v").status == "skipped"
    assert "300 vectors of the window were left out" in wrong.drift.column("v").note


def test_parts_merge_exactly_and_malformed_parts_are_refused(tomatoes):
    frame = _frame(tomatoes["fresh"].iloc[:600])
    frame["doc"] = list(_vectors(600, dim=3))
    baseline = mo.build_profile(frame)
    whole = baseline.empty_like()
    whole.update(frame)
    first, second = baseline.empty_like(), baseline.empty_like()
    first.update(frame.iloc[:250])
    second.update(frame.iloc[250:])
    merged = first + second
    doc, expected = merged.unstructured["doc"], whole.unstructured["doc"]
    assert doc.count == 600
    np.testing.assert_allclose(doc.mean, np.mean(np.vstack(frame["doc"]), axis=0))
    np.testing.assert_allclose(doc.variance, np.var(np.vstack(frame["doc"]), axis=0, ddof=1))
    np.testing.assert_allclose(doc.m2, expected.m2)
    assert sorted(merged.unstructured["review"].texts()) == sorted(
        whole.unstructured["review"].texts()
    )
    np.testing.assert_array_equal(
        merged.columns["review.length_words"].counts, whole.columns["review.length_words"].counts
    )
    payload = json.loads(baseline.to_json())
    payload["unstructured"][1]["vectors"][3] = [1.0, "x", 2.0]
    with pytest.raises(ProfileError, match=r"unstructured\[1\]\.vectors\[3\]\[1\]"):
        DataProfile.from_dict(payload)
    payload = json.loads(baseline.to_json())
    payload["unstructured"][0]["vocabulary"]["document_frequency"]["film"] = -2
    with pytest.raises(ProfileError, match=r"document_frequency\['film'\]"):
        DataProfile.from_dict(payload)


# -- through mlflow.models.evaluate, the table and the report ------------------------------


def test_the_evaluator_logs_text_and_embedding_keys_the_table_and_the_report(
    tracking_uri, tomatoes
):
    reference = _frame(tomatoes["fresh"].iloc[:1500])
    reference["doc"] = list(_vectors(1500, dim=8))
    with mlflow.start_run() as run:
        mo.log_baseline(reference)
    window = _frame(tomatoes["plot"].iloc[:800], 1)
    window["doc"] = list(_vectors(800, dim=8, shift=0.6, seed=3))
    with mlflow.start_run() as evaluation:
        result = mlflow.models.evaluate(
            data=window,
            model_type=mo.MONITORING_MODEL_TYPE,
            evaluators="drift",
            evaluator_config={"baseline": run.info.run_id},
        )
    stored = MlflowClient().get_run(evaluation.info.run_id).data.metrics
    for key in (
        "drift/review/text_domain_auc",
        "drift/review/drifted",
        "drift/review.length_words/wasserstein",
        "drift/doc/embedding_domain_auc",
        "drift/doc/embedding_euclidean_distance",
        "drift/doc/embedding_share_drifted_components",
    ):
        assert key in stored and key in result.metrics, key
    assert stored["drift/review/text_domain_auc"] > 0.9 and stored["drift/doc/drifted"] == 1.0
    # Two features (x, review) and the embedding: two of three drift.
    assert stored["drift/share_drifted_columns"] == pytest.approx(2 / 3)
    folder = mlflow.artifacts.download_artifacts(run_id=evaluation.info.run_id)
    table = json.loads(open(f"{folder}/drift_table.json").read())
    rows = {r["column"]: r for r in (table if isinstance(table, list) else table["columns"])}
    assert rows["review"]["statistics"]["separating_terms"]
    report = open(f"{folder}/drift_report.html").read()
    assert "Text and embedding columns" in report and "mean vectors, Euclidean" in report
    # A calm window through the Python API: fresh reviews the baseline did not see.
    calm = _frame(tomatoes["fresh"].iloc[1500:2300], 2)
    calm["doc"] = list(_vectors(800, dim=8, seed=5))
    quiet = mo.evaluate_drift(calm, baseline=run.info.run_id)
    assert (
        quiet.metrics["drift/review/drifted"] == 0.0 and quiet.metrics["drift/doc/drifted"] == 0.0
    )
    assert quiet.metrics["drift/review/text_domain_auc"] < 0.56
    assert quiet.metrics["drift/dataset_drift"] == 0.0


def test_a_parquet_window_with_list_columns_streams_batch_by_batch(tmp_path, tomatoes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    reference = _frame(tomatoes["fresh"].iloc[:1200])
    reference["doc"] = list(_vectors(1200, dim=5))
    baseline = mo.build_profile(reference)
    texts = tomatoes["rotten"].iloc[:900].tolist()
    table = pa.table(
        {
            "review": pa.array(texts, pa.string()),
            "x": pa.array(np.random.default_rng(1).normal(size=900)),
            "doc": pa.array(
                [list(v) for v in _vectors(900, dim=5, seed=4)], pa.list_(pa.float32())
            ),
        }
    )
    path = tmp_path / "window.parquet"
    pq.write_table(table, path, row_group_size=200)  # read back in several batches
    streamed = mo.compare(baseline, str(path))
    whole = mo.compare(baseline, table.to_pandas())
    assert streamed.current.unstructured["doc"].count == 900
    np.testing.assert_allclose(
        streamed.current.unstructured["doc"].mean, whole.current.unstructured["doc"].mean, rtol=1e-6
    )
    assert streamed.drift.column("review").drifted and not streamed.drift.column("doc").drifted


@pytest.mark.slow
def test_calm_windows_false_alarm_rates(fresh_baseline, tomatoes):
    """Measured: 0 of 10 calm text windows and 0 of 40 calm embedding windows alarm
    (alpha = 0.001 each: about 0.01 and 0.04 expected)."""
    rest = tomatoes["fresh"].iloc[2000:].reset_index(drop=True)
    windows = [rest.iloc[i : i + 500] for i in range(0, len(rest) - 499, 500)][:10]
    text_alarms = descriptor_alarms = 0
    for i, texts in enumerate(windows):
        drift = mo.compare(fresh_baseline, _frame(texts, 10 + i)).drift
        text_alarms += drift.column("review").drifted
        descriptor_alarms += any(c.drifted for c in drift.columns if c.role == "descriptor")
    assert len(windows) == 10 and text_alarms <= 1 and descriptor_alarms <= 1
    baseline = mo.build_profile(pd.DataFrame({"doc": list(_vectors(2000, dim=32))}))
    alarms = {"domain": 0, "euclidean": 0, "components": 0}
    for i in range(40):
        row = mo.compare(
            baseline, pd.DataFrame({"doc": list(_vectors(1000, dim=32, seed=100 + i))})
        ).drift.column("doc")
        alarms["domain"] += row.drifted
        alarms["euclidean"] += row.statistics["euclidean"]["drifted"]
        alarms["components"] += row.statistics["components_drifted"]
    assert max(alarms.values()) <= 1, alarms
