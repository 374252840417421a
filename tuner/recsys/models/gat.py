"""A bipartite graph-attention encoder with an inner-product decoder.

Layer: x ← ReLU( mean over heads of GATConv(x) + W_res x ); no ReLU after the last layer, so that inner
products can be negative. Attention runs over the user-item graph in both directions, with self-loops. The layers
are `GraphAttention`: GATConv's numbers computed with sparse products (attention.py says why).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from tuner.recsys.models.attention import AttentionGraph, GraphAttention
from tuner.recsys.models.base import Dropout, EmbeddingDim, Recommender
from tuner.recsys.models.graph import bipartite_edge_index


class GAT(Recommender):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        train: Tensor,
        embedding_dim: EmbeddingDim = 64,
        num_layers: Annotated[int, Field(ge=1, le=16)] = 3,
        heads: Annotated[int, Field(ge=1, le=64)] = 2,
        dropout: Dropout = 0.1,
    ):
        super().__init__(num_users, num_items, embedding_dim)
        self.convs = nn.ModuleList(GraphAttention(embedding_dim, heads, dropout) for _ in range(num_layers))
        self.residuals = nn.ModuleList(nn.Linear(embedding_dim, embedding_dim, bias=False) for _ in range(num_layers))
        self.graph = AttentionGraph(bipartite_edge_index(train, num_users), num_users + num_items)

    def forward(self) -> tuple[Tensor, Tensor]:
        x = self.ego_embeddings()
        for layer, (conv, residual) in enumerate(zip(self.convs, self.residuals)):
            x = conv(x, self.graph) + residual(x)
            if layer < len(self.convs) - 1:
                x = x.relu()
        return self.split(x)
