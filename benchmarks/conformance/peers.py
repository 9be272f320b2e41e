"""Run NannyML's label-free estimators on real datasets and store everything as JSON fixtures.

Run in the peer's own virtual environment (never the package's):

    python3 -m venv /tmp/nml && /tmp/nml/bin/pip install nannyml==0.13.1 statsmodels "pandas<3"
    NML_DISABLE_USAGE_LOGGING=1 /tmp/nml/bin/python benchmarks/conformance/peers.py

Each dataset ships inside a package on the package index (statsmodels, scikit-learn) and
is split for a real reason (a group of respondents, a plan): a model is fitted on half
of the reference group, the other half is the reference, and the other group, cut in
chunks, is the analysis. A fixture holds the model's outputs (labels, predictions,
probabilities, the numeric features for regressors) and NannyML's estimate for each
chunk; ``tests/test_conformance.py`` compares mlflow-observe's estimates with them
without NannyML installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nannyml as nml
import numpy as np
import pandas as pd
import sklearn
import statsmodels
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from statsmodels import datasets

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "conformance"
DIGITS = 6


def _split(frame: pd.DataFrame, reference_rows, seed: int = 0):
    """Fit half of the reference group, keep the other half as the reference; the other
    group, shuffled, is the analysis (the files have no time order, and some are sorted by
    the outcome: chunks in file order would hold one class each)."""
    group = frame[reference_rows].sample(frac=1.0, random_state=seed)
    half = len(group) // 2
    analysis = frame[~reference_rows].sample(frac=1.0, random_state=seed + 1)
    return group.iloc[:half], group.iloc[half:], analysis


def fair():
    data = datasets.fair.load_pandas().data
    data["y"] = (data["affairs"] > 0).astype(int)
    features = ["rate_marriage", "yrs_married", "children", "religious", "educ", "occupation"]
    return (
        "binary",
        data,
        features,
        data["age"] <= 27,
        (
            "statsmodels fair (affairs survey, 1974): reference respondents aged up to 27, "
            "analysis the older ones"
        ),
        500,
    )


def anes_vote():
    data = datasets.anes96.load_pandas().data
    data["y"] = data["vote"].astype(int)
    features = ["logpopul", "TVnews", "selfLR", "ClinLR", "DoleLR", "PID", "income"]
    return (
        "binary",
        data,
        features,
        data["educ"] <= 4,
        (
            "statsmodels anes96 (1996 US election survey), vote: reference without a college "
            "degree, analysis with one"
        ),
        100,
    )


def anes_party():
    data = datasets.anes96.load_pandas().data
    data["y"] = np.select([data["PID"] <= 1, data["PID"] <= 4], [0, 1], 2)
    features = ["logpopul", "TVnews", "selfLR", "ClinLR", "DoleLR", "income", "educ"]
    return (
        "multiclass",
        data,
        features,
        data["age"] <= 45,
        (
            "statsmodels anes96, party (Democrat / independent / Republican): reference "
            "respondents aged up to 45, analysis the older ones"
        ),
        100,
    )


def randhie():
    data = datasets.randhie.load_pandas().data
    data["y"] = np.log1p(data["mdvis"])
    features = ["lncoins", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"]
    return (
        "regression",
        data,
        features,
        data["idp"] == 0,
        (
            "statsmodels randhie (RAND health insurance experiment), log(1 + doctor visits): "
            "reference without an individual deductible plan, analysis with one"
        ),
        1000,
    )


def diabetes():
    raw = load_diabetes(as_frame=True, scaled=False)
    data = raw.frame.rename(columns={"target": "y"})
    features = ["age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    return (
        "regression",
        data,
        features,
        data["sex"] == 1,
        (
            "scikit-learn diabetes (Efron et al. 2004), disease progression: reference one "
            "sex, analysis the other"
        ),
        50,
    )


def run(name, make):
    task, data, features, reference_rows, description, chunk_size = make()
    data = data.reset_index(drop=True)
    fit, reference, analysis = _split(data, reference_rows)

    def x(frame):
        return frame[features].to_numpy(dtype=float)

    record = {
        "dataset": name,
        "description": description,
        "task": task,
        "features": features,
        "chunk_size": chunk_size,
        "peer": {
            "nannyml": nml.__version__,
            "scikit-learn": sklearn.__version__,
            "statsmodels": statsmodels.__version__,
        },
    }
    frames = {
        "reference": reference.reset_index(drop=True),
        "analysis": analysis.reset_index(drop=True),
    }
    if task == "regression":
        model = Ridge(alpha=1.0).fit(x(fit), fit["y"])
        for frame in frames.values():
            frame["pred"] = model.predict(x(frame))
        estimator = nml.DLE(
            feature_column_names=features,
            y_pred="pred",
            y_true="y",
            metrics=["mae", "rmse"],
            chunk_size=chunk_size,
        )
        proba_columns = []
    else:
        model = LogisticRegression(max_iter=2000).fit(x(fit), fit["y"])
        classes = [int(c) for c in model.classes_]
        proba_columns = [f"p_{c}" for c in classes]
        for frame in frames.values():
            frame["pred"] = model.predict(x(frame)).astype(int)
            frame[proba_columns] = model.predict_proba(x(frame))
        if task == "binary":
            proba_columns = ["p_1"]
            estimator = nml.CBPE(
                y_pred_proba="p_1",
                y_pred="pred",
                y_true="y",
                problem_type="classification_binary",
                metrics=["roc_auc", "accuracy", "precision", "recall", "f1"],
                chunk_size=chunk_size,
            )
        else:
            estimator = nml.CBPE(
                y_pred_proba={c: f"p_{c}" for c in classes},
                y_pred="pred",
                y_true="y",
                problem_type="classification_multiclass",
                metrics=["roc_auc", "accuracy", "precision", "recall", "f1"],
                chunk_size=chunk_size,
            )
    estimator.fit(frames["reference"])
    results = estimator.estimate(frames["analysis"]).filter(period="analysis").to_df()
    estimates = {}
    for metric in estimator.metrics:
        key = metric.column_name
        estimates[key] = [float(v) for v in results[(key, "value")]]
    record["nannyml_estimates"] = estimates
    record["chunk_bounds"] = [
        [int(a), int(b) + 1]
        for a, b in zip(
            results[("chunk", "start_index")], results[("chunk", "end_index")], strict=False
        )
    ]
    columns = ["y", "pred", *proba_columns] + (features if task == "regression" else [])
    for part, frame in frames.items():
        record[part] = {
            c: np.round(frame[c].to_numpy(dtype=float), DIGITS).tolist() for c in columns
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(record, separators=(",", ":")))
    print(name, len(frames["reference"]), len(frames["analysis"]), list(estimates), file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    for name, make in [
        ("fair", fair),
        ("anes_vote", anes_vote),
        ("anes_party", anes_party),
        ("randhie", randhie),
        ("diabetes", diabetes),
    ]:
        run(name, make)
