"""Engines: where the rows of a window or a reference are counted.

The pandas engine is :meth:`~mlflow_observe.core.profile.data_profile.DataProfile.update`
itself (in chunks, from DataFrames or Arrow record batches). The Spark engine
(:mod:`mlflow_observe.engines.spark`, extra ``spark``) counts a Spark DataFrame
on the cluster into the same profile.
"""


def is_spark_dataframe(data) -> bool:
    """True for a Spark DataFrame (classic or Spark Connect), without importing pyspark.

    >>> import pandas as pd
    >>> is_spark_dataframe(pd.DataFrame())
    False
    """
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.")
        for cls in type(data).__mro__
    )
