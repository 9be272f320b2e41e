"""Calibration of the drift decisions: false alarms on calm windows, and power on shifted ones.

    .venv/bin/python benchmarks/calibration.py                       # 100 .. 100,000 rows
    .venv/bin/python benchmarks/calibration.py --sizes 1000000 --windows 20
    .venv/bin/python benchmarks/calibration.py --quick               # a smoke run

Each window has 25 columns of six kinds (see ``COLUMNS``): normal, lognormal
(sigma 1 and sigma 2), integer-valued (Poisson), zero-inflated (a spike at 0 and
an exponential tail, like delays), boolean and categorical (8 categories).

* **Calm windows**: a fresh reference of ``--reference-rows`` rows (20,000) and a
  window of the given size, both drawn from the same distribution, are compared
  with the default options (``mlflow_observe.compare``). The rate of windows
  whose status is ``drift`` and of those whose status is ``warning`` is
  reported, with the rate at which any single column is flagged, and the same
  with ``dataset_method="bh"`` (the dataset drifts when any column does).
  Targets: ``drift`` on at most 5% and ``warning`` on at most 10% of windows.
* **Shifted windows**: the same, with one column of each numeric kind shifted by
  0.1, 0.25 or 0.5 of its standard deviation, and one categorical column with
  the frequencies of its two commonest categories swapped (0.30 and 0.20). The
  detection rate is the share of windows in which the shifted column is flagged.

A fresh reference for every window makes the rates averages over references as
well as windows, as a user meeting the tool would see them. Results go to
stdout as Markdown tables and to ``--output`` as JSON.

With ``--evidently``, Evidently 0.7.23's ``Report([DataDriftPreset()])`` (its
defaults) runs on the first ``--evidently-windows`` of the same windows (the
same seeds draw the same rows), in its own virtual environment
(``benchmarks/.venv-evidently``, created on first use; pandas < 3, telemetry
off): its dataset-drift rate on calm windows, the rate at which it flags any
column, and its detection rate on the shifted ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
EVIDENTLY_VENV = HERE / ".venv-evidently"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"

CATEGORY_P = np.array([0.30, 0.20, 0.15, 0.12, 0.09, 0.07, 0.04, 0.03])
CATEGORIES = np.array([f"c{i}" for i in range(len(CATEGORY_P))])
POISSON_LAMBDA = 4.0
ZERO_SHARE, DELAY_SCALE = 0.6, 10.0
# name prefix -> how many columns of it a window has (25 in all)
COLUMNS = {
    "normal": 5,
    "lognormal": 4,
    "lognormal2": 1,
    "integer": 4,
    "zero_inflated": 4,
    "boolean": 4,
    "categorical": 3,
}
SHIFTED = {  # the column of each kind that the shifted windows change
    "normal": "normal_0",
    "lognormal": "lognormal_0",
    "integer": "integer_0",
    "zero_inflated": "zero_inflated_0",
}
SWAPPED = "categorical_0"
DEFAULT_SIZES = (100, 300, 1000, 10_000, 100_000)
DEFAULT_WINDOWS = {100: 400, 300: 400, 1000: 400, 10_000: 200, 100_000: 60, 1_000_000: 20}
SHIFTS = (0.1, 0.25, 0.5)


def _sd(kind: str) -> float:
    if kind == "normal":
        return 1.0
    if kind == "lognormal":
        return float(np.sqrt((np.e - 1) * np.e))
    if kind == "integer":
        return float(np.sqrt(POISSON_LAMBDA))
    if kind == "zero_inflated":
        # mixture of 0 (share z) and Exp(scale s): var = (1 - z) 2 s^2 - ((1 - z) s)^2
        mean = (1 - ZERO_SHARE) * DELAY_SCALE
        return float(np.sqrt((1 - ZERO_SHARE) * 2 * DELAY_SCALE**2 - mean**2))
    raise ValueError(kind)


def draw(n: int, rng: np.random.Generator, *, shift: float = 0.0, swap: bool = False):
    """A frame of ``n`` rows; ``shift`` (in sd) moves the SHIFTED columns, ``swap`` SWAPPED."""
    data = {}
    for kind, count in COLUMNS.items():
        for i in range(count):
            name = f"{kind}_{i}"
            delta = shift if SHIFTED.get(kind) == name else 0.0
            if kind == "normal":
                values = rng.normal(delta, 1.0, n)
            elif kind == "lognormal":
                values = np.exp(rng.normal(0.0, 1.0, n)) + delta * _sd(kind)
            elif kind == "lognormal2":
                values = np.exp(rng.normal(0.0, 2.0, n))
            elif kind == "integer":
                values = rng.poisson(POISSON_LAMBDA + delta * _sd(kind), n)
            elif kind == "zero_inflated":
                scale = DELAY_SCALE + delta * _sd(kind) / (1 - ZERO_SHARE)
                values = np.where(rng.random(n) < ZERO_SHARE, 0.0, rng.exponential(scale, n))
            elif kind == "boolean":
                values = rng.random(n) < 0.3
            else:
                p = CATEGORY_P.copy()
                if swap and name == SWAPPED:
                    p[[0, 1]] = p[[1, 0]]
                values = CATEGORIES[rng.choice(len(p), n, p=p)]
            data[name] = values
    return pd.DataFrame(data)


def run_size(size: int, windows: int, reference_rows: int, seed: int, power: bool) -> dict:
    from mlflow_observe.comparison import compare
    from mlflow_observe.core.drift.options import DriftOptions
    from mlflow_observe.core.profile.data_profile import build_profile

    options = {"share": DriftOptions(), "bh": DriftOptions(dataset_method="bh")}
    calm = {name: {"drift": 0, "warning": 0} for name in options}
    column_flags = {kind: [0, 0] for kind in COLUMNS}  # flagged, compared
    any_flag = 0
    detected = {f"{kind} {s}": 0 for s in SHIFTS for kind in SHIFTED}
    detected["category swap"] = 0
    n_power = min(windows, max(windows // 2, 5)) if power else 0
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    for w in range(windows):
        rng = np.random.default_rng([seed, size, w])
        profile = build_profile(draw(reference_rows, rng), n_jobs=1)
        window = draw(size, rng)
        for name, option in options.items():
            drift = compare(profile, window, option, n_jobs=1).drift
            if drift.status in calm[name]:
                calm[name][drift.status] += 1
            if name == "share":
                any_flag += drift.n_drifted > 0
                for c in drift.columns:
                    kind = c.column.rsplit("_", 1)[0]
                    column_flags[kind][0] += c.drifted
                    column_flags[kind][1] += 1
        if w < n_power:
            for s in SHIFTS:
                shifted = compare(profile, draw(size, rng, shift=s), n_jobs=1).drift
                for kind, column in SHIFTED.items():
                    detected[f"{kind} {s}"] += shifted.column(column).drifted
            swapped = compare(profile, draw(size, rng, swap=True), n_jobs=1).drift
            detected["category swap"] += swapped.column(SWAPPED).drifted
    return {
        "size": size,
        "windows": windows,
        "reference_rows": reference_rows,
        "drift_rate": calm["share"]["drift"] / windows,
        "warning_rate": calm["share"]["warning"] / windows,
        "bh_drift_rate": calm["bh"]["drift"] / windows,
        "bh_warning_rate": calm["bh"]["warning"] / windows,
        "any_column_flagged_rate": any_flag / windows,
        "column_flag_rate": {k: f / max(n, 1) for k, (f, n) in column_flags.items()},
        "power_windows": n_power,
        "detection_rate": {k: v / n_power for k, v in detected.items()} if n_power else {},
        "seconds": round(time.perf_counter() - started, 1),
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        # the machine's one-minute load average when the size started and ended
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def use_evidently_venv(venv: Path) -> None:
    """Run Evidently from ``venv`` (created there on first use) instead of the default."""
    global EVIDENTLY_VENV, EVIDENTLY_PYTHON
    EVIDENTLY_VENV, EVIDENTLY_PYTHON = venv, venv / "bin" / "python"


def ensure_evidently() -> None:
    if EVIDENTLY_PYTHON.exists():
        return
    print(f"creating {EVIDENTLY_VENV} (evidently 0.7.23, pandas<3) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run(
        [str(EVIDENTLY_PYTHON), "-m", "pip", "install", "--quiet"]
        + ["evidently==0.7.23", "pandas<3", "pyarrow"],
        check=True,
    )


def evidently_size(
    size: int,
    windows: int,
    reference_rows: int,
    seed: int,
    save=None,
    *,
    first: int = 0,
    verdicts: list[dict] | None = None,
    frames: list[str] | None = None,
) -> dict:
    """Evidently's verdicts on windows ``first`` to ``windows - 1`` of ``run_size`` (same
    draws), added to ``verdicts`` (those of the earlier windows, from an earlier run).

    One worker process a report, so that a long run keeps what it has measured:
    ``save`` (if given) is called with the result so far after every report.
    ``frames`` picks which of a window's frames are reported (default: all of
    ``calm``, ``shift 0.1``, ``shift 0.25``, ``shift 0.5`` and ``swap``).
    """
    n_power = min(windows, max(windows // 2, 5))
    env = {**os.environ, "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    verdicts = [v for v in verdicts or [] if v["window"] < first]
    result: dict = {}
    for w in range(first, windows):
        with tempfile.TemporaryDirectory() as folder:
            rng = np.random.default_rng([seed, size, w])
            drawn = {"reference": draw(reference_rows, rng), "calm": draw(size, rng)}
            if w < n_power:
                for s in SHIFTS:
                    drawn[f"shift {s}"] = draw(size, rng, shift=s)
                drawn["swap"] = draw(size, rng, swap=True)
            names = [n for n in drawn if n != "reference" and (frames is None or n in frames)]
            for name in ["reference"] + names:
                drawn[name].to_parquet(Path(folder) / f"{w}-{name}.parquet")
            del drawn
            for name in names:
                jobs = [{"window": w, "frames": ["reference", name]}]
                (Path(folder) / "jobs.json").write_text(json.dumps(jobs))
                done = subprocess.run(
                    [str(EVIDENTLY_PYTHON), __file__, "--evidently-worker", folder],
                    check=False,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-3000:])
                verdicts += json.loads(done.stdout.strip().splitlines()[-1])
                result = _evidently_result(size, verdicts)
                if save is not None:
                    save(result)
    return result


def _evidently_result(size: int, verdicts: list[dict]) -> dict:
    calm = [v for v in verdicts if v["frame"] == "calm"]
    frames = {f"{kind} {s}": f"shift {s}" for s in SHIFTS for kind in SHIFTED}
    frames["category swap"] = "swap"
    detected, reported = {}, {}
    for key, frame in frames.items():
        kind = key.rsplit(" ", 1)[0] if key != "category swap" else None
        column = SWAPPED if kind is None else SHIFTED[kind]
        seen = [v for v in verdicts if v["frame"] == frame]
        if seen:
            reported[key] = len(seen)
            detected[key] = sum(column in v["drifted"] for v in seen) / len(seen)
    windows = len(calm)
    return {
        "size": size,
        "windows": windows,
        "drift_rate": sum(v["dataset_drift"] for v in calm) / windows if windows else None,
        "any_column_flagged_rate": sum(bool(v["drifted"]) for v in calm) / windows
        if windows
        else None,
        "column_flag_rate": sum(len(v["drifted"]) for v in calm) / (windows * 25)
        if windows
        else None,
        "power_windows": len({v["window"] for v in verdicts if v["frame"] != "calm"}),
        "detection_rate": detected,
        "detection_windows": reported,
        "seconds_per_report": round(sum(v["seconds"] for v in verdicts) / len(verdicts), 1),
        "measured": time.strftime("%Y-%m-%d"),
        "verdicts": verdicts,
    }


def evidently_worker(folder: str) -> None:
    """Run in Evidently's environment: its default preset on every job's windows."""
    os.environ["EVIDENTLY_DISABLE_TELEMETRY"] = "1"
    from evidently import Report
    from evidently.presets import DataDriftPreset

    verdicts = []
    for job in json.loads((Path(folder) / "jobs.json").read_text()):
        w = job["window"]
        reference = pd.read_parquet(Path(folder) / f"{w}-reference.parquet")
        for name in job["frames"][1:]:
            current = pd.read_parquet(Path(folder) / f"{w}-{name}.parquet")
            started = time.perf_counter()
            snapshot = Report([DataDriftPreset()]).run(
                current_data=current, reference_data=reference
            )
            seconds = time.perf_counter() - started
            drifted, share = [], None
            for metric in snapshot.dict()["metrics"]:
                config = metric["config"]
                kind = config.get("type", "")
                if kind.endswith("ValueDrift"):
                    method = str(config.get("method", ""))
                    value, threshold = float(metric["value"]), float(config["threshold"])
                    is_test = "p_value" in method or "test" in method.lower()
                    if (value < threshold) if is_test else (value >= threshold):
                        drifted.append(config["column"])
                elif kind.endswith("DriftedColumnsCount"):
                    share = float(metric["value"]["share"])
            dataset_drift = (len(drifted) / 25 if share is None else share) >= 0.5
            verdicts.append(
                {
                    "window": w,
                    "frame": name,
                    "drifted": drifted,
                    "dataset_drift": dataset_drift,
                    "seconds": round(seconds, 2),
                }
            )
    print(json.dumps(verdicts))


def markdown(results: list[dict], peers: list[dict] | None = None) -> str:
    """The calm-window table and the detection table (Evidently beside ours where run)."""
    peer = {r["size"]: r for r in peers or []}
    lines = [
        (
            "| window rows | calm windows | `drift` | `warning` | `drift` (`bh`) | `warning` (`bh`) "
            "| any column flagged | Evidently: dataset drift | Evidently: any column flagged |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        theirs = peer.get(r["size"])
        evidently = (
            f"{theirs['drift_rate']:.0%} | {theirs['any_column_flagged_rate']:.0%} "
            f"({theirs['windows']} window{'s' if theirs['windows'] != 1 else ''})"
            if theirs and theirs["windows"]
            else "- | -"
        )
        lines.append(
            f"| {r['size']:,} | {r['windows']} | {r['drift_rate']:.1%} | {r['warning_rate']:.1%} "
            f"| {r['bh_drift_rate']:.1%} | {r['bh_warning_rate']:.1%} "
            f"| {r['any_column_flagged_rate']:.1%} | {evidently} |"
        )
    powered = [r for r in results if r["detection_rate"]]
    if powered:
        keys = list(powered[0]["detection_rate"])
        lines += [
            "",
            "| shifted column | " + " | ".join(f"{r['size']:,} rows" for r in powered) + " |",
            "| --- |" + " ---: |" * len(powered),
        ]
        for key in keys:
            cells = []
            for r in powered:
                cell = f"{r['detection_rate'][key]:.0%}"
                theirs = peer.get(r["size"])
                if theirs and key in theirs["detection_rate"]:
                    cell += f" ({theirs['detection_rate'][key]:.0%})"
                cells.append(cell)
            lines.append(f"| {key.replace('_', '-')} sd | " + " | ".join(cells) + " |")
        lines[-1] = lines[-1].replace("category swap sd", "category swap")
        counts = []
        for r in powered:
            theirs = peer.get(r["size"])
            counts.append(
                f"{r['power_windows']}"
                + (f" ({theirs['power_windows']})" if theirs and theirs["power_windows"] else "")
            )
        lines.append("| shifted windows | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--windows", type=int, help="calm windows a size (default: by size)")
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--no-power", action="store_true", help="calm windows only")
    parser.add_argument("--quick", action="store_true", help="20 windows a size, up to 10,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/calibration.json"))
    parser.add_argument(
        "--evidently", action="store_true", help="Evidently only, on the same windows"
    )
    parser.add_argument(
        "--evidently-venv",
        type=Path,
        default=EVIDENTLY_VENV,
        help="Evidently's virtual environment (default: benchmarks/.venv-evidently)",
    )
    parser.add_argument("--evidently-windows", type=int, help="default: 60, 10 above 10,000 rows")
    parser.add_argument(
        "--evidently-first",
        type=int,
        default=0,
        help="start at this window, keeping the stored verdicts of the earlier ones",
    )
    parser.add_argument(
        "--evidently-frames",
        nargs="+",
        choices=["calm"] + [f"shift {s}" for s in SHIFTS] + ["swap"],
        help="only these frames of each window (default: all)",
    )
    parser.add_argument("--evidently-worker", help=argparse.SUPPRESS)
    parser.add_argument("--tables", action="store_true", help="print the tables of --output")
    args = parser.parse_args()
    peers_file = args.output.with_name(args.output.stem + "_evidently.json")
    if args.tables:
        peers = json.loads(peers_file.read_text()) if peers_file.exists() else None
        print(markdown(json.loads(args.output.read_text()), peers))
        return
    if args.evidently_worker:
        evidently_worker(args.evidently_worker)
        return
    if args.evidently:
        use_evidently_venv(args.evidently_venv)
        ensure_evidently()
        output = peers_file
        for size in args.sizes:
            windows = args.evidently_windows or (60 if size <= 10_000 else 10)

            def save(result: dict, size: int = size) -> None:
                # re-read: runs for other sizes may write the same file meanwhile
                peers = json.loads(output.read_text()) if output.exists() else []
                peers = [p for p in peers if p["size"] != size] + [result]
                output.write_text(json.dumps(sorted(peers, key=lambda r: r["size"]), indent=1))
                print(json.dumps({k: v for k, v in result.items() if k != "verdicts"}), flush=True)

            previous = json.loads(output.read_text()) if output.exists() else []
            verdicts = [v for p in previous if p["size"] == size for v in p.get("verdicts", [])]
            evidently_size(
                size,
                windows,
                args.reference_rows,
                args.seed,
                save,
                first=args.evidently_first,
                verdicts=verdicts,
                frames=args.evidently_frames,
            )
        return
    sizes = [s for s in args.sizes if s <= 10_000] if args.quick else args.sizes
    results = []
    for size in sizes:
        windows = 20 if args.quick else args.windows or DEFAULT_WINDOWS.get(size, 20)
        result = run_size(size, windows, args.reference_rows, args.seed, not args.no_power)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(markdown(results))
    previous = json.loads(args.output.read_text()) if args.output.exists() else []
    merged = {r["size"]: r for r in previous} | {r["size"]: r for r in results}
    args.output.write_text(json.dumps(sorted(merged.values(), key=lambda r: r["size"]), indent=1))


if __name__ == "__main__":
    main()
