"""Run Evidently's default data-drift report on real datasets and store it as JSON fixtures.

Run in the peer's own virtual environment (never the package's):

    python3 -m venv benchmarks/.venv-evidently
    benchmarks/.venv-evidently/bin/pip install evidently==0.7.23 "pandas<3" statsmodels scikit-learn
    EVIDENTLY_DISABLE_TELEMETRY=1 benchmarks/.venv-evidently/bin/python \\
        benchmarks/conformance/evidently_peer.py

The datasets and their splits are those of ``peers.py`` (the NannyML half of the
conformance suite): each ships inside a package on the package index (statsmodels,
scikit-learn) and is split for a real reason (a group of respondents, a plan). Here
the whole reference group is the reference and the whole other group the analysis;
the column that defines the split is left out (it drifts by construction).

Evidently 0.7.23 runs its defaults, ``Report([DataDriftPreset()])``, on each pair.
A fixture ``tests/fixtures/conformance/drift_<dataset>.json`` holds both frames (the
compared columns) and, per column, Evidently's method, its score (a p-value for its
tests, a distance otherwise), its threshold and whether it flags the column (its own
rule: a p-value at or below the threshold for Kolmogorov-Smirnov, below it for the
Z-test and chi-square, a distance at or above it). ``tests/test_conformance.py``
compares mlflow-observe's decisions with them without Evidently installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

import evidently  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
import statsmodels  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from statsmodels import datasets  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "conformance"
# Evidently's method names -> whether a p-value decides, and how it compares.
TESTS = {"K-S p_value": "<=", "Z-test p_value": "<", "chi-square p_value": "<"}


def fair():
    data = datasets.fair.load_pandas().data
    return (
        data,
        "age",
        data["age"] <= 27,
        "statsmodels fair (affairs survey, 1974): reference respondents aged up to 27, "
        "analysis the older ones",
    )


def fair_window():
    """The same split as ``fair``, with a 300-row window of the older group: a window
    below 1,000 rows against a larger reference, where the two tools' rules differ."""
    data = datasets.fair.load_pandas().data
    older = data.index[data["age"] > 27]
    window = pd.Series(older).sample(n=300, random_state=0)
    keep = (data["age"] <= 27) | data.index.isin(window)
    return (
        data[keep],
        "age",
        data["age"][keep] <= 27,
        "statsmodels fair: reference respondents aged up to 27, analysis 300 of the older "
        "ones drawn at random (a small production window)",
    )


def anes_vote():
    data = datasets.anes96.load_pandas().data
    return (
        data,
        "educ",
        data["educ"] <= 4,
        "statsmodels anes96 (1996 US election survey): reference without a college degree, "
        "analysis with one",
    )


def anes_party():
    data = datasets.anes96.load_pandas().data
    return (
        data,
        "age",
        data["age"] <= 45,
        "statsmodels anes96: reference respondents aged up to 45, analysis the older ones",
    )


def randhie():
    data = datasets.randhie.load_pandas().data
    return (
        data,
        "idp",
        data["idp"] == 0,
        "statsmodels randhie (RAND health insurance experiment): reference without an "
        "individual deductible plan, analysis with one",
    )


def diabetes():
    data = load_diabetes(as_frame=True, scaled=False).frame
    return (
        data,
        "sex",
        data["sex"] == 1,
        "scikit-learn diabetes (Efron et al. 2004): reference one sex, analysis the other",
    )


def _flag(method: str, value: float, threshold: float) -> bool:
    comparison = TESTS.get(method)
    if comparison == "<=":
        return value <= threshold
    if comparison == "<":
        return value < threshold
    return value >= threshold


def run(name, make):
    data, split_column, in_reference, description = make()
    data = data.drop(columns=split_column).astype(float)
    reference = data[in_reference].reset_index(drop=True)
    analysis = data[~in_reference].reset_index(drop=True)
    snapshot = Report([DataDriftPreset()]).run(current_data=analysis, reference_data=reference)
    columns, share = {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method, value = config["method"], float(metric["value"])
            threshold = float(config["threshold"])
            columns[config["column"]] = {
                "method": method,
                "value": value,
                "threshold": threshold,
                "is_test": method in TESTS,
                "drifted": _flag(method, value, threshold),
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    record = {
        "dataset": name,
        "description": description,
        "split_column": split_column,
        "peer": {
            "evidently": evidently.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "statsmodels": statsmodels.__version__,
        },
        "evidently": {"columns": columns, "share_drifted": share, "dataset_drift": share >= 0.5},
        "reference": {c: _values(reference[c]) for c in reference},
        "analysis": {c: _values(analysis[c]) for c in analysis},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"drift_{name}.json").write_text(json.dumps(record, separators=(",", ":")))
    print(name, len(reference), len(analysis), f"share {share:.2f}", file=sys.stderr)


def _values(series: pd.Series) -> list:
    # repr-exact floats (the datasets hold few decimals), None for a missing value
    return [None if np.isnan(v) else float(v) for v in series.to_numpy(dtype=float)]


if __name__ == "__main__":
    for name, make in [
        ("fair", fair),
        ("fair_window", fair_window),
        ("anes_vote", anes_vote),
        ("anes_party", anes_party),
        ("randhie", randhie),
        ("diabetes", diabetes),
    ]:
        run(name, make)
