"""The entry points of the flavor's helper processes.

A helper process (the roller process of :mod:`mlflow_observe.plugins.log_roller`,
the attribution process of :mod:`mlflow_observe.plugins.attribution_process`) loads the wrapped model again
through the flavor, and the flavor starts it: its entry point therefore sits
above both. The flavor names this module in the child's command and never
imports it.
"""

from __future__ import annotations

from mlflow_observe.plugins import attribution_process, log_roller
from mlflow_observe.plugins.flavor import load_probabilities, load_serving_explainer


def roller_main(argv=None) -> int:
    """The roller process: roll the spool segments its writer hands over."""
    return log_roller.main(argv, load_probabilities)


def attribution_main(argv=None) -> int:
    """The attribution process: explain the sampled calls its server hands over."""
    return attribution_process.main(argv, load_serving_explainer)
