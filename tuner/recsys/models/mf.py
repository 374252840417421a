"""Matrix factorisation: the free embeddings themselves, scored by inner product."""

from __future__ import annotations

from torch import Tensor

from tuner.recsys.models.base import EmbeddingDim, Recommender


class MF(Recommender):
    def __init__(self, num_users: int, num_items: int, embedding_dim: EmbeddingDim = 64):
        super().__init__(num_users, num_items, embedding_dim)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight
