"""Drift on a 1M-row window: mlflow-observe beside Evidently and a hand-written numpy floor.

    .venv/bin/python benchmarks/drift_speed.py                 # 1M rows, 3 rounds
    .venv/bin/python benchmarks/drift_speed.py --rows 100000 --repeats 5

The data: 20 numeric and 5 categorical columns (20 categories each); the
production window shifts three of them (a 0.5 standard deviation mean shift, a
1.5x scale change and a category-frequency swap). Every contender runs in its
own process, in rounds that interleave them (A B C A B C ...), and the medians
are reported with ratios. Evidently runs in its own virtual environment
(benchmarks/.venv-evidently, created on first use: evidently 0.7.23 needs
pandas < 3) with its telemetry off.

Contenders (each reads the same Parquet files; reading is not timed):

* ``observe``: ``mlflow_observe.compare`` (count the window into the baseline's
  bins, every statistic, integrity), threads on every core;
* ``observe-1core``: the same with ``n_jobs=1``;
* ``evaluator``: ``mlflow_observe.evaluate_drift``, the whole MLflow path into a
  SQLite store (metrics, tables, plots, HTML report);
* ``floor``: numpy, one thread: bin each numeric column once into the
  baseline's 10 quantile bins and compute PSI and Jensen-Shannon; count each
  categorical column once and compute Jensen-Shannon;
* ``evidently``: ``Report([DataDriftPreset()]).run(...)``.

Memory: the peak resident memory during the timed call above what the process
held before it (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``),
divided by the in-memory size of the window's DataFrame.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVIDENTLY_VENV = HERE / ".venv-evidently"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
N_NUMERIC, N_CATEGORICAL, N_CATEGORIES = 20, 5, 20
SHIFTED = {"num_00": "mean +0.5 sd", "num_01": "scale x1.5", "cat_0": "category swap"}


# -- data -----------------------------------------------------------------------------------


def make_data(rows: int, folder: Path) -> None:
    import numpy as np
    import pandas as pd

    def frame(seed: int, shifted: bool):
        rng = np.random.default_rng(seed)
        columns = {}
        for i in range(N_NUMERIC):
            loc, scale = float(i), 1.0 + i / 10
            values = rng.normal(loc, scale, rows)
            if shifted and i == 0:
                values += 0.5 * scale
            if shifted and i == 1:
                values = loc + (values - loc) * 1.5
            columns[f"num_{i:02d}"] = values
        categories = np.array([f"cat_{k:02d}" for k in range(N_CATEGORIES)])
        weights = np.linspace(2.0, 0.2, N_CATEGORIES)
        for j in range(N_CATEGORICAL):
            p = weights[::-1] if (shifted and j == 0) else weights
            columns[f"cat_{j}"] = rng.choice(categories, rows, p=p / p.sum())
        return pd.DataFrame(columns)

    frame(1, False).to_parquet(folder / "reference.parquet")
    frame(2, True).to_parquet(folder / "current.parquet")


# -- measuring ------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measured(func):
    """Run ``func`` once: seconds, and peak extra resident bytes during it."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak (VmHWM) to the current resident size
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return result, seconds, (peak - before) * 1024


def _load(folder: Path):
    import pandas as pd

    return pd.read_parquet(folder / "reference.parquet"), pd.read_parquet(
        folder / "current.parquet"
    )


# -- workers (one per process) --------------------------------------------------------------


def worker_observe(folder: Path, n_jobs):
    import mlflow_observe as mo

    reference, current = _load(folder)
    start = time.perf_counter()
    profile = mo.build_profile(reference, n_jobs=n_jobs)
    build_seconds = time.perf_counter() - start
    del reference
    result, seconds, extra = measured(lambda: mo.compare(profile, current, n_jobs=n_jobs))
    return {
        "seconds": seconds,
        "extra_bytes": extra,
        "build_seconds": build_seconds,
        "window_bytes": int(current.memory_usage(deep=True).sum()),
        "drifted": sorted(result.drift.drifted_columns),
        "statistics": {c.column: c.statistic for c in result.drift.columns},
    }


def worker_evaluator(folder: Path):
    import mlflow

    import mlflow_observe as mo

    reference, current = _load(folder)
    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri(f"sqlite:///{store}/bench.db")
        mlflow.set_experiment("bench")
        with mlflow.start_run() as run:
            mo.log_baseline(reference)
        del reference
        result, seconds, extra = measured(
            lambda: mo.evaluate_drift(current, baseline=run.info.run_id)
        )
        return {
            "seconds": seconds,
            "extra_bytes": extra,
            "window_bytes": int(current.memory_usage(deep=True).sum()),
            "drifted": sorted(
                r["column"] for r in result.artifacts["drift_table"].content if r["drifted"]
            ),
        }


