"""False-alarm and detection rates of the text and embedding drift detectors.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/unstructured_calibration.py \\
        [--windows 100] [--drifted-windows 20] [--json benchmarks/unstructured_calibration.json]

Text (``text_domain_drift``, defaults: alpha=0.001, min_margin=0.02), on the Rotten
Tomatoes corpus (see ``unstructured_data.py``):

- *calm*: the critics' snippets (fresh and rotten) shuffled, a reference and a
  window of ``n`` snippets each drawn without overlap: the same distribution;
- *label*: a reference of ``fresh`` snippets against a window of ``rotten`` ones
  (a real change of what the reviews say, same writers and films);
- *source*: critics' snippets against plot summaries.

Embeddings (``embedding_drift``, defaults), synthetic 32-dimensional vectors with
a correlated structure: *calm* (the same distribution), *mean shift* (20 dimensions
moved by 0.1 of their spread), *correlation only* (half of the correlated part
replaced by independent noise of the same variance). Each window draws new data.

The table gives, for each case and size, the share of windows flagged with a
Clopper-Pearson 95% interval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unstructured_data import corpus_pools, embedding_basis, embeddings  # noqa: E402

from mlflow_observe.core.drift.unstructured import (  # noqa: E402
    embedding_drift,
    text_domain_drift,
)


def interval(k: int, n: int) -> tuple[float, float]:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def text_windows(pools, case: str, n: int, windows: int, seed: int) -> list[bool]:
    rng = np.random.default_rng(seed)
    flags = []
    for w in range(windows):
        if case == "calm":
            picks = rng.permutation(len(pools["critics"]))[: 2 * n]
            reference, current = pools["critics"][picks[:n]], pools["critics"][picks[n:]]
        elif case == "label":
            reference = rng.choice(pools["fresh"], n, replace=False)
            current = rng.choice(pools["rotten"], n, replace=False)
        else:
            reference = rng.choice(pools["critics"], n, replace=False)
            current = rng.choice(pools["plot"], min(n, len(pools["plot"])), replace=False)
        flags.append(bool(text_domain_drift(reference, current, random_state=w).drifted))
    return flags


def embedding_windows(case: str, n: int, windows: int, seed: int, dim: int = 32) -> list[bool]:
    rng = np.random.default_rng(seed)
    basis = embedding_basis(dim, seed)
    options = {"calm": {}, "mean shift": {"shift": 0.1}, "correlation only": {"mix": 0.5}}[case]
    flags = []
    for w in range(windows):
        reference = embeddings(n, basis, rng)
        current = embeddings(n, basis, rng, **options)
        flags.append(bool(embedding_drift(reference, current, random_state=w).drifted))
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--drifted-windows", type=int, default=20)
    parser.add_argument("--text-sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--embedding-sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    load = os.getloadavg()
    pools = corpus_pools()
    rows = []
    plan = [("text", case, n) for case in ("calm", "label", "source") for n in args.text_sizes]
    plan += [
        ("embedding", case, n)
        for case in ("calm", "mean shift", "correlation only")
        for n in args.embedding_sizes
    ]
    for kind, case, n in plan:
        windows = args.windows if case == "calm" else args.drifted_windows
        start = time.perf_counter()
        flags = (
            text_windows(pools, case, n, windows, seed=n)
            if kind == "text"
            else embedding_windows(case, n, windows, seed=n)
        )
        k = int(sum(flags))
        row = {
            "detector": kind,
            "case": case,
            "rows_a_side": n,
            "windows": windows,
            "flagged": k,
            "rate": k / windows,
            "ci95": interval(k, windows),
            "seconds": time.perf_counter() - start,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nload average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n| detector | case | rows a side | windows | flagged | rate | 95% interval |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        low, high = r["ci95"]
        print(
            f"| {r['detector']} | {r['case']} | {r['rows_a_side']:,} | {r['windows']} | "
            f"{r['flagged']} | {r['rate']:.1%} | {low:.1%} - {high:.1%} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
