"""Multivariate drift detectors on a 100k-row window of 25 columns.

    .venv/bin/python benchmarks/rootcause_speed.py                # 100k rows, 3 rounds
    .venv/bin/python benchmarks/rootcause_speed.py --rows 20000 --repeats 5
    .venv/bin/python benchmarks/rootcause_speed.py --every-core   # the trees on every core too
    .venv/bin/python benchmarks/rootcause_speed.py --only impact  # drift impact alone

The reference and the window have ``--rows`` rows each: 20 numeric columns
(two pairs correlated in the reference) and 5 categorical ones. The window
breaks one correlated pair (its marginals unchanged), so the detectors have a
real drift to find. Timed, rounds interleaved (A B A B ...), medians reported:

* ``domain``: :func:`domain_classifier_drift` (5-fold gradient-boosted trees,
  held-out AUC, permutation importances of every column);
* ``domain_every_core`` (with ``--every-core``): the same with ``n_jobs=-1``
  (the trees on every core; the default is one thread);
* ``pca``: :func:`reconstruction_drift` (encoding, 5 left-out-chunk fits,
  window scored by every fit);
* ``compare``: ``mo.compare(..., DriftOptions(multivariate=True))`` on the
  whole window against a baseline with the default 5000-row sample (what the
  evaluator runs: counting every row, then both detectors on the samples).

Target: each detector under 30 s on the full window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.multivariate.domain_classifier import (
    domain_classifier_drift,
)
from mlflow_observe.core.drift.multivariate.reconstruction import reconstruction_drift
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile
from mlflow_observe.core.profile.feature_impact import feature_impact

N_NUMERIC, N_CATEGORICAL = 20, 5


def make(n: int, seed: int, *, broken: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"num_{i}": rng.normal(i, 1 + i / 10, n) for i in range(N_NUMERIC)}
    for a, b in (("num_0", "num_1"), ("num_2", "num_3")):
        rho = 0.0 if broken and a == "num_0" else 0.8
        z = rng.normal(size=n)
        data[b] = data[a] * rho / (1 + int(a[-1]) / 10) + np.sqrt(1 - rho**2) * z
    for i in range(N_CATEGORICAL):
        labels = [f"c{i}_{k}" for k in range(3 + 2 * i)]
        weights = np.linspace(1, 3, len(labels))
        data[f"cat_{i}"] = rng.choice(labels, n, p=weights / weights.sum())
    return pd.DataFrame(data)


def fitted_model(reference: pd.DataFrame):
    """A pipeline that relies on num_0 and num_4 (fitted on 20,000 rows, not timed)."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = reference.iloc[:20_000]
    target = 2.0 * train["num_0"] + train["num_4"] + np.random.default_rng(2).normal(0, 0.3, 20_000)
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), categorical), remainder="passthrough"
    )
    return make_pipeline(encode, HistGradientBoostingRegressor(max_iter=100, random_state=0)).fit(
        train, target
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--every-core", action="store_true", help="Also time the domain classifier with n_jobs=-1."
    )
    parser.add_argument(
        "--only",
        choices=["multivariate", "impact"],
        default=None,
        help="Time only these contenders (default: all).",
    )
    args = parser.parse_args()
    reference = make(args.rows, seed=0, broken=False)
    window = make(args.rows, seed=1, broken=True)
    baseline = build_profile(reference)
    outcome = {}
    model = fitted_model(reference) if args.only != "multivariate" else None
    shifted = window.assign(num_0=window["num_0"] + 0.5)
    with_impact = build_profile(reference)
    features = list(reference.columns)

    def impact_baseline():
        with_impact.impact = outcome["impact_baseline"] = feature_impact(
            model.predict, reference, features
        )

    def impact():
        outcome["impact"] = compare(with_impact, shifted, predict=model.predict).impact

    def domain():
        outcome["domain"] = domain_classifier_drift(reference, window)

    def domain_every_core():
        domain_classifier_drift(reference, window, n_jobs=-1)

    def pca():
        outcome["pca"] = reconstruction_drift(reference, window)

    def whole():
        outcome["compare"] = compare(baseline, window, DriftOptions(multivariate=True))

    contenders = {}
    if args.only != "impact":
        contenders.update({"domain": domain, "pca": pca, "compare": whole})
    if args.every_core:
        contenders["domain_every_core"] = domain_every_core
    if args.only != "multivariate":
        contenders.update({"impact_baseline": impact_baseline, "impact": impact})
    times = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"reference and window: {args.rows:,} rows x {N_NUMERIC + N_CATEGORICAL} columns; "
        f"{args.repeats} rounds; {os.cpu_count()} cores; medians\n"
    )
    print("| contender | median s | min s | max s |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in times.items():
        print(f"| {name} | {median[name]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    if "impact" in outcome:
        top = outcome["impact"].ranking[:3]
        print(
            "\nimpact: top "
            + ", ".join(
                f"{r.column} (score {r.score:.3f}, explains {r.explained:.0%})" for r in top
            )
            + f"; prediction shift {outcome['impact'].prediction_shift:.3f}"
        )
    for name in ("impact_baseline", "impact"):
        if name in median:
            verdict = "under" if median[name] < 30 else "OVER"
            print(f"{name}: {median[name]:.2f} s, {verdict} the 30 s target")
    if "domain" not in outcome:
        return
    d, p = outcome["domain"], outcome["pca"]
    print(
        f"\ndomain classifier: AUC {d.statistic:.4f} in [{d.interval[0]:.4f}, "
        f"{d.interval[1]:.4f}], band upper {d.band[1]:.4f}, drifted {d.drifted}; "
        f"top features {d.ranked_features[:3]}"
    )
    print(
        f"PCA: error {p.statistic:.4f} against threshold {p.threshold:.4f} (reference "
        f"{p.reference_error:.4f}), {p.n_components} of {p.n_dimensions} dimensions, "
        f"drifted {p.drifted}"
    )
    m = outcome["compare"].multivariate
    print(
        f"compare (5000-row samples): AUC {m.domain.statistic:.4f} drifted {m.domain.drifted}; "
        f"PCA drifted {m.reconstruction.drifted}; univariate drifted columns "
        f"{outcome['compare'].drift.drifted_columns}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for name in ("domain", "pca", "domain_every_core"):
        if name not in median:
            continue
        verdict = "under" if median[name] < 30 else "OVER"
        print(f"{name}: {median[name]:.2f} s, {verdict} the 30 s target")


if __name__ == "__main__":
    main()
