"""Traffic against its own recent past: ``traffic/rows_ratio`` for spike and drop rules.

``traffic/rows_ratio`` is a window's rows divided by the median of the rows of
the previous ``reference`` windows of the same monitor run (24 by default),
so ``traffic/rows_ratio<=0.5`` pages when traffic halves and
``traffic/rows_ratio>=3`` when it triples, whatever the usual volume. The
median is robust: one earlier burst or outage among the reference windows
does not move it.

The ratio is left out (and a rule on it does not fire) when fewer than
:data:`MIN_REFERENCE_WINDOWS` of the previous windows are known (the start of a
series) or when their median is 0 (no traffic to compare with: the
``traffic/rows==0 for <duration>`` rule covers that).
"""

from __future__ import annotations

import math
import statistics

from mlflow_observe.monitoring.catalogue import TRAFFIC_ROWS_RATIO

DEFAULT_REFERENCE = 24
MIN_REFERENCE_WINDOWS = 3


def check_reference(reference) -> int:
    """The number of previous windows the ratio compares with: an int >= MIN_REFERENCE_WINDOWS.

    >>> check_reference(24)
    24
    >>> check_reference(1)
    Traceback (most recent call last):
    ...
    ValueError: The 'traffic_reference' parameter of monitor must be an int >= 3. Got 1 instead.
    """
    if isinstance(reference, bool) or not isinstance(reference, int) or reference < 3:
        raise ValueError(
            "The 'traffic_reference' parameter of monitor must be an int >= "
            f"{MIN_REFERENCE_WINDOWS}. Got {reference!r} instead."
        )
    return reference


def rows_ratio(history: dict, step: int, n_rows: float, *, reference: int = DEFAULT_REFERENCE):
    """``n_rows`` over the median rows of windows ``step - reference`` to ``step - 1``, or None.

    Parameters
    ----------
    history : dict
        ``{window index: rows}`` of the monitor run (windows not in it are unknown).
    step : int
        The current window's index.
    n_rows : float
        The current window's rows.
    reference : int, default=24
        How many previous windows to take the median of.

    Returns
    -------
    float or None
        None when fewer than 3 previous windows are known or their median is 0.

    Examples
    --------
    >>> rows_ratio({0: 100.0, 1: 120.0, 2: 80.0, 3: 4000.0}, 4, 50.0)
    0.45454545454545453
    >>> rows_ratio({0: 100.0, 1: 120.0}, 2, 50.0) is None
    True
    >>> rows_ratio({0: 0.0, 1: 0.0, 2: 10.0}, 3, 50.0) is None
    True
    """
    earlier = [
        float(history[i])
        for i in range(step - reference, step)
        if i in history and history[i] is not None and math.isfinite(history[i])
    ]
    if len(earlier) < MIN_REFERENCE_WINDOWS:
        return None
    median = statistics.median(earlier)
    if not median > 0:
        return None
    return float(n_rows) / median


def traffic_metrics(history: dict, step: int, n_rows: int, *, reference: int) -> dict:
    """``{traffic/rows_ratio: value}`` for the window, or ``{}`` when the ratio is undefined."""
    ratio = rows_ratio(history, step, n_rows, reference=reference)
    return {} if ratio is None else {TRAFFIC_ROWS_RATIO: ratio}
