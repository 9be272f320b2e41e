"""Time windows: durations like ``1h`` and the aligned windows that cover a time range.

Windows are half-open, ``[start, end)``, and aligned to multiples of their
width counted from an origin (the Unix epoch unless given), so the same hour
is the same window whichever run of the monitor looks at it, and a row stamped
exactly on a boundary belongs to the window that starts there, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_EPOCH = pd.Timestamp(0, tz="UTC")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)


class WindowError(ValueError):
    """A duration or a time range that cannot be split into windows."""


def parse_duration(text) -> pd.Timedelta:
    """Parse ``1h``, ``30m``, ``1d``, ``2h30m``, ``1w``, ``90s`` (or a Timedelta).

    >>> parse_duration("1h")
    Timedelta('0 days 01:00:00')
    >>> parse_duration("2h30m").total_seconds()
    9000.0
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    mlflow_observe.monitoring.windows.WindowError: Cannot read the duration 'soon': use a number and a unit (w, d, h, m, s), e.g. '1h', '30m', '1d' or '2h30m'.
    """  # noqa: E501
    if isinstance(text, pd.Timedelta):
        duration = text
    else:
        spec = str(text).strip().replace(" ", "")
        parts = _DURATION.findall(spec)
        if not parts or "".join(n + u for n, u in parts).lower() != spec.lower():
            raise WindowError(
                f"Cannot read the duration {text!r}: use a number and a unit (w, d, h, m, s), "
                "e.g. '1h', '30m', '1d' or '2h30m'."
            )
        duration = sum(
            (pd.Timedelta(**{_UNITS[u.lower()]: float(n)}) for n, u in parts), pd.Timedelta(0)
        )
    if duration <= pd.Timedelta(0):
        raise WindowError(f"A window must last longer than zero; got {text!r}.")
    return duration


def format_duration(duration: pd.Timedelta) -> str:
    """The shortest ``parse_duration`` spelling of a duration.

    >>> format_duration(pd.Timedelta(hours=1)), format_duration(pd.Timedelta(minutes=90))
    ('1h', '1h30m')
    """
    seconds = int(duration.total_seconds())
    text = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text or f"{duration.total_seconds()}s"


def as_utc(value) -> pd.Timestamp:
    """A timestamp in UTC (naive values are taken as UTC).

    >>> as_utc("2026-11-27 13:00")
    Timestamp('2026-11-27 13:00:00+0000', tz='UTC')
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise WindowError(f"{value!r} is not a date or time.") from exc
    if stamp is pd.NaT:
        raise WindowError(f"{value!r} is not a date or time.")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass(frozen=True)
class Window:
    """One window ``[start, end)``; ``index`` counts windows from the origin."""

    index: int
    start: pd.Timestamp
    end: pd.Timestamp

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%d %H:%M:%S}, {self.end:%Y-%m-%d %H:%M:%S}) UTC"


def window_at(moment, width: pd.Timedelta, *, origin=None) -> Window:
    """The window that holds ``moment``.

    >>> w = window_at("2026-11-27 13:59:59", pd.Timedelta(hours=1))
    >>> str(w)
    '[2026-11-27 13:00:00, 2026-11-27 14:00:00) UTC'
    >>> window_at("2026-11-27 14:00:00", pd.Timedelta(hours=1)).start.hour  # on a boundary
    14
    """
    origin = _EPOCH if origin is None else as_utc(origin)
    index = (as_utc(moment) - origin) // width
    start = origin + index * width
    return Window(index=int(index), start=start, end=start + width)


def split_windows(start, end, width: pd.Timedelta, *, origin=None) -> list[Window]:
    """The complete aligned windows that lie inside ``[start, end)``.

    ``start`` is rounded up to the next boundary and ``end`` down, so a window
    that is still filling (or only partly asked for) is left out.

    >>> windows = split_windows("2026-11-27 00:30", "2026-11-27 03:10", pd.Timedelta(hours=1))
    >>> for window in windows:
    ...     print(window)
    [2026-11-27 01:00:00, 2026-11-27 02:00:00) UTC
    [2026-11-27 02:00:00, 2026-11-27 03:00:00) UTC
    """
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        raise WindowError(f"The range start {start} is not before its end {end}.")
    first = window_at(start, width, origin=origin)
    if first.start < start:
        first = window_at(first.end, width, origin=origin)
    windows = []
    current = first
    while current.end <= end:
        windows.append(current)
        current = Window(index=current.index + 1, start=current.end, end=current.end + width)
    return windows
