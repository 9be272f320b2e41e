"""The Spark engine equals the pandas engine; scan_logs streams a log window.

Spark runs in local mode on two cores, on loopback, started once for the module.
"""

import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import DAY, binary_frame, churned, customers, log_version, make_frame, write_traffic

import mlflow_observe as mo
from mlflow_observe.engines import spark as engine
from mlflow_observe.tracking import tags

# Needs a local Spark session: not in the fast subset.
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import mlflow_observe
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlflow-observe-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def reference_frame(n=3000, seed=1):
    frame = make_frame(n, seed=seed)
    frame["count"] = np.random.default_rng(seed).poisson(3, n)
    frame.loc[::17, "num_a"] = np.nan
    frame.loc[::29, "num_b"] = np.inf
    return frame


def awkward_window(n=4000, seed=2, shift=0.0):
    """NaN, infinities, values beyond the reference range, unseen categories, missing flags."""
    frame = reference_frame(n, seed=seed)
    frame["num_a"] += shift
    frame.loc[::11, "num_b"] = np.nan
    frame.loc[::31, "num_b"] = -np.inf
    frame.loc[::97, "num_a"] = 1e6
    frame.loc[::13, "cat"] = "purple"
    frame.loc[::7, "cat"] = None
    frame["flag"] = frame["flag"].astype(object)
    frame.loc[::19, "flag"] = None
    return frame


def assert_same_counts(spark_profile, pandas_profile):
    assert spark_profile.n_rows == pandas_profile.n_rows
    assert list(spark_profile.columns) == list(pandas_profile.columns)
    for name, column in spark_profile.columns.items():
        ours, theirs = column.to_dict(), pandas_profile.columns[name].to_dict()
        for key, value in theirs.items():
            if isinstance(value, float) or key == "sums":  # sums: added in another order
                assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (name, key)
            else:
                assert ours[key] == value, (name, key)


@pytest.fixture(scope="module")
def baseline():
    return mo.build_profile(reference_frame())


@pytest.mark.spark
@pytest.mark.parametrize("partitions", [3, 40])  # 40: partial profiles merged in groups first
def test_window_counts_equal_pandas(spark, baseline, partitions):
    window = awkward_window()
    expected = baseline.empty_like()
    expected.update(window)
    counted = engine.count_window(baseline, spark.createDataFrame(window).repartition(partitions))
    assert_same_counts(counted, expected)
    # A window no larger than the sample is kept whole: the exact tests see every row.
    assert counted.sample.is_complete and len(counted.sample) == len(window)
    ours = np.sort(pd.to_numeric(pd.Series(counted.sample.values("num_b"))).to_numpy())
    theirs = np.sort(window["num_b"].to_numpy())
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.spark
def test_sample_of_a_large_window_is_bounded_and_uniform(spark, baseline):
    window = make_frame(12_000, seed=3)
    counted = engine.count_window(baseline, spark.createDataFrame(window).repartition(4))
    assert counted.sample.n_seen == 12_000 and len(counted.sample) == 5000
    kept = pd.Series(counted.sample.values("num_a")).astype(float)
    assert kept.isin(set(window["num_a"])).all()
    assert kept.mean() == pytest.approx(window["num_a"].mean(), abs=0.1)


@pytest.mark.parametrize(
    "rows, shift, drifted",
    [
        (4000, 0.0, []),  # both samples complete: the exact tests
        (4000, 0.5, ["num_a"]),
        (9000, 0.0, []),  # a window above the sample: binned statistics
        (9000, 0.5, ["num_a"]),
    ],
)
@pytest.mark.spark
def test_drift_equals_pandas(spark, baseline, rows, shift, drifted):
    window = make_frame(rows, seed=4, shift=shift)
    ours = mo.compare(baseline, spark.createDataFrame(window).repartition(3))
    theirs = mo.compare(baseline, window)
    assert ours.drift.drifted_columns == theirs.drift.drifted_columns == drifted
    assert ours.metrics() == pytest.approx(theirs.metrics(), rel=1e-9, abs=1e-12)


