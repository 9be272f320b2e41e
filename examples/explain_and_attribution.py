"""Explain a prediction, then watch the model's reliance move while a feature stays calm.

    python examples/explain_and_attribution.py [--store DIR] [--screenshots DIR]

A delivery-delay forest learns ``delay = distance x traffic + 2 x items``. Its
baseline (recorded with the model, so with its global importance: SHAP's tree
explainer when the ``explain`` extra is installed) comes from a week when
traffic was steady. In the window, traffic swings three times as widely:
``distance_km`` has not moved at all, yet the model now leans far less on it.
Per-column drift flags only ``traffic_index``; attribution drift shows the
reliance that moved. Everything is logged to a local SQLite store; with
``--screenshots`` the explained prediction's waterfall and the window run's
attribution drift chart are written there as PNG files.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

import mlflow_observe as mo


def orders(n: int, seed: int, traffic_sd: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "distance_km": rng.uniform(1.0, 20.0, n),
            "traffic_index": np.clip(rng.normal(1.0, traffic_sd, n), 0.2, 2.8),
            "items": rng.poisson(3.0, n).astype(float),
        }
    )


def delay(frame: pd.DataFrame) -> np.ndarray:
    return (frame["distance_km"] * frame["traffic_index"] + 2.0 * frame["items"]).to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="directory of the SQLite store")
    parser.add_argument("--screenshots", default=None, help="write the two PNGs here")
    args = parser.parse_args()
    store = Path(args.store or tempfile.mkdtemp())
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.set_experiment("explain and attribution drift")

    # Trained on every kind of traffic; the baseline is the steady week before release.
    history = orders(20_000, 0, traffic_sd=0.8)
    forest = RandomForestRegressor(100, max_depth=10, random_state=0, n_jobs=1)
    forest.fit(history, delay(history))
    steady = orders(5000, 1, traffic_sd=0.1)
    with mlflow.start_run(run_name="training") as training:
        mo.log_baseline(steady, model=forest)
    profile = mo.load_baseline(training.info.run_id)
    print(
        f"baseline importance ({profile.impact.attribution_method}):",
        {k: round(v, 2) for k, v in profile.impact.attribution.items()},
    )

    # 1. Why did this order get this delay?
    window = orders(5000, 2, traffic_sd=0.5)
    explanation = mo.explain(forest, window.iloc[[0]], baseline=training.info.run_id)
    print(explanation.to_frame()[["feature", "value", "attribution"]].round(2).to_string())
    print(
        f"base value {explanation.base_value:.2f} -> prediction "
        f"{explanation.attributions.predictions[0]:.2f}"
    )

    # 2. The window: distance is calm, the model's reliance on it is not.
    with mlflow.start_run(run_name="window") as run:
        result = mo.evaluate_drift(window, training.info.run_id, attribution_model=forest)
    metrics = result.metrics
    for column in ("distance_km", "traffic_index", "items"):
        print(
            f"{column}: drifted {bool(metrics[f'drift/{column}/drifted'])}, "
            f"share change {metrics[f'drift/attribution/{column}']:+.3f}"
        )
    print(
        f"attribution drift: ndcg {metrics['drift/attribution/ndcg']:.3f}, "
        f"drifted {bool(metrics['drift/attribution/drifted'])}"
    )

    if args.screenshots:
        target = Path(args.screenshots)
        target.mkdir(parents=True, exist_ok=True)
        figure = explanation.plot(0)
        figure.savefig(target / "explained_prediction.png", dpi=110, bbox_inches="tight")
        client = mlflow.MlflowClient()
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(
                run.info.run_id, "drift_plots/attribution_drift.png", tmp
            )
            (target / "attribution_drift.png").write_bytes(Path(path).read_bytes())
        print(f"screenshots in {target}")


if __name__ == "__main__":
    main()
