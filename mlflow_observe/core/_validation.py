"""Parameter checks worded like scikit-learn's, driven by one constraints dict per callable."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any


class Interval:
    """A numeric range constraint: ``Interval(int, 2, None)`` means an int >= 2."""

    def __init__(self, type_, low, high, *, closed="both"):
        self.type_ = type_
        self.low = low
        self.high = high
        self.closed = closed

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, bool):
            return False
        if self.type_ is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real):
            return False
        low_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        high_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return low_ok and high_ok

    def __str__(self) -> str:
        kind = "an int" if self.type_ is int else "a float"
        parts = []
        if self.low is not None:
            parts.append((">= " if self.closed in ("both", "left") else "> ") + str(self.low))
        if self.high is not None:
            parts.append(("<= " if self.closed in ("both", "right") else "< ") + str(self.high))
        return f"{kind} " + " and ".join(parts) if parts else kind


class Options:
    """A constraint that the value is one of a fixed set of strings."""

    def __init__(self, *values):
        self.values = values

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class InstanceOf:
    """A constraint that the value is an instance of one of the given types."""

    def __init__(self, *types, description: str | None = None):
        self.types = types
        self.description = description

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        if self.description:
            return self.description
        return "an instance of " + " or ".join(t.__name__ for t in self.types)


class NoneValue:
    def is_satisfied_by(self, value) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


def validate_params(constraints: dict[str, list[Any]], params: dict[str, Any], caller: str) -> None:
    """Raise a ValueError naming the first parameter that meets none of its constraints.

    >>> validate_params({"n_bins": [Interval(int, 2, None)]}, {"n_bins": 1}, "build_profile")
    Traceback (most recent call last):
    ...
    ValueError: The 'n_bins' parameter of build_profile must be an int >= 2. Got 1 instead.
    """
    for name, options in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(option.is_satisfied_by(value) for option in options):
            continue
        wanted = " or ".join(str(option) for option in options)
        raise ValueError(
            f"The {name!r} parameter of {caller} must be {wanted}. Got {value!r} instead."
        )


def checked(constraints: dict[str, list[Any]]) -> Callable:
    """Decorator form of :func:`validate_params` for keyword parameters."""
    import functools
    import inspect

    def decorator(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            validate_params(constraints, bound.arguments, func.__name__)
            return func(*args, **kwargs)

        # Kept on the function, as scikit-learn's validate_params does.
        wrapper._parameter_constraints = constraints  # type: ignore[attr-defined]
        return wrapper

    return decorator