@pytest.mark.spark
def test_schema_mismatch_gives_the_pandas_findings(spark, baseline):
    window = make_frame(500, seed=5).drop(columns=["num_b"])
    window["num_a"] = window["num_a"].round(3).astype(str)
    window.loc[::10, "num_a"] = "n/a"  # text in a numeric column
    window["cat"] = np.arange(len(window)) % 3  # numbers in a text column
    window["extra"] = 1.0
    ours = mo.compare(baseline, spark.createDataFrame(window))
    theirs = mo.compare(baseline, window)
    assert ours.integrity.to_records() == theirs.integrity.to_records()
    checks = {(f.check, f.column) for f in ours.integrity.findings}
    assert {
        ("missing_column", "num_b"),
        ("extra_column", "extra"),
        ("type_change", "num_a"),
        ("type_change", "cat"),
    } <= checks


@pytest.mark.spark
def test_empty_window_is_the_pandas_error(spark, baseline):
    empty = spark.createDataFrame(make_frame(10)).filter("num_a > 1e9")
    with pytest.raises(mo.EmptyWindowError, match="no rows"):
        mo.compare(baseline, empty)
    with pytest.raises(mo.EmptyWindowError, match="no rows"):
        mo.evaluate_drift(empty, baseline=baseline)


@pytest.mark.spark
def test_baseline_from_spark(spark):
    reference = reference_frame(5000, seed=6)
    ours = mo.build_profile(spark.createDataFrame(reference).repartition(3), targets="flag")
    theirs = mo.build_profile(reference, targets="flag")
    assert {n: c.kind for n, c in ours.columns.items()} == {
        n: c.kind for n, c in theirs.columns.items()
    }
    assert ours.targets == "flag" and ours.metadata["engine"] == "spark"
    for name in ("cat", "flag"):
        assert ours.columns[name].categories == theirs.columns[name].categories
        assert ours.columns[name].counts.tolist() == theirs.columns[name].counts.tolist()
    relative_error = ours.metadata["quantile_relative_error"]
    for name in ("num_a", "num_b", "count"):
        column, values = ours.columns[name], reference[name].to_numpy(dtype=float)
        finite = np.sort(values[np.isfinite(values)])
        for key in ("count", "n_missing", "n_inf"):
            assert getattr(column, key) == getattr(theirs.columns[name], key)
        assert column.grid[0] == finite[0] and column.grid[-1] == finite[-1]
        # Each bin edge is a value whose rank is within the stated error of its level.
        levels = np.linspace(0.0, 1.0, 11)[1:-1]
        edges = np.quantile(finite, levels, method="inverted_cdf")
        for level, edge in zip(levels, column.bin_edges[1:-1], strict=False):
            if edge in edges:
                continue  # coincides with the exact quantile
            rank = np.searchsorted(finite, edge, side="right") / len(finite)
            assert abs(rank - level) <= relative_error + 2 / len(finite), (name, level)
    # The Spark-built baseline counts a window the same on both engines.
    window = awkward_window(2000, seed=7)
    expected = ours.empty_like()
    expected.update(window)
    assert_same_counts(engine.count_window(ours, spark.createDataFrame(window)), expected)


