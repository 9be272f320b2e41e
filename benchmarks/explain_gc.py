"""What the prediction log and sampled attributions cost the server's garbage collector: the
collections a served call causes, with the log off, rate off and rate 1.0, in one run (no
timed test).

    .venv/bin/python benchmarks/explain_gc.py                 # ~4 minutes
    .venv/bin/python benchmarks/explain_gc.py --calls 2000 --pairs 1

A model is logged with ``mlflow_observe.log_model`` (with its baseline) to a temporary
SQLite store and loaded as the server loads it (``mlflow.pyfunc.load_model``, the
prediction log on). Each call does what ``mlflow models serve`` does for a one-row request
of 20 float columns: the JSON body parsed against the model's signature
(``infer_and_parse_data``), then ``predict``. Each setting runs in a process of its own
(the order alternates over ``--pairs``), with ``gc.callbacks`` counting each generation's
collections and the time spent in them; the figure per call is that time over the calls.

A call kept in the log writer's queue until its thread takes it (a tenth of a second), or in
the attribution worker's until its hand-over (up to a second), outlives the collector's young
generations; what it keeps decides how many objects
reach the oldest generation, and so how often the full collection runs: with MLflow,
pandas and scikit-learn loaded it traverses about 400,000 objects (about 0.2 s).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

N_COLUMNS = 20


def _log_model(store: str) -> str:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import mlflow_observe as mo

    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(f"sqlite:///{store}/bench.db")
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment("explain-gc", artifact_location=f"{store}/art")
    )
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(2000, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    y = X["f00"] + X["f01"] + rng.normal(scale=0.1, size=len(X))
    with mlflow.start_run():
        info = mo.log_model(
            LinearRegression().fit(X, y),
            name="model",
            baseline=X.assign(y=y),
            targets="y",
            input_example=X.head(3),
        )
    return info.model_uri


def _measure(store: str, model_uri: str, setting: str, calls: int) -> dict:
    """In this process: ``calls`` served calls; the collections and their time per call."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/bench.db"
    os.environ["MLFLOW_OBSERVE_LOG_DIR"] = f"{store}/log-{setting}-{os.getpid()}"
    if setting not in ("off", "no log"):
        os.environ["MLFLOW_OBSERVE_EXPLAIN_RATE"] = setting
    if setting == "no log":  # the model served without the flavor's log (nor attributions)
        from mlflow_observe.logs.writer import no_prediction_logs

        no_prediction_logs().__enter__()  # never left: the process ends by os._exit
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    warnings.filterwarnings("ignore")
    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    rng = np.random.default_rng(1)
    bodies = []
    for _ in range(256):
        row = pd.DataFrame(rng.normal(size=(1, N_COLUMNS)))
        row.columns = [f"f{i:02d}" for i in range(N_COLUMNS)]
        bodies.append(json.loads(json.dumps({"dataframe_split": row.to_dict(orient="split")})))
    counts, seconds, started = [0, 0, 0], [0.0, 0.0, 0.0], [0.0]
    promoted, oldest = [0], [0]

    def on_collection(phase: str, info: dict) -> None:
        # What a middle collection moves to the oldest generation is what brings the next full
        # one nearer; counted outside the timed part of the callback.
        if phase == "start":
            if info["generation"] == 1:
                oldest[0] = len(gc.get_objects(generation=2))
            started[0] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            seconds[info["generation"]] += time.perf_counter() - started[0]
            if info["generation"] == 1:
                promoted[0] += len(gc.get_objects(generation=2)) - oldest[0]

    for i in range(500):  # warm-up: the attribution process starts, caches fill
        model.predict(infer_and_parse_data(bodies[i % 256], schema))
    time.sleep(1.0)
    gc.callbacks.append(on_collection)
    for i in range(calls):
        model.predict(infer_and_parse_data(bodies[i % 256], schema))
        time.sleep(0.002)  # a served model's idle time between requests
    gc.callbacks.remove(on_collection)
    return {
        "setting": setting,
        "collections": counts,
        "us_per_call": [s / calls * 1e6 for s in seconds],
        "promoted_per_call": promoted[0] / calls,
        "tracked_objects": len(gc.get_objects()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="timed calls (default 4000)")
    parser.add_argument("--pairs", type=int, default=2, help="runs of each setting (default 2)")
    parser.add_argument("--measure", nargs=3, metavar=("STORE", "MODEL_URI", "SETTING"))
    args = parser.parse_args()
    if args.measure:  # one setting, in a process of its own
        print(json.dumps(_measure(*args.measure, calls=args.calls)), flush=True)
        os._exit(0)  # the writer's and the worker's exit handlers are not what is measured
    store = tempfile.mkdtemp(prefix="explain-gc-")
    model_uri = _log_model(store)
    results: dict = {"no log": [], "off": [], "1.0": []}
    for pair in range(args.pairs):
        order = list(results) if pair % 2 == 0 else list(results)[::-1]
        for setting in order:
            command = [sys.executable, __file__, "--calls", str(args.calls), "--measure"]
            done = subprocess.run(
                command + [store, model_uri, setting], capture_output=True, text=True
            )
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"the {setting} run failed:\n{done.stderr[-3000:]}")
            results[setting].append(json.loads(lines[-1]))
    print(f"\n{args.calls} served one-row calls per run, {args.pairs} runs per setting\n")
    print(
        "| log, explain rate | run | collections (gen 0 / 1 / 2) | us a call in gen 0 / 1 / 2 "
        "| us a call in all | objects to the oldest generation a call |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for setting, runs in results.items():
        for run, result in enumerate(runs, 1):
            counts = " / ".join(str(c) for c in result["collections"])
            per_call = " / ".join(f"{us:.1f}" for us in result["us_per_call"])
            total = sum(result["us_per_call"])
            promoted = result["promoted_per_call"]
            print(f"| {setting} | {run} | {counts} | {per_call} | {total:.1f} | {promoted:.1f} |")
    means = {
        setting: sum(sum(r["us_per_call"]) for r in runs) / len(runs)
        for setting, runs in results.items()
    }
    tracked = results["off"][0]["tracked_objects"]
    print(
        f"\nmean time in collections a call: no log {means['no log']:.1f} us, rate off "
        f"{means['off']:.1f} us, rate 1.0 {means['1.0']:.1f} us (a full collection traverses about "
        f"{tracked:,} objects; it runs when a quarter as many have reached the oldest "
        "generation since the last, so the objects column sets how often)"
    )


if __name__ == "__main__":
    main()
