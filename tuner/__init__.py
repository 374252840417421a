"""tuner: hyperparameter tuning for graph-neural-network recommenders."""

__version__ = "0.1.0"
