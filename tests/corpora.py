"""Real text corpora for the tests: the examples' loader, ``examples/_corpora.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from _corpora import guardian_headlines, rotten_tomatoes  # noqa: E402

__all__ = ["guardian_headlines", "rotten_tomatoes"]
