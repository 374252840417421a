"""A bipartite graph-attention encoder (PyG GATConv) with an inner-product decoder.

Layer: x ← ReLU( mean over heads of GATConv(x) + W_res x ); no ReLU after the last layer, so that inner
products can be negative. Attention runs over the user-item graph in both directions, with self-loops.
"""

from __future__ import annotations

from torch import Tensor, nn

from tuner.recsys.models.base import Recommender
from tuner.recsys.models.graph import bipartite_edge_index


class GAT(Recommender):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        train: Tensor,
        embedding_dim: int = 64,
        num_layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
    ):
        from torch_geometric.nn import GATConv  # imported here: PyG takes seconds to import, only GAT needs it

        super().__init__(num_users, num_items, embedding_dim)
        self.convs = nn.ModuleList(
            GATConv(embedding_dim, embedding_dim, heads=heads, concat=False, dropout=dropout)
            for _ in range(num_layers)
        )
        self.residuals = nn.ModuleList(nn.Linear(embedding_dim, embedding_dim, bias=False) for _ in range(num_layers))
        self.register_buffer("edge_index", bipartite_edge_index(train, num_users), persistent=False)

    def forward(self) -> tuple[Tensor, Tensor]:
        x = self.ego_embeddings()
        for layer, (conv, residual) in enumerate(zip(self.convs, self.residuals)):
            x = conv(x, self.edge_index) + residual(x)
            if layer < len(self.convs) - 1:
                x = x.relu()
        return self.split(x)
