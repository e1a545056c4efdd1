"""Model training for setup outcomes (FEATURES.md §6): split, sweep, register, serve.

Modules stay importable without Spark: they read the Gold stage's frozen training
snapshot (``ml/artifacts/datasets/{model_id}/{run_date}/``) with pandas.
"""
