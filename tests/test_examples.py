"""The quickstart runs end to end and finds exactly the injected shift."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_finds_the_injected_shift(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--store", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    calm, shifted = result.stdout.split("shifted window")
    assert "dataset drift: no" in calm and "(none)" in calm
    assert "dataset drift: yes" in shifted
    drifting = [line.split(":")[0].strip(" -") for line in shifted.splitlines()
                if line.startswith("    - ")]
    assert sorted(drifting) == ["mean radius", "worst texture"]
    assert (tmp_path / "mlflow.db").exists()
