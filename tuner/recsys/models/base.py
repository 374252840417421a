"""The contract every model keeps, built-in or a user's: `tuner.Recommender`.

A model is a `Recommender` subclass whose constructor takes, by name:
- `num_users`, `num_items`;
- the graph inputs it wants: `train` (the training edges, a (2, E) int64 tensor [user; item]) and `adjacency` (their
  symmetric-normalised (U+I, U+I) adjacency, a sparse CSR tensor, built once per worker and shared by its trials);
- its own hyperparameters, as keyword parameters with a type annotation and a default
  (`num_layers: int = 3`, `temperature: Annotated[float, Field(gt=0)] = 0.2`): they become names a spec may fix or
  search, checked against the annotation.

`forward()` returns the final embeddings of every user and every item, (num_users, d) and (num_items, d) float
tensors, scored by inner product. The base class owns E⁰ (`user_embedding`, `item_embedding`), which the
`embedding_l2` regulariser penalises; `auxiliary_loss` may add the model's own term to BPR (a contrastive loss).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

# The built-in models' shared hyperparameter types (a user's model may use them too).
EmbeddingDim = Annotated[int, Field(ge=1, le=4096)]
Layers = Annotated[int, Field(ge=0, le=16)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


class Recommender(nn.Module):
    """Subclasses call `super().__init__(num_users, num_items, embedding_dim)` and implement `forward`."""

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

    def auxiliary_loss(self, users: Tensor, positives: Tensor, negatives: Tensor, user_embeddings: Tensor,
                       item_embeddings: Tensor) -> Tensor | None:
        """A term added to the batch's BPR loss, or None (the default: BPR alone). Gets the batch's (user,
        positive, negative) indices and this step's `forward()` output; returns a scalar tensor."""
        return None

    def ego_embeddings(self) -> Tensor:
        """E⁰ of users then items, one (U+I, d) tensor."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])

    def split(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        return nodes[: self.num_users], nodes[self.num_users :]
