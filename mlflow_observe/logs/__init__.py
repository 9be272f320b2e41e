"""Production prediction logs: Parquet files written off the request path, read by time window.

No MLflow imports here: the flavor in ``mlflow_observe.plugins`` feeds the writer.
"""
