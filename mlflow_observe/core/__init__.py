"""The functional core: profiles, statistics, decisions and integrity checks.

Nothing under ``mlflow_observe.core`` imports MLflow. Everything here takes
numpy/pandas data (or profiles built from it) and returns plain results, so the
same code serves the MLflow evaluators, the CLI and any other engine that can
fill a profile with counts.
"""
