"""GAT training epochs on ML-100K: tuner's sparse-product attention against PyG's GATConv, side by side.

Run by hand:  python benchmarks/speed_gat.py --data-dir ../shared/data [--threads 1] [--epochs 2] [--device cpu]

Both models are built from the same seed (the same initial weights: GraphAttention initialises as GATConv does)
and trained on the same batches with the same dropout masks, so the per-epoch losses must agree to float
tolerance; the script prints them and fails if they do not. The configuration is search_spaces/gat.yaml's
largest: 64-dim, 2 layers, 2 heads, dropout 0.1, batch 2048, one triple per training edge.
Prints a table and writes benchmarks/results/speed_gat.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch_geometric.nn import GATConv

from tuner.recsys.data import DatasetSpec, prepare
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.models.gat import GAT
from tuner.recsys.models.graph import bipartite_edge_index
from tuner.recsys.training import Trainer, build_model_for


def _with_gatconv(model: GAT, train: torch.Tensor, heads: int, dropout: float) -> GAT:
    """`model` with each attention layer replaced by a GATConv holding the same weights."""
    dim = model.user_embedding.embedding_dim
    layers = []
    for ours in model.convs:
        reference = GATConv(dim, dim, heads=heads, concat=False, dropout=dropout)
        reference.load_state_dict(ours.state_dict())  # the same parameter names
        layers.append(reference)
    model.convs = torch.nn.ModuleList(layers)
    del model.graph
    model.register_buffer("graph", bipartite_edge_index(train, model.num_users), persistent=False)  # GATConv adds the loops
    return model


def _epochs(trainer: Trainer, epochs: int) -> tuple[list[float], list[float]]:
    seconds, losses = [], []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        result = trainer._train_epoch(epoch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        losses.append(result.loss)
    return seconds, losses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed_gat.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = prepare(DatasetSpec(name="movielens-100k", rating_threshold=None,
                               split={"kind": "random", "test": 0.2, "val": 0.1, "seed": 0}), data_dir=args.data_dir)
    hp = Hyperparameters(embedding_dim=64, num_layers=2, heads=2, dropout=0.1, batch_size=2048, lr=0.005,
                         weight_decay=1e-4, epochs=args.epochs, eval_every=10**6, k=[20])
    train = torch.from_numpy(data.train)
    runs = {}
    for name in ("gatconv", "tuner"):
        model = build_model_for("gat", data, hp, train)
        if name == "gatconv":
            model = _with_gatconv(model, train, hp.heads, hp.dropout)
        seconds, losses = _epochs(Trainer(model, data, hp, args.device), args.epochs)
        runs[name] = {"epoch_seconds": seconds, "losses": losses}
        print(f"{name:8s} epoch seconds {', '.join(f'{s:.2f}' for s in seconds)}   losses {losses}")

    same = all(abs(a - b) <= 1e-4 * abs(a) for a, b in zip(runs["gatconv"]["losses"], runs["tuner"]["losses"]))
    ratio = min(runs["gatconv"]["epoch_seconds"]) / min(runs["tuner"]["epoch_seconds"])
    print(f"speed-up (fastest epoch of each): {ratio:.1f}x   losses agree to 1e-4 relative: {same}")
    result = {"machine": f"{platform.node()} {torch.get_num_threads()} threads, {args.device}", "dataset": data.summary(),
              "config": hp.model_dump(), "runs": runs, "speedup": ratio, "losses_agree": same}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    if not same:
        raise SystemExit("the two implementations' losses differ")


if __name__ == "__main__":
    main()
