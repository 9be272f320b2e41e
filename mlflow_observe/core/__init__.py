"""The functional core: profiles, statistics, decisions and integrity checks.

Nothing under ``mlflow_observe.core`` imports MLflow, Spark, alibi-detect or any
other part of the package: everything here takes numpy/pandas data (or profiles
built from it) and returns plain results, so the same code serves the MLflow
evaluators, the CLI and every engine that can fill a profile with counts.

By family:

* :mod:`~mlflow_observe.core.stats`: one statistic, one function, a result object.
* :mod:`~mlflow_observe.core.profile`: column kinds, per-column counts in the
  reference's bins, the :class:`~mlflow_observe.core.profile.data_profile.DataProfile`,
  feature impact measured at baseline time.
* :mod:`~mlflow_observe.core.drift`: options and univariate decisions, integrity,
  multivariate detectors, segments, root cause, and a counted window's comparison.
* :mod:`~mlflow_observe.core.performance`: realised metrics, estimation (CBPE, DLE),
  degradation against the baseline, streamed counting.
* Shared helpers: :mod:`~mlflow_observe.core.sample` (a mergeable row sample),
  :mod:`~mlflow_observe.core.naming` (metric-safe names),
  :mod:`~mlflow_observe.core.progress`, and the private ``_validation`` and ``_parallel``.
"""
