"""The roller process of a served model (its command: :func:`roller_command`).

Started by the prediction log writer of a serving process (see
:mod:`mlflow_observe.logs.roller`), one per writer: it sets its own
scheduling priority lower (niceness ``ROLLER_NICENESS``), loads the wrapped
model from its local directory with prediction logging off, builds the same
class-probabilities callable the flavor gives the roller thread, and rolls the
spool segments the writer hands it on its standard input until that closes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys

from mlflow_observe.logs.roller import defer_stop_signals, serve_rolls
from mlflow_observe.logs.writer import (
    ROLLER_NICENESS,
    STOP_SECONDS,
    ProbabilityEnricher,
    no_prediction_logs,
)

_logger = logging.getLogger(__name__)
ENTRY_MODULE = "mlflow_observe.plugins.processes"

# The variables that would make the loaded model log or explain its own calls.
_SERVING_ONLY_ENV = ("MLFLOW_OBSERVE_LOG_DIR", "MLFLOW_OBSERVE_EXPLAIN_RATE")


def roller_command(model_dir: str) -> list[str]:
    """The command that runs a roller process for the wrapped model saved in ``model_dir``.

    The serving process's ``sys.path`` goes along: a model pickled with
    classes importable there (MLflow adds a model's code paths) loads alike.

    >>> roller_command("/models/churn")[3]
    '/models/churn'
    """
    # -c, not -m: the package imports this module, which -m would then run a second time.
    # The entry point loads the model through the flavor, which imports this module: it
    # lives above both (see mlflow_observe.plugins.processes).
    # A stop signal during the imports is ignored (the writer's channel closing ends the
    # process then); from main() on it starts the bounded stop.
    main = (
        "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); "
        f"from {ENTRY_MODULE} import roller_main; sys.exit(roller_main())"
    )
    return [sys.executable, "-c", main, os.fspath(model_dir), json.dumps(sys.path)]


def main(argv, load_probabilities) -> int:
    """The roller process: roll the segments handed over on its standard input.

    ``load_probabilities(model_dir)`` gives the class-probabilities callable of the
    wrapped model saved there, or None (the flavor's
    :func:`~mlflow_observe.plugins.flavor.load_probabilities`).
    """
    # First, before any thread starts: the threads it starts inherit the niceness.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, ROLLER_NICENESS)
    # A stop signal while the model loads starts the bounded stop too.
    defer_stop_signals(STOP_SECONDS)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1:
        sys.path[:] = json.loads(argv[1]) + [p for p in sys.path if p not in json.loads(argv[1])]
    channel = socket.socket(fileno=os.dup(0))
    for name in _SERVING_ONLY_ENV:
        os.environ.pop(name, None)
    with no_prediction_logs():
        probabilities = load_probabilities(argv[0])

    def enrich_for(identity: bytes):
        warned: set[str] = set()

        def warn(kind, message, *args):
            if kind not in warned:
                warned.add(kind)
                _logger.warning(message, *args)

        return ProbabilityEnricher(probabilities, identity, warn=warn)

    with no_prediction_logs():
        return serve_rolls(channel, enrich_for, probabilities=probabilities is not None)
