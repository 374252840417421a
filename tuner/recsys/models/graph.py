"""The user-item graph as the models see it: symmetric-normalised adjacency and a fast propagation."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def bipartite_edge_index(train: Tensor, num_users: int) -> Tensor:
    """(2, 2E) edge index over users [0, U) and items [U, U+I), both directions."""
    users, items = train[0], train[1] + num_users
    return torch.stack([torch.cat([users, items]), torch.cat([items, users])])


def normalized_adjacency(train: Tensor, num_users: int, num_items: int) -> Tensor:
    """Â = D^-1/2 A D^-1/2 of the bipartite graph A = [[0, R], [Rᵀ, 0]] as a sparse CSR tensor.

    Nodes without edges get zero rows and columns.
    """
    n = num_users + num_items
    rows, cols = bipartite_edge_index(train, num_users)
    degree = torch.bincount(rows, minlength=n).to(torch.float32)
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt[degree == 0] = 0.0
    values = inv_sqrt[rows] * inv_sqrt[cols]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n), check_invariants=True).coalesce()
        csr = coo.to_sparse_csr()
        index_dtype = torch.int32 if csr._nnz() < 2**31 else torch.int64  # int32: ~10 % faster products on CPU
        return torch.sparse_csr_tensor(
            csr.crow_indices().to(index_dtype),
            csr.col_indices().to(index_dtype),
            csr.values(),
            (n, n),
            check_invariants=False,  # built from a coalesced COO tensor above
        )


class _SymmetricSpMM(torch.autograd.Function):
    """y = Â x for a symmetric Â: the gradient Âᵀ g equals Â g, so backward reuses the same CSR product
    instead of PyTorch's generic sparse backward (which transposes Â on every call)."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, x: Tensor) -> Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, ctx.adjacency @ grad


def propagate(adjacency: Tensor, x: Tensor) -> Tensor:
    """Â x with a symmetric Â (see _SymmetricSpMM)."""
    return _SymmetricSpMM.apply(adjacency, x)


class _PowerSum(torch.autograd.Function):
    """Σₖ₌₀..K Âᵏ x for a symmetric Â by Horner's rule, y ← x + Â y applied K times: each step is one sparse
    `addmm`, so no layer's output is kept or added separately (each separate add of a Gowalla-sized table costs as
    much as a third of an SpMM on CPU). The gradient Σₖ Âᵏ g is the same recurrence."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, x: Tensor, layers: int) -> Tensor:
        ctx.adjacency, ctx.layers = adjacency, layers
        return _horner(adjacency, x, layers)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, _horner(ctx.adjacency, grad, ctx.layers), None


def _horner(adjacency: Tensor, x: Tensor, layers: int) -> Tensor:
    y = x.clone() if layers == 0 else x
    for _ in range(layers):
        y = torch.addmm(x, adjacency, y)
    return y


def power_sum(adjacency: Tensor, x: Tensor, layers: int) -> Tensor:
    """x + Â x + Â² x + ... + Â^layers x, for a symmetric Â (LightGCN's propagation, before the mean)."""
    return _PowerSum.apply(adjacency, x, layers)
