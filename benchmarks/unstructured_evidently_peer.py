"""Evidently's text and embedding drift on the files ``unstructured_speed.py`` writes.

Run in Evidently's own virtual environment (never the package's), by
``unstructured_speed.py``::

    python3 -m venv /tmp/us-evidently-venv
    /tmp/us-evidently-venv/bin/pip install evidently==0.7.23 "pandas<3" scikit-learn

Arguments: the data folder and the cases to run. Prints one JSON line per case:
the seconds ``run()`` took (building the dataset, descriptors included), Evidently's
verdict and its score.

- Text: ``Dataset.from_pandas`` with the column declared as text and the descriptors
  ``TextLength``, ``WordCount``, ``SentenceCount``, ``NonLetterCharacterPercentage``
  (``OOVWordsPercentage`` needs NLTK's word lists, not installed here), then
  ``Report([DataDriftPreset()])``: the text column itself is judged by Evidently's
  text-content drift (a domain classifier, its default for text above 1,000 rows),
  each descriptor by its default test. Verdict: the text column's own drift flag;
  the descriptors' flags are reported beside it.
- Embeddings: the vector's dimensions as columns declared as one embedding,
  ``Report([EmbeddingsDrift("emb")])`` with its default method (``model()``: a
  classifier, drift when its ROC AUC is above 0.55).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.descriptors import (  # noqa: E402
    NonLetterCharacterPercentage,
    SentenceCount,
    TextLength,
    WordCount,
)
from evidently.metrics import EmbeddingsDrift  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402


def _drift_rows(snapshot) -> dict:
    """Column -> (drifted, score, method) from a DataDriftPreset snapshot."""
    rows = {}
    for result in snapshot.dict()["metrics"]:
        config = result.get("config", {})
        column = config.get("column")
        if column is None or "ValueDrift" not in str(config.get("type", "")):
            continue
        score = float(result["value"])
        threshold = config.get("threshold")
        method = str(config.get("method"))
        pvalue = "p_value" in method
        drifted = score < threshold if pvalue else score >= threshold
        rows[column] = {"drifted": bool(drifted), "score": score, "method": method}
    return rows


def text_case(folder: str, case: str) -> dict:
    reference = pd.read_parquet(f"{folder}/text_reference.parquet")
    current = pd.read_parquet(f"{folder}/text_{case}.parquet")
    definition = DataDefinition(text_columns=["review"])
    start = time.perf_counter()
    descriptors = [
        TextLength("review", alias="length"),
        WordCount("review", alias="words"),
        SentenceCount("review", alias="sentences"),
        NonLetterCharacterPercentage("review", alias="non_letter"),
    ]
    ref = Dataset.from_pandas(reference, data_definition=definition, descriptors=descriptors)
    cur = Dataset.from_pandas(current, data_definition=definition, descriptors=descriptors)
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    seconds = time.perf_counter() - start
    rows = _drift_rows(snapshot)
    text = rows.get("review", {})
    return {
        "tool": "evidently",
        "case": f"text_{case}",
        "seconds": seconds,
        "drifted": text.get("drifted"),
        "score": text.get("score"),
        "detail": {k: v["drifted"] for k, v in rows.items() if k != "review"},
    }


def embedding_case(folder: str, case: str) -> dict:
    reference = np.load(f"{folder}/emb_reference.npy")
    current = np.load(f"{folder}/emb_{case}.npy")
    names = [f"e{i}" for i in range(reference.shape[1])]
    definition = DataDefinition(numerical_columns=names, embeddings={"emb": names})
    start = time.perf_counter()
    ref = Dataset.from_pandas(pd.DataFrame(reference, columns=names), data_definition=definition)
    cur = Dataset.from_pandas(pd.DataFrame(current, columns=names), data_definition=definition)
    snapshot = Report([EmbeddingsDrift(embeddings_name="emb")]).run(cur, ref)
    seconds = time.perf_counter() - start
    score = float(snapshot.dict()["metrics"][0]["value"])
    return {
        "tool": "evidently",
        "case": f"emb_{case}",
        "seconds": seconds,
        "drifted": bool(score > 0.55),  # model()'s default threshold on its ROC AUC
        "score": score,
    }


def main() -> None:
    folder, cases = sys.argv[1], sys.argv[2:]
    for case in cases:
        kind, _, name = case.partition("_")
        result = text_case(folder, name) if kind == "text" else embedding_case(folder, name)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
