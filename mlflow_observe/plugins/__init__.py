"""MLflow plugin points other than evaluators.

The evaluators are registered under ``mlflow.model_evaluator`` (see
``setup.cfg``); the model-flavor wrapper that records a baseline with the model
and logs served predictions belongs here.
"""
