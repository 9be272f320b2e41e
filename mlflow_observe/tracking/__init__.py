"""MLflow tracking adapters: where baselines are stored and how they are found again."""
