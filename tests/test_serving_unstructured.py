"""A served model with a text column and an embedding column: what the log keeps."""

import sys
import time

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import requests
from helpers import Server
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema

import mlflow_observe as mo

pytestmark = pytest.mark.server

DIM = 16


class TextAndVectorModel(mlflow.pyfunc.PythonModel):
    """Scores a review by its length and its vector's sum (any model reading both columns)."""

    def predict(self, context, model_input, params=None):
        lengths = model_input["review"].fillna("").str.len().to_numpy(dtype=float)
        sums = np.array([np.sum(v) if v is not None else 0.0 for v in model_input["embedding"]])
        return lengths + sums


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the server cannot import tests


@pytest.fixture
def text_model(tracking_uri):
    signature = ModelSignature(
        inputs=Schema(
            [ColSpec(DataType.string, "review"), ColSpec(Array(DataType.double), "embedding")]
        ),
        outputs=Schema([ColSpec(DataType.double)]),
    )
    with mlflow.start_run():
        mo.log_model(
            TextAndVectorModel(),
            name="model",
            registered_model_name="reviews",
            signature=signature,
        )
    return "models:/reviews/1"


def _post(server, frame, request_id):
    payload = {
        "dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()},
        "params": {"request_id": request_id},
    }
    return requests.post(f"{server.url}/invocations", json=payload, timeout=30)


def _requests(n_calls, seed=0):
    rng = np.random.default_rng(seed)
    words = ["great", "dull", "plot", "actor", "film", "ending", "café", "naïve", "字幕", "🙂"]
    for c in range(n_calls):
        rows = int(rng.integers(1, 5))
        yield (
            f"call{c}",
            pd.DataFrame(
                {
                    "review": [
                        " ".join(rng.choice(words, int(rng.integers(0, 30)))) for _ in range(rows)
                    ],
                    "embedding": [rng.normal(size=DIM).round(6).tolist() for _ in range(rows)],
                }
            ),
        )


def _logs(log_dir, expected, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            logs = mo.read_logs(str(log_dir))
            if len(logs) >= expected:
                return logs
        except mo.LogWindowError:
            pass
        time.sleep(0.3)
    return mo.read_logs(str(log_dir))


def test_served_texts_and_vectors_are_logged_exactly(text_model, tracking_uri, tmp_path):
    log_dir = tmp_path / "logs"
    server = Server(
        text_model, tracking_uri, log_dir, workers=1, MLFLOW_OBSERVE_FLUSH_SECONDS="0.3"
    )
    sent = {}
    try:
        for request_id, frame in _requests(40):
            response = _post(server, frame, request_id)
            assert response.ok, response.text
            for r in range(len(frame)):
                sent[request_id if len(frame) == 1 else f"{request_id}-{r}"] = frame.iloc[r]
        # Awkward requests: an empty text, a 1 MB text, unicode beyond the basic plane.
        long_text = "ünïcödé 字 🙂 " * 80_000
        odd = pd.DataFrame(
            {
                "review": ["", long_text, "\U0001d400\U0001d401 \u2028 x"],
                "embedding": [[0.0] * DIM, [1.5] * DIM, [-2.25] * DIM],
            }
        )
        assert _post(server, odd, "odd").ok
        for r in range(3):
            sent[f"odd-{r}"] = odd.iloc[r]
        logs = _logs(log_dir, len(sent))
    finally:
        server.stop()
    logs = logs.set_index("request_id")
    assert set(logs.index) == set(sent)
    for rid, row in sent.items():
        assert logs.at[rid, "review"] == row["review"]
        vector = logs.at[rid, "embedding"]
        assert vector.dtype == np.float32
        np.testing.assert_array_equal(vector, np.asarray(row["embedding"], dtype=np.float32))
    batches = list(mo.scan_logs(str(log_dir), batch_size=16))
    assert max(b.num_rows for b in batches) <= 16
    kinds = {b.schema.field("embedding").type for b in batches}
    assert all(pa.types.is_list(k) and k.value_type == pa.float32() for k in kinds)


def test_a_ragged_vector_is_logged_as_sent_and_a_refused_request_not_at_all(
    text_model, tracking_uri, tmp_path
):
    log_dir = tmp_path / "logs"
    server = Server(
        text_model, tracking_uri, log_dir, workers=1, MLFLOW_OBSERVE_FLUSH_SECONDS="0.3"
    )
    try:
        ragged = pd.DataFrame({"review": ["a", "b"], "embedding": [[1.0] * DIM, [1.0, 2.0]]})
        ragged_answer = _post(server, ragged, "ragged")
        missing = pd.DataFrame({"review": ["c"], "embedding": [None]})
        missing_answer = _post(server, missing, "missing")
        good = pd.DataFrame({"review": ["after"], "embedding": [[3.0] * DIM]})
        assert _post(server, good, "good").ok
        # MLflow's schema enforcement takes a ragged Array column as it is and refuses a
        # null in a required one; a refused request must log nothing.
        assert ragged_answer.ok and not missing_answer.ok
        answered = {"good", "ragged-0", "ragged-1"}
        logs = _logs(log_dir, len(answered))
    finally:
        server.stop()
    logs = logs.set_index("request_id")
    # Exactly the answered calls are logged (a refused request logs nothing), as sent.
    assert set(logs.index) == answered
    assert logs.at["good", "embedding"].tolist() == [3.0] * DIM
    assert logs.at["ragged-0", "embedding"].tolist() == [1.0] * DIM
    assert logs.at["ragged-1", "embedding"].tolist() == [1.0, 2.0]
