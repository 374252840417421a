import pytest
import torch
from torch_geometric.nn import LightGCN as PygLightGCN

from tuner.errors import ModelContractError
from tuner.recsys.models import build_model, hyperparameter_model, model_class
from tuner.recsys.models.graph import bipartite_edge_index, normalized_adjacency, propagate
from tuner.recsys.models.registry import BUILTIN


def _train(num_users=7, num_items=9, n=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    edges = torch.stack([torch.randint(0, num_users, (n,), generator=g), torch.randint(0, num_items, (n,), generator=g)])
    return edges.unique(dim=1)


def _dense_adjacency(train, num_users, num_items):
    n = num_users + num_items
    a = torch.zeros(n, n, dtype=torch.float64)
    a[train[0], train[1] + num_users] = 1
    a[train[1] + num_users, train[0]] = 1
    d = a.sum(1)
    inv = torch.where(d > 0, d.pow(-0.5), torch.zeros_like(d))
    return inv[:, None] * a * inv[None, :]


def test_lightgcn_equals_closed_form_mean_of_adjacency_powers():
    torch.manual_seed(0)
    train = _train()
    model = build_model("lightgcn", 7, 9, train, embedding_dim=5, num_layers=3)
    a = _dense_adjacency(train, 7, 9)
    e0 = model.ego_embeddings().double()
    expected = sum(torch.linalg.matrix_power(a, k) @ e0 for k in range(4)) / 4
    users, items = model()
    assert torch.allclose(torch.cat([users, items]).double(), expected, atol=1e-5)


def test_lightgcn_matches_pyg_lightgcn():
    torch.manual_seed(0)
    train = _train()
    ours = build_model("lightgcn", 7, 9, train, embedding_dim=4, num_layers=2)
    pyg = PygLightGCN(num_nodes=16, embedding_dim=4, num_layers=2)
    with torch.no_grad():
        pyg.embedding.weight.copy_(ours.ego_embeddings())
    users, items = ours()
    expected = pyg.get_embedding(bipartite_edge_index(train, 7))
    assert torch.allclose(torch.cat([users, items]), expected, atol=1e-5)


def test_symmetric_spmm_gradient_equals_dense_gradient():
    train = _train()
    adjacency = normalized_adjacency(train, 7, 9)
    dense = _dense_adjacency(train, 7, 9).float()
    x = torch.randn(16, 3, requires_grad=True)
    weight = torch.randn(16, 3)
    (propagate(adjacency, x) * weight).sum().backward()
    assert torch.allclose(x.grad, dense.T @ weight, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_graph_attention_computes_pyg_gatconv(training):
    """Same seed → same weights, same dropout masks, same outputs and gradients as GATConv(heads=3, concat=False);
    the parameter names match too, so a checkpoint of either loads into the other."""
    from torch_geometric.nn import GATConv

    from tuner.recsys.models.attention import AttentionGraph, GraphAttention

    edge_index = bipartite_edge_index(_train(), 7)  # node 15 has no edge: its only neighbour is itself
    x = torch.randn(16, 4, dtype=torch.float64)
    graph = AttentionGraph(edge_index, 16)
    outputs = []
    for make, run in [
        (lambda: GATConv(4, 4, heads=3, concat=False, dropout=0.4), lambda layer, inputs: layer(inputs, edge_index)),
        (lambda: GraphAttention(4, heads=3, dropout=0.4), lambda layer, inputs: layer(inputs, graph)),
    ]:
        torch.manual_seed(1)
        layer = make().double().train(training)
        inputs = x.clone().requires_grad_()
        torch.manual_seed(2)
        out = run(layer, inputs)
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out).cos()).sum().backward()
        outputs.append((out, inputs.grad, {name: p.grad for name, p in layer.named_parameters()}, layer.state_dict()))
    (pyg_out, pyg_dx, pyg_grads, pyg_state), (out, dx, grads, state) = outputs
    assert state.keys() == pyg_state.keys() and all(torch.equal(state[k], pyg_state[k]) for k in state)
    assert torch.allclose(out, pyg_out, atol=1e-12) and torch.allclose(dx, pyg_dx, atol=1e-12)
    assert all(torch.allclose(grads[name], pyg_grads[name], atol=1e-12) for name in pyg_grads)


def test_power_sum_and_its_gradient_equal_the_dense_sum_of_powers():
    from tuner.recsys.models.graph import power_sum

    train = _train()
    adjacency, dense = normalized_adjacency(train, 7, 9), _dense_adjacency(train, 7, 9)
    powers = sum(torch.linalg.matrix_power(dense, k) for k in range(4))
    x = torch.randn(16, 3, dtype=torch.float64)
    weight = torch.randn(16, 3, dtype=torch.float64)
    inputs = x.float().requires_grad_()
    out = power_sum(adjacency, inputs, 3)
    (out * weight.float()).sum().backward()
    assert torch.allclose(out.double(), powers @ x, atol=1e-5)
    assert torch.allclose(inputs.grad.double(), powers.T @ weight, atol=1e-5)
    assert torch.equal(power_sum(adjacency, x.float(), 0), x.float())


def test_isolated_nodes_get_zero_rows():
    train = torch.tensor([[0], [0]])
    adjacency = normalized_adjacency(train, 2, 2).to_dense()
    assert adjacency[1].abs().sum() == 0 and adjacency[3].abs().sum() == 0
    assert adjacency[0, 2] == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_model_trains_end_to_end(name):
    torch.manual_seed(0)
    model = build_model(name, 7, 9, _train(), embedding_dim=8, num_layers=2, heads=2, dropout=0.0, lr=0.1)
    users, items = model()
    assert users.shape[0] == 7 and items.shape[0] == 9 and users.shape[1] == items.shape[1]
    scores = users @ items.T
    scores.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_ngcf_concatenates_layer_outputs():
    model = build_model("ngcf", 7, 9, _train(), embedding_dim=8, num_layers=3)
    users, _ = model()
    assert users.shape == (7, 8 * 4)


def _hyperparameters(name):
    return list(hyperparameter_model(model_class(name)).model_fields)


def test_each_built_in_model_declares_its_own_hyperparameters_in_its_constructor():
    assert _hyperparameters("mf") == ["embedding_dim"]
    assert _hyperparameters("lightgcn") == ["embedding_dim", "num_layers"]
    assert _hyperparameters("ngcf") == ["embedding_dim", "num_layers", "dropout"]
    assert _hyperparameters("gat") == ["embedding_dim", "num_layers", "heads", "dropout"]


def test_unknown_model_names_the_choices():
    with pytest.raises(ModelContractError, match="model: unknown model 'bert4rec'; expected one of gat, lightgcn, mf, "
                       "ngcf .*or an import path package.module:Class"):
        build_model("bert4rec", 1, 1, _train())
