"""What every recommender provides: final user/item embeddings scored by inner product."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Recommender(nn.Module):
    """Subclasses own `user_embedding` and `item_embedding` (E⁰) and implement `forward`."""

    user_embedding: nn.Embedding
    item_embedding: nn.Embedding

    def __init__(self, num_users: int, num_items: int, embedding_dim: int, init_std: float = 0.1):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)

    def forward(self) -> tuple[Tensor, Tensor]:
        """Final embeddings of all users and all items."""
        raise NotImplementedError

    def ego_embeddings(self) -> Tensor:
        """E⁰ of users then items, one (U+I, d) tensor."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def split(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        return nodes[: self.num_users], nodes[self.num_users :]