@pytest.mark.spark
def test_a_spark_baseline_counts_a_text_column_s_labels_over_every_row(spark):
    """Kinds come from the first 10,000 rows; a text column that has few labels there and
    more than max_categories over all rows is left out with its reason, or kept when the
    user says it is categorical (then its counts are the pandas engine's)."""
    labels = ["a", "b"] * 5000 + [f"v{i}" for i in range(20)] * 10
    reference = pd.DataFrame(
        {"late": labels, "y": np.random.default_rng(0).normal(size=len(labels))}
    )
    frame = spark.createDataFrame(reference)  # in order: the first rows hold 'a' and 'b' only
    left_out = mo.build_profile(frame, targets="late", max_categories=5)
    assert "late" not in left_out.columns and left_out.targets is None
    assert left_out.excluded["late"] == (
        "high-cardinality text (more than 5 distinct values over all rows > max_categories=5); "
        "pass kinds={column: 'categorical'} to compare it anyway"
    )
    assert list(left_out.metadata["kind_reasons"]) == ["y"]
    assert left_out.columns["y"].count == len(labels) == left_out.n_rows
    options = dict(targets="late", max_categories=5, kinds={"late": "categorical"})
    kept, theirs = mo.build_profile(frame, **options), mo.build_profile(reference, **options)
    assert kept.targets == "late" == theirs.targets
    assert kept.columns["late"].categories == theirs.columns["late"].categories
    assert kept.columns["late"].counts.tolist() == theirs.columns["late"].counts.tolist()
    assert kept.columns["late"].counts.tolist()[:2] == [5000, 5000]  # the head's labels lead


@pytest.mark.spark
def test_baseline_from_spark_records_the_reference_performance(spark):
    reference = make_frame(3000, seed=12)
    reference["label"] = (reference["num_a"] > 0).astype(int)
    reference["prediction"] = (reference["num_a"] + reference["num_b"] / 20 > 0.5).astype(int)
    ours = mo.build_profile(
        spark.createDataFrame(reference), targets="label", predictions="prediction"
    )
    theirs = mo.build_profile(reference, targets="label", predictions="prediction")
    assert ours.performance.n_rows == theirs.performance.n_rows == 3000
    for metric, value in theirs.performance.metrics.items():
        assert ours.performance.metrics[metric] == pytest.approx(value)


@pytest.mark.spark
def test_evaluate_drift_and_log_baseline_accept_spark(spark, tracking_uri):
    import mlflow

    reference = reference_frame(2000, seed=8)
    with mlflow.start_run() as training:
        mo.log_baseline(spark.createDataFrame(reference), targets="flag")
    window = log_window(2000, seed=9, day="2026-11-25")  # a log window: with timestamps
    window["num_a"] += 1.0
    ours = mo.evaluate_drift(
        spark.createDataFrame(window), baseline=training.info.run_id, log_plots=False
    )
    theirs = mo.evaluate_drift(window, baseline=training.info.run_id, log_plots=False)
    assert ours.metrics == pytest.approx(theirs.metrics, rel=1e-9, abs=1e-12)
    assert ours.metrics["drift/num_a/wasserstein"] > 0.5
    assert ours.metrics["integrity/n_extra_columns"] == 0  # the timestamp is bookkeeping
    ours_tags = mlflow.get_run(ours.run_id).data.tags
    theirs_tags = mlflow.get_run(theirs.run_id).data.tags
    for tag in (tags.DATA_FIRST_ROW, tags.DATA_LAST_ROW):
        assert ours_tags[tag] == theirs_tags[tag]
    assert ours_tags[tags.DATA_FIRST_ROW].startswith("2026-11-25T00:00:00")


