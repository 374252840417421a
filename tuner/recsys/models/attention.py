"""Graph attention over a fixed graph, computed with sparse products: PyG's GATConv(heads=H, concat=False) numbers
without its (edges × heads × dim) message tensors.

GATConv gathers every edge's source features, scales them by the attention and scatters them back: several passes
over E·H·D floats forward and backward (ML-100K, 2 heads: 0.46 s per training step at 1 thread, half of it in one
multiply). Here the attention-weighted sum is one CSR × dense product per head; its gradient is the transposed
product for the features and a sampled dense-dense product (SDDMM) for the attention. The attention itself (scores,
softmax over each node's incoming edges, dropout) is computed as GATConv does, on the edges in GATConv's order, so
the same seed draws the same dropout masks and the same initial weights.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _csr(crow: Tensor, col: Tensor, values: Tensor, n: int) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)  # built by AttentionGraph


def _row_pointers(rows: Tensor, n: int) -> Tensor:
    crow = torch.zeros(n + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    return crow


class AttentionGraph(nn.Module):
    """The edges attention runs over, src → dst, with a self-loop per node appended (as GATConv adds them), and the
    CSR layouts of the attention matrix A[dst, src] and of its transpose. Buffers, so `.to(device)` moves them."""

    def __init__(self, edge_index: Tensor, num_nodes: int):
        super().__init__()
        n = num_nodes
        keep = edge_index[0] != edge_index[1]  # GATConv removes existing self-loops before adding one per node
        loops = torch.arange(n)
        src = torch.cat([edge_index[0][keep], loops])
        dst = torch.cat([edge_index[1][keep], loops])
        by_dst = torch.argsort(dst * n + src)  # CSR order of A (rows = dst)
        by_src = torch.argsort(src * n + dst)  # CSR order of Aᵀ (rows = src)
        index_dtype = torch.int32 if src.numel() < 2**31 else torch.int64  # int32: faster sparse products on CPU
        self.num_nodes = n
        for name, value in {
            "src": src, "dst": dst, "by_dst": by_dst, "by_src": by_src,
            "crow": _row_pointers(dst, n).to(index_dtype), "col": src[by_dst].to(index_dtype),
            "crow_t": _row_pointers(src, n).to(index_dtype), "col_t": dst[by_src].to(index_dtype),
        }.items():
            self.register_buffer(name, value, persistent=False)

    def matrix(self, values: Tensor) -> Tensor:
        """A with `values` given in edge order (one head)."""
        return _csr(self.get_buffer("crow"), self.get_buffer("col"), values[self.get_buffer("by_dst")], self.num_nodes)

    def transposed(self, values: Tensor) -> Tensor:
        return _csr(self.get_buffer("crow_t"), self.get_buffer("col_t"), values[self.get_buffer("by_src")], self.num_nodes)

    def pattern(self, values: Tensor) -> Tensor:
        """A's sparsity pattern (for the SDDMM), values in CSR order."""
        return _csr(self.get_buffer("crow"), self.get_buffer("col"), values, self.num_nodes)


class _Attend(torch.autograd.Function):
    """out[:, k] = A_k h[:, k] for each head k, A_k the attention matrix with values alpha[:, k] (edge order)."""

    @staticmethod
    def forward(ctx, graph: AttentionGraph, alpha: Tensor, h: Tensor) -> Tensor:
        ctx.graph = graph
        ctx.save_for_backward(alpha, h)
        return torch.stack([graph.matrix(alpha[:, k]) @ h[:, k].contiguous() for k in range(h.size(1))], dim=1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        graph: AttentionGraph = ctx.graph
        alpha, h = ctx.saved_tensors
        grad_alpha = grad_h = None
        heads = range(h.size(1))
        if ctx.needs_input_grad[1]:  # d out[i] / d A[i, j] = grad[i] · h[j], only where A has an edge
            zeros = torch.zeros(alpha.size(0), dtype=alpha.dtype, device=alpha.device)
            in_csr_order = torch.stack([
                torch.sparse.sampled_addmm(
                    graph.pattern(zeros), grad[:, k].contiguous(), h[:, k].t().contiguous(), beta=0.0
                ).values()
                for k in heads
            ], dim=1)
            grad_alpha = torch.empty_like(in_csr_order)
            grad_alpha[graph.get_buffer("by_dst")] = in_csr_order
        if ctx.needs_input_grad[2]:
            grad_h = torch.stack([graph.transposed(alpha[:, k]) @ grad[:, k].contiguous() for k in heads], dim=1)
        return None, grad_alpha, grad_h


class GraphAttention(nn.Module):
    """One GATConv(dim, dim, heads, concat=False, dropout) layer: the same parameters (names, shapes, initialisation
    order), the same attention, the heads averaged, plus a bias."""

    def __init__(self, dim: int, heads: int, dropout: float, negative_slope: float = 0.2):
        from torch_geometric.nn import Linear

        super().__init__()
        self.heads, self.dim, self.dropout, self.negative_slope = heads, dim, dropout, negative_slope
        self.lin = Linear(dim, heads * dim, bias=False, weight_initializer="glorot")
        self.att_src = nn.Parameter(torch.empty(1, heads, dim))
        self.att_dst = nn.Parameter(torch.empty(1, heads, dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GATConv's initialisation, in its order (its Linear is initialised when built and again here)."""
        from torch_geometric.nn.inits import glorot

        self.lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: AttentionGraph) -> Tensor:
        from torch_geometric.utils import softmax

        h = self.lin(x).view(-1, self.heads, self.dim)
        score_src = (h * self.att_src).sum(dim=-1)
        score_dst = (h * self.att_dst).sum(dim=-1)
        src, dst = graph.get_buffer("src"), graph.get_buffer("dst")
        scores = F.leaky_relu(score_src[src] + score_dst[dst], self.negative_slope)
        alpha = softmax(scores, dst, num_nodes=graph.num_nodes)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        return _Attend.apply(graph, alpha, h).mean(dim=1) + self.bias
