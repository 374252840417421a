"""Tuning with Ray Tune + Optuna: the search, the trainable, `tuner run`, Ray's session and the cluster client.
The only package that imports Ray."""
