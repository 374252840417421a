"""NGCF (Wang et al., 2019).

Layer l: e_u ← LeakyReLU( W1 (e_u + Σᵢ âᵤᵢ eᵢ) + W2 (e_u ⊙ Σᵢ âᵤᵢ eᵢ) ), message dropout, L2-normalised;
the final embedding concatenates E⁰ and every layer's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tuner.recsys.models.base import Dropout, EmbeddingDim, Layers, Recommender
from tuner.recsys.models.graph import propagate


class NGCF(Recommender):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        adjacency: Tensor,
        embedding_dim: EmbeddingDim = 64,
        num_layers: Layers = 3,
        dropout: Dropout = 0.1,
    ):
        super().__init__(num_users, num_items, embedding_dim)
        self.dropout = dropout
        self.w1 = nn.ModuleList(nn.Linear(embedding_dim, embedding_dim) for _ in range(num_layers))
        self.w2 = nn.ModuleList(nn.Linear(embedding_dim, embedding_dim) for _ in range(num_layers))
        for layer in [*self.w1, *self.w2]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.register_buffer("adjacency", adjacency, persistent=False)

    def forward(self) -> tuple[Tensor, Tensor]:
        x = self.ego_embeddings()
        outputs = [x]
        for w1, w2 in zip(self.w1, self.w2):
            neighbours = propagate(self.get_buffer("adjacency"), x)
            x = F.leaky_relu(w1(x + neighbours) + w2(x * neighbours), negative_slope=0.2)
            x = F.dropout(x, p=self.dropout, training=self.training)
            outputs.append(F.normalize(x, dim=1))
        return self.split(torch.cat(outputs, dim=1))
