"""models: LightFM with item features trained on botify event logs, tuned with Optuna, exported to botify."""
