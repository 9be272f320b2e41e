"""The progress bar over a streamed window's batches: off off-terminal, countable when forced."""

import numpy as np
import pandas as pd
import pyarrow as pa

from mlflow_observe.comparison import compare
from mlflow_observe.core.profile.data_profile import build_profile


def _window_batches(n_batches=7, rows=50):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"x": rng.normal(size=n_batches * rows), "c": rng.choice(["a", "b"], n_batches * rows)}
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return frame, table.to_batches(max_chunksize=rows)


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    frame, batches = _window_batches()
    compare(build_profile(frame), iter(batches))  # pytest's captured stderr is no terminal
    assert capsys.readouterr().err == ""


def test_forced_bar_counts_the_batches(capsys):
    frame, batches = _window_batches(n_batches=7)
    compare(build_profile(frame), iter(batches), progress=True)
    err = capsys.readouterr().err
    assert "7batch" in err.replace(" ", "")  # tqdm's final line: "counting: 7batch [..]"
    assert "counting" in err


def test_forced_off(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    frame, batches = _window_batches()
    compare(build_profile(frame), iter(batches), progress=False)
    assert capsys.readouterr().err == ""
