"""alibi-detect's MMD beside the core's multivariate detectors, at equal sample sizes.

    .venv-alibi/bin/python benchmarks/alibi_speed.py                    # 1000, 2000, 5000 rows
    .venv-alibi/bin/python benchmarks/alibi_speed.py --rows 10000 --repeats 1

Runs in the alibi-detect environment (``python3 tasks.py test-alibi`` creates
``.venv-alibi``: numpy<2, PyTorch's CPU build). The data are those of
``rootcause_speed.py``: 25 columns (20 numeric, 5 categorical), the window
breaking one correlated pair with every column's own distribution unchanged.
For each size ``n`` (rows of the reference and of the window), timed, rounds
interleaved, medians:

* ``alibi_mmd``: ``MMDDrift(backend="pytorch")`` built on the reference and
  run on the window, on one PyTorch thread as the backend runs it (Gaussian
  kernel, bandwidth from the reference's median distance, 100 permutations),
  on the backend's encoding (numbers standardised, categories as
  indicators: 55 dimensions);
* ``domain``: the core's :func:`domain_classifier_drift` on the same rows;
* ``pca``: the core's :func:`reconstruction_drift` on the same rows.

MMD's kernel matrix has (2n)^2 entries, so its time and memory grow with the
square of the sample; the core's detectors grow about linearly.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rootcause_speed import make  # noqa: E402  (the same data as the 100k benchmark)

from mlflow_observe.backends.alibi import _embedded, _torch_settings  # noqa: E402
from mlflow_observe.core.drift.multivariate.domain_classifier import (
    domain_classifier_drift,
)
from mlflow_observe.core.drift.multivariate.encoding import FeatureEncoding
from mlflow_observe.core.drift.multivariate.reconstruction import reconstruction_drift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch
    from alibi_detect.cd import MMDDrift

    print(
        f"{os.cpu_count()} cores; torch {torch.__version__} (MMD on one thread); "
        f"medians of {args.repeats} rounds\n"
    )
    print(
        "| rows per side | contender | median s | min s | max s | p-value / statistic | drifted |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for n in args.rows:
        reference = make(n, seed=0, broken=False)
        window = make(n, seed=1, broken=True)
        outcome = {}

        # Bound now (defaults): each round times the same three calls on this size.
        def alibi_mmd(reference=reference, window=window, outcome=outcome):
            encoding = FeatureEncoding.fit(reference)
            x_ref, x_cur = (m.astype("float32") for m in _embedded(encoding, reference, window))
            with _torch_settings("alibi:mmd", 0):  # seeded, one thread: as the backend runs it
                data = MMDDrift(x_ref, backend="pytorch", device="cpu").predict(x_cur)["data"]
            outcome["alibi_mmd"] = (data["p_val"], bool(data["is_drift"]))

        def domain(reference=reference, window=window, outcome=outcome):
            result = domain_classifier_drift(reference, window)
            outcome["domain"] = (result.statistic, result.drifted)

        def pca(reference=reference, window=window, outcome=outcome):
            result = reconstruction_drift(reference, window)
            outcome["pca"] = (result.statistic, result.drifted)

        contenders = {"alibi_mmd": alibi_mmd, "domain": domain, "pca": pca}
        times = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, run in contenders.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        for name, values in times.items():
            value, drifted = outcome[name]
            print(
                f"| {n:,} | {name} | {statistics.median(values):.2f} | {min(values):.2f} | "
                f"{max(values):.2f} | {value:.4g} | {drifted} |",
                flush=True,
            )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
