"""Names every layer shares, with no heavy imports: metrics, splits and models (so that reading a spec needs
neither torch nor pandas)."""

METRICS = ("precision", "recall", "ndcg", "hit")
SPLITS = ("train", "val", "test")
# the hyperparameters each model's constructor takes (tests/test_models.py keeps this true); the training ones
# (lr, weight_decay, samples_per_user, ...) apply to every model
MODEL_HYPERPARAMETERS = {
    "mf": ("embedding_dim",),
    "lightgcn": ("embedding_dim", "num_layers"),
    "ngcf": ("embedding_dim", "num_layers", "dropout"),
    "gat": ("embedding_dim", "num_layers", "heads", "dropout"),
}
MODEL_NAMES = tuple(MODEL_HYPERPARAMETERS)
