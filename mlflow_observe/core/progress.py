"""Progress bars over long loops, on stderr, only where someone can see them."""

from __future__ import annotations

import sys


def progress_bar(
    iterable,
    *,
    enabled: bool | None = None,
    unit: str = "batch",
    desc: str | None = None,
    total: int | None = None,
):
    """Yield from ``iterable``, advancing a bar by one per item.

    Parameters
    ----------
    iterable : iterable
    enabled : bool, optional
        Force the bar on (True) or off (False). Default: on when stderr is a
        terminal, so logs of scheduled jobs stay free of bar redraws.
    unit, desc : str, optional
        What is counted, and the bar's label.
    total : int, optional
        Items expected, when known (a streamed window's batch count often is not).

    Examples
    --------
    >>> list(progress_bar(range(3), enabled=False))
    [0, 1, 2]
    """
    from tqdm.auto import tqdm

    disable = (not _stderr_is_terminal()) if enabled is None else not enabled
    with tqdm(iterable, total=total, unit=unit, desc=desc, disable=disable, file=sys.stderr) as bar:
        yield from bar


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False