@pytest.mark.spark
def test_cli_drift_with_the_spark_engine(spark, tracking_uri, tmp_path, baseline):
    from mlflow_observe.cli import cli

    profile_path = tmp_path / "baseline.json"
    profile_path.write_text(baseline.to_json())
    folder = tmp_path / "window.parquet"
    spark.createDataFrame(make_frame(3000, seed=10, shift=1.0)).write.parquet(str(folder))
    result = CliRunner().invoke(
        cli,
        [
            "drift",
            "-b",
            str(profile_path),
            "-d",
            str(folder),
            "--engine",
            "spark",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["metrics"]["drift/dataset_drift"] == 0.0  # 1 of 4 feature columns
    assert [r["column"] for r in payload["columns"] if r["drifted"]] == ["num_a"]


@pytest.mark.server
def test_without_pyspark_a_clear_error(tmp_path):
    """pyspark made unimportable: pandas still works, the Spark engine says how to install."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["pyspark"] = None  # as if it were not installed
        import pandas as pd
        import mlflow_observe as mo
        from mlflow_observe.engines import spark
        profile = mo.build_profile(pd.DataFrame({{"x": [1.0, 2.0, 3.0]}}))
        assert mo.compare(profile, pd.DataFrame({{"x": [2.0]}})).current.n_rows == 1
        try:
            spark.spark_session()
        except spark.SparkUnavailableError as exc:
            print(exc)
        from mlflow_observe.cli import cli
        profile_path = {str(tmp_path / "baseline.json")!r}
        open(profile_path, "w").write(profile.to_json())
        cli(["drift", "-b", profile_path, "-d", profile_path.replace("json", "csv"),
             "--engine", "spark"])
    """)
    pd.DataFrame({"x": [1.0]}).to_csv(tmp_path / "baseline.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )
    assert "pip install 'mlflow-observe[spark]'" in done.stdout, done.stderr
    assert done.returncode == 3
    assert "Error: The Spark engine needs pyspark" in done.stderr


# -- scan_logs --------------------------------------------------------------------------------


def write_log(folder, frame, day, name):
    path = folder / f"date={day}"
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / f"{name}.parquet", index=False)


def log_window(n, seed, day):
    frame = make_frame(n, seed=seed)
    frame.insert(
        0, "timestamp", pd.Timestamp(day, tz="UTC") + pd.to_timedelta(np.arange(n), unit="s")
    )
    return frame


@pytest.mark.parametrize("batch_size", [1, 37, 65_536])
def test_scan_logs_equals_the_window_in_memory(tmp_path, baseline, batch_size):
    write_log(tmp_path, log_window(300, 11, "2026-11-24"), "2026-11-24", "part-a")
    write_log(tmp_path, log_window(200, 12, "2026-11-25"), "2026-11-25", "part-b")
    wide = log_window(150, 13, "2026-11-25")
    wide["count"] = np.arange(150)  # a column only some files have
    write_log(tmp_path, wide, "2026-11-25", "part-c")
    scan = mo.scan_logs(tmp_path, start="2026-11-24 00:01", end="2026-11-26", batch_size=batch_size)
    streamed = mo.compare(baseline, scan)
    in_memory = mo.compare(
        baseline, mo.read_logs(str(tmp_path), start="2026-11-24 00:01", end="2026-11-26")
    )
    assert streamed.current.n_rows == 650 - 60
    assert_same_counts(streamed.current, in_memory.current)
    assert streamed.metrics() == pytest.approx(in_memory.metrics(), rel=1e-9, abs=1e-12)


def test_scan_logs_names_the_file_whose_schema_conflicts(tmp_path):
    first = log_window(50, 14, "2026-11-24")
    write_log(tmp_path, first, "2026-11-24", "part-a")
    widened = log_window(50, 15, "2026-11-25")
    widened["num_a"] = np.arange(50)  # integers where floats were: read together
    write_log(tmp_path, widened, "2026-11-25", "part-b")
    assert sum(b.num_rows for b in mo.scan_logs(tmp_path)) == 100
    broken = log_window(50, 16, "2026-11-26")
    broken["num_b"] = "text"
    write_log(tmp_path, broken, "2026-11-26", "part-c")
    with pytest.raises(mo.LogSchemaError, match=r"date=2026-11-26.part-c\.parquet.*'num_b'"):
        mo.scan_logs(tmp_path)


@pytest.mark.spark
def test_evaluate_degradation_accepts_spark(spark, tracking_uri):
    """The needed columns stream to the driver a partition at a time: the same metrics."""
    import mlflow

    reference, window = binary_frame(3000, seed=1), binary_frame(2500, seed=2, flip_region=True)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    counted = mo.evaluate_degradation(
        spark.createDataFrame(window).repartition(3), baseline=training.info.run_id
    )
    in_memory = mo.evaluate_degradation(window, baseline=training.info.run_id)
    assert counted.metrics.keys() == in_memory.metrics.keys()
    for key, value in in_memory.metrics.items():
        tolerance = 1e-3 if "roc_auc" in key else 1e-9  # ROC AUC from probability bins
        assert counted.metrics[key] == pytest.approx(value, abs=tolerance), key


@pytest.mark.spark
def test_monitor_with_the_spark_engine_equals_pandas(spark, tracking_uri, tmp_path):
    """The same windows, rows and metrics, whether the log is read by pandas or Spark;
    labels joined for the first hour (realised), none for the second (estimated)."""

    model, version = log_version(customers(2000, seed=1))
    log = str(tmp_path / "log")
    write_traffic(log, model, version, hours=2)
    first_hour = mo.read_logs(log, DAY, DAY + pd.Timedelta(hours=1))
    inputs = first_hour.rename(columns=lambda c: c.removeprefix("input_"))
    mo.log_labels(
        log,
        pd.DataFrame({"request_id": first_hour["request_id"], "label": churned(inputs).to_numpy()}),
    )
    window = dict(window="1h", since=DAY, until=DAY + pd.Timedelta(hours=2))
    by_pandas = mo.monitor(f"models:/churn/{version}", log, experiment_name="pandas", **window)
    by_spark = mo.monitor(
        f"models:/churn/{version}", log, experiment_name="spark", engine="spark", **window
    )
    assert [w.n_rows for w in by_spark.windows] == [w.n_rows for w in by_pandas.windows]
    assert [w.status for w in by_spark.windows] == ["evaluated", "evaluated"]
    realised, estimated = by_spark.windows
    assert "degradation/accuracy" in realised.metrics
    assert "degradation/estimated_accuracy" in estimated.metrics
    for ours, theirs in zip(by_spark.windows, by_pandas.windows, strict=True):
        assert ours.metrics.keys() == theirs.metrics.keys()
        for key, value in theirs.metrics.items():
            tolerance = 1e-3 if "roc_auc" in key else 1e-9  # ROC AUC from probability bins
            assert ours.metrics[key] == pytest.approx(value, rel=1e-9, abs=tolerance), key
    # The performance chart's record: realised where labels arrived, the estimate and its
    # band where they did not, whichever engine counted the rows.
    for result in (by_pandas, by_spark):
        record = json.loads(
            mlflow.artifacts.load_text(f"runs:/{result.monitor_run_id}/charts/windows.json")
        )
        first, second = record["windows"]
        assert first["realised"] == pytest.approx(realised.metrics["degradation/accuracy"])
        assert "estimated" not in first and "realised" not in second
        assert second["estimated_low"] <= second["estimated"] <= second["estimated_high"]


def test_monitor_engine_spark_without_spark_says_how_to_install(monkeypatch, tmp_path):
    from mlflow_observe.engines import spark as engine_module

    def unavailable():
        raise engine_module.SparkUnavailableError(
            f"The Spark engine needs pyspark, which is not installed. {engine_module.INSTALL_HINT}"
        )

    monkeypatch.setattr(engine_module, "spark_session", unavailable)
    from mlflow_observe.cli import cli

    result = CliRunner().invoke(
        cli, ["monitor", "-m", "models:/churn/1", "--logs", str(tmp_path), "--engine", "spark"]
    )
    assert result.exit_code == 3
    assert "pip install 'mlflow-observe[spark]'" in result.output


def test_spark_windows_of_other_dtypes_and_missing_labels_give_the_int_answer(spark, tracking_uri):
    """Float 0.0/1.0 labels with NaN where none arrived, boolean predictions: the Spark
    window's metrics are the int/int window's (labelled rows realised, the rest estimated)."""
    import mlflow
    from helpers import binary_frame

    reference, window = binary_frame(3000, seed=1), binary_frame(2000, seed=3)
    with mlflow.start_run() as training:
        mo.log_baseline(
            reference.assign(label=reference["label"].astype(float)),
            targets="label",
            predictions="prediction",
            probabilities=["p_1"],
        )
    arrived = np.arange(len(window)) % 3 != 0
    as_ints = window.assign(label=window["label"].astype("Int64").where(arrived))
    other = window.assign(
        label=window["label"].astype(float).where(arrived),
        prediction=window["prediction"].astype(bool),
    )
    in_memory = mo.evaluate_degradation(as_ints, baseline=training.info.run_id)
    counted = mo.evaluate_degradation(
        spark.createDataFrame(other).repartition(2), baseline=training.info.run_id
    )
    assert in_memory.metrics["degradation/n_unlabelled"] == (~arrived).sum()
    assert counted.metrics.keys() == in_memory.metrics.keys()
    for key, value in in_memory.metrics.items():
        tolerance = 1e-3 if "roc_auc" in key else 1e-9
        assert counted.metrics[key] == pytest.approx(value, abs=tolerance), key


@pytest.mark.spark
def test_weighted_windows_count_on_spark_as_in_pandas(spark, baseline, tracking_uri):
    """The log's sample_weight is summed on the cluster, as DataProfile.update weighs rows."""
    import mlflow

    window = make_frame(6000, seed=21, shift=0.3)
    window["sample_weight"] = np.where(np.arange(6000) % 3 == 0, 4.0, 1.0)
    frame = spark.createDataFrame(window).repartition(3)
    expected = baseline.empty_like()
    expected.update(window.drop(columns="sample_weight"), weights=window["sample_weight"])
    counted = engine.count_window(baseline, frame, weights="sample_weight")
    assert_same_counts(counted, expected)
    assert counted.n_logged == 6000 and counted.weight_sq == pytest.approx(expected.weight_sq)
    ours = mo.compare(baseline, frame, weights="sample_weight")
    theirs = mo.compare(baseline, window, weights="sample_weight")
    assert ours.metrics() == pytest.approx(theirs.metrics(), rel=1e-9, abs=1e-12)
    assert ours.metrics()["drift/rows_represented"] == window["sample_weight"].sum()
    assert "sample_weight" not in ours.current.columns
    assert ours.integrity.metrics()["integrity/n_extra_columns"] == 0.0
    # Degradation streams the weights to the driver with the other columns it needs.
    reference, scored = binary_frame(3000, seed=1), binary_frame(2500, seed=2, flip_region=True)
    scored["sample_weight"] = np.where(np.arange(2500) % 4 == 0, 8.0, 1.0)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    counted = mo.evaluate_degradation(
        spark.createDataFrame(scored).repartition(3), baseline=training.info.run_id
    )
    in_memory = mo.evaluate_degradation(scored, baseline=training.info.run_id)
    assert counted.metrics.keys() == in_memory.metrics.keys()
    for key, value in in_memory.metrics.items():
        tolerance = 1e-3 if "roc_auc" in key else 1e-9  # ROC AUC from probability bins
        assert counted.metrics[key] == pytest.approx(value, abs=tolerance), key
    assert in_memory.metrics["degradation/rows_represented"] == scored["sample_weight"].sum()


def _text_and_vectors(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    words = np.array(["good", "great", "food", "service", "price", "staff", "table", "menu"])
    late = np.array(["delivery", "late", "courier"])
    vocabulary = np.r_[words, late] if shift else words
    texts = [" ".join(rng.choice(vocabulary, 8)) for _ in range(n)]
    texts[::37] = [None] * len(texts[::37])
    return pd.DataFrame(
        {
            "review": texts,
            "x": rng.normal(size=n),
            "doc": [list(v) for v in rng.normal(shift, 1.0, size=(n, 6))],
        }
    )


@pytest.mark.spark
def test_text_and_array_columns_count_as_on_pandas(spark):
    reference = _text_and_vectors(1500, seed=1)
    baseline = mo.build_profile(reference)
    window = _text_and_vectors(1200, seed=2, shift=0.5)
    expected = baseline.empty_like()
    expected.update(window)
    frame = spark.createDataFrame(window).repartition(3)
    counted = engine.count_window(baseline, frame)
    assert_same_counts(counted, expected)  # the descriptor columns, on the workers
    doc, theirs = counted.unstructured["doc"], expected.unstructured["doc"]
    assert (doc.count, doc.n_missing) == (theirs.count, theirs.n_missing) == (1200, 0)
    np.testing.assert_allclose(doc.mean, theirs.mean)
    np.testing.assert_allclose(doc.m2, theirs.m2)
    text = counted.unstructured["review"]
    assert (text.count, text.n_missing) == (expected.unstructured["review"].count, 33)
    assert sorted(text.texts()) == sorted(expected.unstructured["review"].texts())
    result = mo.compare(baseline, frame)
    assert result.drift.column("review").drifted and result.drift.column("doc").drifted
    assert "courier" in result.drift.column("review").note


@pytest.mark.spark
def test_a_spark_baseline_profiles_text_and_array_columns(spark):
    reference = _text_and_vectors(2000, seed=3)
    ours = mo.build_profile(spark.createDataFrame(reference).repartition(4))
    theirs = mo.build_profile(reference)
    assert list(ours.unstructured) == ["review", "doc"] == list(theirs.unstructured)
    assert ours.unstructured["review"].vocabulary == theirs.unstructured["review"].vocabulary
    for name in ("review.length_words", "review.oov_share"):
        assert ours.columns[name].count == theirs.columns[name].count == 2000 - 55
    np.testing.assert_allclose(ours.unstructured["doc"].mean, theirs.unstructured["doc"].mean)
    calm = mo.compare(ours, spark.createDataFrame(_text_and_vectors(1500, seed=4)))
    assert not calm.drift.column("review").drifted and not calm.drift.column("doc").drifted


def _interaction_window(spark_session, n, seed, *, scale=None, rate=0.6):
    """A window of ``x1 * x2 + x3`` with closed-form attributions on a ``rate`` share of rows.

    Unsampled rows have no attribution (NaN), one value is infinite: both count as not
    attributed, on pandas as on Spark.
    """
    from test_attribution_drift import _interaction_attributions, _normal

    reference = _normal(20_000, 1)
    window = _interaction_attributions(
        _normal(n, seed, scale=scale), reference.sample(100, random_state=0)
    )
    unsampled = np.random.default_rng(seed).random(n) >= rate
    columns = ["attribution_x1", "attribution_x2", "attribution_x3"]
    window.loc[unsampled, columns] = np.nan
    window.loc[np.flatnonzero(~unsampled)[0], "attribution_x2"] = np.inf
    return window, spark_session.createDataFrame(window)


@pytest.fixture(scope="module")
def interaction_profile():
    from test_attribution_drift import Interaction, _normal

    from mlflow_observe.tracking.predictor import record_impact

    reference = _normal(20_000, 1)
    return record_impact(mo.build_profile(reference), Interaction(), reference)


def test_attribution_drift_of_a_spark_window_equals_pandas(spark, interaction_profile):
    """Logged attributions are counted by Spark to the pandas engine's numbers; without any,
    the model attributes the window's row sample; a calm window stays quiet."""
    from test_attribution_drift import Interaction

    from mlflow_observe.comparison import compare

    profile = interaction_profile
    frame, spark_frame = _interaction_window(spark, 5000, 7, scale={"x2": 3.0})
    ours, theirs = compare(profile, spark_frame), compare(profile, frame)
    assert ours.attribution.source == "logged" and ours.attribution.drifted
    assert ours.attribution.n_current == theirs.attribution.n_current
    assert 2900 < ours.attribution.n_current < 3100  # the 60% sampled, less the infinite one
    assert ours.attribution.share_change == pytest.approx(
        theirs.attribution.share_change, rel=1e-9, abs=1e-12
    )
    # Every key, attribution drift's and the rest: the attribution columns are no features.
    assert ours.metrics() == pytest.approx(theirs.metrics(), rel=1e-9, abs=1e-12)
    assert {c.column for c in ours.drift.columns} == {"x1", "x2", "x3"}
    assert ours.metrics()["integrity/n_extra_columns"] == 0
    # No attribution logged: the model attributes the window's row sample (200 rows).
    plain = spark_frame.select("x1", "x2", "x3")
    computed = compare(profile, plain, explain_model=Interaction()).attribution
    assert computed.source == "computed" and computed.n_current == 200 and computed.drifted
    assert compare(profile, plain).attribution is None  # no model, nothing logged
    calm, spark_calm = _interaction_window(spark, 3000, 8)
    quiet = compare(profile, spark_calm).attribution
    assert not quiet.drifted
    assert quiet.share_change == pytest.approx(
        compare(profile, calm).attribution.share_change, rel=1e-9, abs=1e-12
    )
    # Attribution columns with no value in them: said so, as on pandas.
    from pyspark.sql import functions as F

    columns = ["attribution_x1", "attribution_x2", "attribution_x3"]
    unsampled = spark_calm.select(
        "x1", "x2", "x3", *[F.lit(None).cast("double").alias(c) for c in columns]
    )
    assert compare(profile, unsampled).attribution.reason == "no row of the window was attributed"


def test_the_monitor_on_spark_reads_the_served_attributions_as_on_pandas(
    spark, tracking_uri, tmp_path
):
    """The attributions beside the log are joined on request_id for Spark windows too: the
    same attribution-drift numbers as the pandas engine, from the logged rows."""
    from sklearn.linear_model import LogisticRegression

    from mlflow_observe.logs.attributions import write_attributions

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
    log = str(tmp_path / "log")
    write_traffic(log, model, 1, hours=2, drift_from=1)
    logged = mo.read_logs(log)
    sampled = logged.iloc[::2].reset_index(drop=True)  # every second row, as a rate of 0.5
    centred = sampled[list(train.columns)] - train.mean()
    for k in range(0, len(sampled), 40):  # small files, as the serving worker writes them
        part = slice(k, k + 40)
        write_attributions(
            log,
            pd.DataFrame(
                {
                    "request_id": sampled["request_id"][part],
                    "timestamp": sampled["timestamp"][part],
                    **{
                        f"attribution_{c}": model.coef_[0][j] * centred[c][part]
                        for j, c in enumerate(train)
                    },
                    "explain_base_value": 0.0,
                    "explain_rate": 0.5,
                    "explain_method": "exact",
                    "explain_output": "prediction",
                }
            ),
            name=f"worker-{k}",
        )
    window = dict(window="1h", since=DAY, until=DAY + pd.Timedelta(hours=2))
    by_pandas = mo.monitor("models:/churn/1", log, experiment_name="pandas", **window)
    by_spark = mo.monitor("models:/churn/1", log, experiment_name="spark", engine="spark", **window)
    assert [w.status for w in by_spark.windows] == ["evaluated", "evaluated"]
    for ours, theirs in zip(by_spark.windows, by_pandas.windows, strict=True):
        keys = sorted(k for k in theirs.metrics if k.startswith("drift/attribution/"))
        assert "drift/attribution/ndcg" in keys and "drift/attribution/tenure" in keys
        assert sorted(k for k in ours.metrics if k.startswith("drift/attribution/")) == keys
        for key in keys:
            assert ours.metrics[key] == pytest.approx(theirs.metrics[key], rel=1e-9, abs=1e-12)
        span = ours.window
        in_window = (sampled["timestamp"] >= span.start) & (sampled["timestamp"] < span.end)
        # From the logged rows, not from the model on a 200-row sample.
        assert ours.metrics["drift/attribution/n_rows"] == in_window.sum() != 200
    # The second hour's tenure and spend moved up: the model leans on them differently.
    assert by_spark.windows[1].metrics["drift/attribution/tenure"] != pytest.approx(
        by_spark.windows[0].metrics["drift/attribution/tenure"], abs=1e-3
    )
