"""Names every layer shares, with no heavy imports: metrics, splits and models (so that reading a spec needs
neither torch nor pandas)."""

METRICS = ("precision", "recall", "ndcg", "hit")
SPLITS = ("train", "val", "test")
MODEL_NAMES = ("mf", "lightgcn", "ngcf", "gat")