def worker_floor(folder: Path):
    import numpy as np

    reference, current = _load(folder)
    numeric = [c for c in reference.columns if c.startswith("num_")]
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    # What a baseline holds: reference bins and proportions (not timed).
    edges = {c: np.quantile(reference[c].to_numpy(), np.linspace(0, 1, 11))[1:-1] for c in numeric}
    ref_numeric = {
        c: np.bincount(np.searchsorted(edges[c], reference[c].to_numpy()), minlength=10)
        / len(reference)
        for c in numeric
    }
    ref_categorical = {c: reference[c].value_counts(normalize=True) for c in categorical}
    del reference

    def js(p, q):
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = lambda a: np.sum(np.where(a > 0, a * np.log(a / m), 0.0))  # noqa: E731
        return float(np.sqrt(0.5 * (kl(p) + kl(q))))

    def run():
        out = {}
        for c in numeric:
            counts = np.bincount(np.searchsorted(edges[c], current[c].to_numpy()), minlength=10)
            p, q = ref_numeric[c] + 1e-4, counts / len(current) + 1e-4
            out[c] = (float(np.sum((q - p) * np.log(q / p))), js(p, q))
        for c in categorical:
            counts = current[c].value_counts(normalize=True)
            ref = ref_categorical[c]
            q = counts.reindex(ref.index, fill_value=0.0).to_numpy()
            out[c] = (None, js(ref.to_numpy(), q))
        return out

    result, seconds, extra = measured(run)
    return {
        "seconds": seconds,
        "extra_bytes": extra,
        "window_bytes": int(current.memory_usage(deep=True).sum()),
    }


def worker_evidently(folder: Path):
    os.environ["EVIDENTLY_DISABLE_TELEMETRY"] = "1"
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference, current = _load(folder)
    snapshot, seconds, extra = measured(
        lambda: Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    )
    values = {}
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value = float(metric["value"])
            values[config["column"]] = value
            if value >= config["threshold"]:
                drifted.append(config["column"])
    return {
        "seconds": seconds,
        "extra_bytes": extra,
        "window_bytes": int(current.memory_usage(deep=True).sum()),
        "drifted": sorted(drifted),
        "statistics": values,
    }


WORKERS = {
    "observe": lambda folder: worker_observe(folder, None),
    "observe-1core": lambda folder: worker_observe(folder, 1),
    "evaluator": worker_evaluator,
    "floor": worker_floor,
    "evidently": worker_evidently,
}


# -- the driver -----------------------------------------------------------------------------


def ensure_evidently() -> None:
    if EVIDENTLY_PYTHON.exists():
        return
    print("creating benchmarks/.venv-evidently (evidently 0.7.23, pandas<3) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run(
        [
            str(EVIDENTLY_PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "evidently==0.7.23",
            "pandas<3",
            "pyarrow",
        ],
        check=True,
    )


def run_worker(name: str, folder: Path) -> dict:
    python = str(EVIDENTLY_PYTHON) if name == "evidently" else sys.executable
    env = {
        **os.environ,
        "EVIDENTLY_DISABLE_TELEMETRY": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    done = subprocess.run(
        [python, __file__, "--worker", name, "--data", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: dict, rows: int) -> str:
    median = {
        name: statistics.median(r["seconds"] for r in results) for name, results in runs.items()
    }
    lines = [
        f"rows: {rows:,} per side; {N_NUMERIC} numeric + {N_CATEGORICAL} categorical "
        f"columns; {len(next(iter(runs.values())))} rounds; medians",
        "",
        "| contender | median s | vs observe | extra peak memory / window size |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, results in runs.items():
        memory = statistics.median(r["extra_bytes"] / r["window_bytes"] for r in results)
        lines.append(
            f"| {name} | {median[name]:.3f} | {median[name] / median['observe']:.2f}x "
            f"| {memory:.2f} |"
        )
    lines.append("")
    if "evidently" in median:
        lines.append(
            f"Evidently / observe: {median['evidently'] / median['observe']:.0f}x; "
            f"Evidently / evaluator (whole MLflow path): "
            f"{median['evidently'] / median['evaluator']:.0f}x"
        )
    lines.append(
        f"observe / numpy floor: {median['observe'] / median['floor']:.2f}x; "
        f"observe-1core / floor: {median['observe-1core'] / median['floor']:.2f}x"
    )
    builds = [r["build_seconds"] for r in runs["observe"]]
    lines.append(f"baseline build from the reference (observe): {statistics.median(builds):.2f} s")
    lines.append(f"drifted (observe): {runs['observe'][0]['drifted']}; injected: {sorted(SHIFTED)}")
    if "evidently" in runs:
        lines.append(f"drifted (Evidently): {runs['evidently'][0]['drifted']}")
        ours, theirs = runs["observe"][0]["statistics"], runs["evidently"][0]["statistics"]
        gap = max(abs(ours[c] - theirs[c]) for c in theirs if c in ours)
        lines.append(
            f"largest |observe - Evidently| over the columns' primary statistics: {gap:.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.data)))
        return
    names = ["observe", "observe-1core", "evaluator", "floor"]
    if not args.skip_evidently:
        ensure_evidently()
        names.append("evidently")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(args.rows, folder)
        runs = {name: [] for name in names}
        for round_number in range(args.repeats):
            for name in names:  # interleaved: A B C ... A B C ...
                runs[name].append(run_worker(name, folder))
                print(
                    f"round {round_number + 1}: {name} {runs[name][-1]['seconds']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    print(summarise(runs, args.rows))


if __name__ == "__main__":
    main()
