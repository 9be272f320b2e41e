"""Text and embedding drift at scale, side by side with Evidently, with both verdicts.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/unstructured_speed.py \\
        [--rows 100000] [--reference 20000] [--dim 384] [--evidently /tmp/us-evidently-venv/bin/python]

Data (see ``unstructured_data.py``): a text column of ``--rows`` texts of about 50
words (Rotten Tomatoes critics' snippets, two or three per text) against a
``--reference``-row baseline of the same pool (*calm*), or of plot summaries
(*drifted*: another kind of text about the same films); a ``--dim``-dimensional
embedding column, calm, with the mean of 20 dimensions moved by 0.1 of their spread
(*mean shift*), and with half of the correlated structure replaced by independent
noise of the same variance (*correlation only*: no dimension's mean or spread moves).

mlflow-observe, timed end to end through the core detectors: text — the baseline
vocabulary (``TextVocabulary.fit``), the descriptors of every row of both sides
(``text_descriptors``, the reference's left out of the vocabulary one text at a
time, as the profile does), a two-sample KS test per descriptor (Bonferroni at 0.05: a
stand-in for the profile's own rules), and the TF-IDF domain classifier
(``text_domain_drift``, 10,000 texts a side); embeddings — ``embedding_drift``
(domain classifier on 10,000 vectors a side, mean distances and components on all).
The verdict is the domain classifier's (text) or ``embedding_drift``'s.

Evidently 0.7.23 runs in its own virtual environment, in a subprocess per case
(``unstructured_evidently_peer.py``); its time includes building its datasets and
descriptors. Contenders alternate case by case. Quote the load average: the table
prints it.
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
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unstructured_data import corpus_pools, embedding_basis, embeddings, texts  # noqa: E402

from mlflow_observe.core.drift.unstructured import (  # noqa: E402
    TextVocabulary,
    embedding_drift,
    text_descriptors,
    text_domain_drift,
)

HERE = Path(__file__).resolve().parent
TEXT_CASES = ("calm", "drifted")
EMBEDDING_CASES = ("calm", "meanshift", "correlation")


def make_data(folder: str, rows: int, reference_rows: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pools = corpus_pools()
    pd.DataFrame({"review": texts(pools["critics"], reference_rows, rng)}).to_parquet(
        f"{folder}/text_reference.parquet"
    )
    pd.DataFrame({"review": texts(pools["critics"], rows, rng)}).to_parquet(
        f"{folder}/text_calm.parquet"
    )
    pd.DataFrame({"review": texts(pools["plot"], rows, rng)}).to_parquet(
        f"{folder}/text_drifted.parquet"
    )
    basis = embedding_basis(dim, seed)
    np.save(f"{folder}/emb_reference.npy", embeddings(reference_rows, basis, rng))
    np.save(f"{folder}/emb_calm.npy", embeddings(rows, basis, rng))
    np.save(f"{folder}/emb_meanshift.npy", embeddings(rows, basis, rng, shift=0.1))
    np.save(f"{folder}/emb_correlation.npy", embeddings(rows, basis, rng, mix=0.5))


def ours_text(folder: str, case: str) -> dict:
    reference = pd.read_parquet(f"{folder}/text_reference.parquet")["review"]
    current = pd.read_parquet(f"{folder}/text_{case}.parquet")["review"]
    start = time.perf_counter()
    vocabulary = TextVocabulary.fit(reference)
    # The reference's own texts against the vocabulary learned without each of them, as
    # the profile measures them (else its out-of-vocabulary shares are 0 by construction).
    before = text_descriptors(reference, vocabulary, leave_one_out=True)
    after = text_descriptors(current, vocabulary)
    level = 0.05 / before.shape[1]
    descriptors = {
        c: bool(
            stats.ks_2samp(before[c].dropna(), after[c].dropna(), method="asymp").pvalue < level
        )
        for c in before.columns
    }
    domain = text_domain_drift(reference, current)
    seconds = time.perf_counter() - start
    return {
        "tool": "mlflow-observe",
        "case": f"text_{case}",
        "seconds": seconds,
        "drifted": bool(domain.drifted),
        "score": float(domain.statistic),
        "detail": descriptors,
    }


def ours_embedding(folder: str, case: str) -> dict:
    reference = np.load(f"{folder}/emb_reference.npy")
    current = np.load(f"{folder}/emb_{case}.npy")
    start = time.perf_counter()
    result = embedding_drift(reference, current)
    seconds = time.perf_counter() - start
    return {
        "tool": "mlflow-observe",
        "case": f"emb_{case}",
        "seconds": seconds,
        "drifted": bool(result.drifted),
        "score": float(result.statistic),
        "detail": {
            "domain": bool(result.domain.drifted),
            "euclidean": bool(result.euclidean.drifted),
            "cosine": bool(result.cosine.drifted),
            "components": bool(result.components_drifted),
        },
    }


def evidently(python: str, folder: str, case: str) -> dict:
    env = {**os.environ, "EVIDENTLY_DISABLE_TELEMETRY": "1", "PYTHONPATH": ""}
    done = subprocess.run(
        [python, str(HERE / "unstructured_evidently_peer.py"), folder, case],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"tool": "evidently", "case": case, "error": done.stderr[-2000:]}
    return json.loads(lines[-1])


def table(results: list[dict], load: tuple) -> str:
    lines = [
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"after: {os.getloadavg()[0]:.2f}",
        "",
        "| case | tool | seconds | verdict | score | detail |",
        "|---|---|---:|---|---:|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['tool']} | - | error | - | {r['error'][-200:]!r} |")
            continue
        verdict = "drift" if r["drifted"] else "no drift"
        detail = ", ".join(f"{k}={'drift' if v else 'no'}" for k, v in r.get("detail", {}).items())
        lines.append(
            f"| {r['case']} | {r['tool']} | {r['seconds']:.1f} | {verdict} | {r['score']:.3f} "
            f"| {detail} |"
        )
    lines += ["", "| case | mlflow-observe s | Evidently s | Evidently / mlflow-observe |"]
    lines.append("|---|---:|---:|---:|")
    by_case: dict = {}
    for r in results:
        if "seconds" in r:
            by_case.setdefault(r["case"], {})[r["tool"]] = r["seconds"]
    for case, times in by_case.items():
        ours, theirs = times.get("mlflow-observe"), times.get("evidently")
        ratio = f"{theirs / ours:.1f}x" if ours and theirs else "-"
        lines.append(
            f"| {case} | {ours if ours is None else f'{ours:.1f}'} | "
            f"{theirs if theirs is None else f'{theirs:.1f}'} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reference", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--evidently", default="/tmp/us-evidently-venv/bin/python")
    parser.add_argument("--only", choices=["text", "emb"], default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        make_data(folder, args.rows, args.reference, args.dim)
        cases = []
        if args.only in (None, "text"):
            cases += [("text", c) for c in TEXT_CASES]
        if args.only in (None, "emb"):
            cases += [("emb", c) for c in EMBEDDING_CASES]
        for kind, case in cases:
            ours = ours_text(folder, case) if kind == "text" else ours_embedding(folder, case)
            results.append(ours)
            print(json.dumps(ours), flush=True)
            if os.path.exists(args.evidently):
                theirs = evidently(args.evidently, folder, f"{kind}_{case}")
                results.append(theirs)
                print(json.dumps(theirs)[:600], flush=True)
    print(table(results, load))
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()
