"""LightGCN (He et al., 2020): E = 1/(K+1) · Σₖ Âᵏ E⁰, no weights, no non-linearity."""

from __future__ import annotations

from torch import Tensor

from tuner.recsys.models.base import EmbeddingDim, Layers, Recommender
from tuner.recsys.models.graph import power_sum


class LightGCN(Recommender):
    def __init__(self, num_users: int, num_items: int, adjacency: Tensor, embedding_dim: EmbeddingDim = 64,
                 num_layers: Layers = 3):
        super().__init__(num_users, num_items, embedding_dim)
        self.num_layers = num_layers
        self.register_buffer("adjacency", adjacency, persistent=False)

    def forward(self) -> tuple[Tensor, Tensor]:
        total = power_sum(self.get_buffer("adjacency"), self.ego_embeddings(), self.num_layers)
        return self.split(total / (self.num_layers + 1))
