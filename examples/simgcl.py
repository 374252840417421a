"""SimGCL (Yu et al., "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for Recommendation",
SIGIR 2022), written as a tuner user writes their own model.

LightGCN's propagation without E⁰ in the layer mean; for the contrastive views, uniform noise of length `eps` is
added to every layer's embeddings, keeping each coordinate's sign. The model's own loss is InfoNCE between two noisy
views of the batch's users and of its items, weighted by `cl_weight` and added to BPR.

Tune it:  tuner run examples/simgcl.yaml   (its `model: simgcl:SimGCL` is found in this file's folder)
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from tuner import Recommender
from tuner.recsys.models.graph import propagate  # Â x for the symmetric normalised adjacency, with a cheap backward


class SimGCL(Recommender):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        adjacency: Tensor,  # asked for by name: tuner builds it once per worker
        embedding_dim: Annotated[int, Field(ge=1, le=4096)] = 64,
        num_layers: Annotated[int, Field(ge=1, le=8)] = 2,
        eps: Annotated[float, Field(gt=0)] = 0.1,  # length of the noise added to each layer's embeddings
        temperature: Annotated[float, Field(gt=0)] = 0.2,  # InfoNCE's τ
        cl_weight: Annotated[float, Field(ge=0)] = 0.5,  # λ: the contrastive loss's weight against BPR
    ):
        super().__init__(num_users, num_items, embedding_dim)
        self.num_layers, self.eps, self.temperature, self.cl_weight = num_layers, eps, temperature, cl_weight
        self.register_buffer("adjacency", adjacency, persistent=False)

    def encode(self, perturbed: bool) -> tuple[Tensor, Tensor]:
        x, layers = self.ego_embeddings(), []
        for _ in range(self.num_layers):
            x = propagate(self.get_buffer("adjacency"), x)
            if perturbed:
                x = x + torch.sign(x) * F.normalize(torch.rand_like(x), dim=1) * self.eps
            layers.append(x)
        return self.split(torch.stack(layers).mean(dim=0))

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.encode(perturbed=False)

    def auxiliary_loss(self, users: Tensor, positives: Tensor, negatives: Tensor, user_embeddings: Tensor,
                       item_embeddings: Tensor) -> Tensor:
        (users_a, items_a), (users_b, items_b) = self.encode(perturbed=True), self.encode(perturbed=True)
        u, i = users.unique(), positives.unique()
        contrast = info_nce(users_a[u], users_b[u], self.temperature) + info_nce(items_a[i], items_b[i], self.temperature)
        return self.cl_weight * contrast


def info_nce(view_a: Tensor, view_b: Tensor, temperature: float) -> Tensor:
    """Each row of `view_a` should match the same row of `view_b` against every other row."""
    logits = F.normalize(view_a, dim=1) @ F.normalize(view_b, dim=1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))
