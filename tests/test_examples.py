"""The quickstart runs end to end and finds exactly the injected shift."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each example runs in its own process (one serves a model) for tens of seconds.
pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_finds_the_injected_shift(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    calm, shifted = result.stdout.split("shifted window")
    assert "dataset drift: no" in calm and "(none)" in calm
    assert "dataset drift: yes" in shifted

    def share(text):
        return float(text.split("share of drifted columns: ")[1].split()[0])

    # The calm window never shows more drift than the shifted one, and is not in warning.
    assert share(calm) < share(shifted)
    assert "status: ok" in calm and "status: drift" in shifted
    drifting = [
        line.split(":")[0].strip(" -") for line in shifted.splitlines() if line.startswith("    - ")
    ]
    assert sorted(drifting) == ["mean radius", "worst texture"]
    assert (tmp_path / "mlflow.db").exists()


def test_serve_and_monitor_finds_the_shift_in_the_second_half_only(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "serve_and_monitor.py"), "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines() if "half:" in line}
    assert "200 logged predictions; drifted columns: none" in lines["first half"]
    assert "200 logged predictions; drifted columns: ['tenure_months']" in lines["second half"]


def test_serve_text_and_monitor_finds_the_plot_summaries_only(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "serve_text_and_monitor.py"),
            "--store",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {
        line.split(":")[0]: line for line in result.stdout.splitlines() if "logged pred" in line
    }
    calm, shifted = lines["critics' snippets"], lines["plot summaries"]
    assert "300 logged predictions" in calm and "drifted: False" in calm
    assert "drifted descriptors: none" in calm
    assert "300 logged predictions" in shifted and "drifted: True" in shifted
    # Plot summaries tell a story in the third person, reviews speak of "the movie".
    why = next(line for line in result.stdout.splitlines() if line.strip().startswith("why:"))
    assert "movie" in why.split("in the reference:")[1]


def test_monitor_and_gate_catches_the_afternoon_drift_and_gates(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "monitor_and_gate.py"), "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "monitored 24 hourly windows; first critical alert at 14:00" in out
    assert "10 windows alerted, 2 incident(s) paged once each, 0 resolved" in out
    assert "run again: 0 new windows (24 evaluated before)" in out
    refused, accepted = out.split("4. gate v2 (old customers): ")[1].split("4. gate v3")
    assert refused.startswith("failed") and "FAIL  drift/share_drifted_columns" in refused
    assert accepted.startswith(" (retrained): passed") and "champion is now v3" in accepted
    trail = out.split("5. the audit trail")[1]
    v1, v2, v3 = trail.split("   churn v")[1:]
    assert "24 monitored windows" in v1 and "alert    critical" in v1 and "gate" not in v1
    assert "gate failed" in v2 and "gate passed" in v3 and "alias 'champion'" in v3


def test_explain_and_attribution_example_sees_the_reliance_move(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "explain_and_attribution.py"),
            "--store",
            str(tmp_path),
            "--screenshots",
            str(tmp_path / "shots"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # distance_km's distribution is calm, the model's reliance on it is not.
    assert "distance_km: drifted False" in out and "traffic_index: drifted True" in out
    assert "items: drifted False" in out
    assert "attribution drift:" in out and out.split("attribution drift:")[1].split()[3] == "True"
    change = float(out.split("distance_km: drifted False, share change ")[1].split()[0])
    assert change < -0.1
    for name in ("explained_prediction.png", "attribution_drift.png"):
        assert (tmp_path / "shots" / name).read_bytes()[:4] == b"\x89PNG"
