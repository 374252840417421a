"""What each trial gets and how many run at once: `resources: auto` and `search.max_concurrent: auto`, resolved
against the machine or cluster. Pure arithmetic (no Ray, no torch), so it can be tested on fake clusters.

- Without GPUs: one CPU per trial, and as many trials at once as there are CPUs.
- With GPUs: each trial gets one CPU (to drive its GPU work and sample batches) and a fraction of a GPU sized to
  the graph: 1/n of a GPU where n trials fit in its memory, at most TRIALS_PER_GPU_CAP per GPU (beyond that they
  only take turns on its compute) and no more than the CPUs allow; a graph that needs a whole GPU gets one.
- Explicit values win: `resources: {cpu: 2, gpu: 0.5}` is used as given (max_concurrent then follows from it),
  and an explicit `search.max_concurrent` is used as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from tuner.spec import ExperimentSpec

TRIALS_PER_GPU_CAP = 8
ASSUMED_GPU_MEMORY = 16 * 2**30  # when the GPUs' memory cannot be read (e.g. a cluster whose head has none)
CUDA_CONTEXT_BYTES = 600 * 2**20  # a CUDA context and PyTorch's allocator reserve, per trial process
SAFETY = 1.5  # the estimate below counts the big tensors only


@dataclass(frozen=True)
class Cluster:
    """What Ray has to offer: CPUs and GPUs in total, and the memory of its smallest GPU (None: unknown)."""

    cpus: float
    gpus: float
    gpu_memory: int | None = None
    nodes: tuple[tuple[float, float], ...] = ()  # (CPUs, GPUs) of each node that is up; () when not known

    def largest_node_for(self, gpus: float) -> tuple[float, float]:
        """The (CPUs, GPUs) of the node with the most CPUs among those with at least `gpus` GPUs, or of the node
        with the most GPUs when none has that many: a trial's CPUs and GPUs must all be on one node."""
        nodes = self.nodes or ((self.cpus, self.gpus),)
        with_gpus = [node for node in nodes if node[1] + 1e-9 >= gpus]
        return max(with_gpus) if with_gpus else max(nodes, key=lambda node: (node[1], node[0]))


@dataclass(frozen=True)
class GraphSize:
    num_users: int
    num_items: int
    train_edges: int


@dataclass(frozen=True)
class Plan:
    cpu: float
    gpu: float
    max_concurrent: int
    gpu_bytes_per_trial: int | None = None  # the estimate the GPU fraction was sized with

    def describe(self, cluster: Cluster) -> str:
        per_trial = f"{_number(self.cpu)} CPU" + (f" + {_gpu_share(self.gpu)} GPU" if self.gpu else "")
        machine = f"{_number(cluster.cpus)} CPUs" + (f", {_number(cluster.gpus)} GPU" if cluster.gpus else ", no GPU")
        estimate = ""
        if self.gpu_bytes_per_trial:
            estimate = f"; about {self.gpu_bytes_per_trial / 2**30:.1f} GiB of GPU memory per trial"
        trials = "1 trial" if self.max_concurrent == 1 else f"{self.max_concurrent} trials"
        return f"{trials} at once, each {per_trial} ({machine}{estimate})"

    def unmet(self, cluster: Cluster) -> str | None:
        """What one trial asks for and no node of the cluster has (None when a trial fits; a trial's CPUs and GPUs
        must be on one node): such trials would wait for resources forever on a fixed machine, or until an
        autoscaling cluster adds a node that has them."""
        node_cpus, node_gpus = cluster.largest_node_for(self.gpu)
        holder = "Ray's largest node" if len(cluster.nodes) > 1 else "Ray"
        for name, each, has in (("gpu", self.gpu, node_gpus), ("cpu", self.cpu, node_cpus)):
            if each > has + 1e-9:
                unit = name.upper()
                return (f"resources.{name}: each trial asks for {_count(each, unit)}, but {holder} has "
                        f"{_count(has, unit) if has else 'no ' + unit}")
        return None


def plan(spec: ExperimentSpec, graph: GraphSize, cluster: Cluster) -> Plan:
    explicit_concurrency = spec.search.max_concurrent if spec.search.max_concurrent != "auto" else None
    if spec.resources != "auto":
        cpu, gpu, estimate = spec.resources.cpu, spec.resources.gpu, None
        fits = _fits(cluster.cpus, cpu)
        if gpu:
            fits = min(fits, _fits(cluster.gpus, gpu))
    elif cluster.gpus >= 1:
        estimate = trial_gpu_bytes(spec, graph)
        memory = cluster.gpu_memory or ASSUMED_GPU_MEMORY
        per_gpu = max(1, min(TRIALS_PER_GPU_CAP, int(0.9 * memory // estimate), int(cluster.cpus // cluster.gpus) or 1))
        cpu, gpu = 1.0, 1.0 / per_gpu
        fits = min(_fits(cluster.cpus, cpu), int(cluster.gpus) * per_gpu)
    else:
        cpu, gpu, estimate = 1.0, 0.0, None
        fits = _fits(cluster.cpus, cpu)
    return Plan(cpu, gpu, explicit_concurrency or max(1, fits), estimate)


def trial_gpu_bytes(spec: ExperimentSpec, graph: GraphSize) -> int:
    """A trial's GPU memory, estimated from the largest configuration its search can draw: the CUDA context, the
    embeddings with their gradients and Adam's two moments, the normalised adjacency, what one training step
    keeps for its backward pass, one evaluation batch of scores, and an epoch of sampled triples."""
    d = _largest(spec, "embedding_dim", default=64)  # a model's own hyperparameters: the built-ins' defaults
    layers = max(_largest(spec, "num_layers", default=3), 1)
    heads = _largest(spec, "heads", default=2)
    nodes = graph.num_users + graph.num_items
    nnz = 2 * graph.train_edges + nodes
    parameters = nodes * d
    if spec.model == "ngcf":
        parameters += 2 * layers * (d * d + d)
        activations = 6 * layers * nodes * d
    elif spec.model == "gat":
        parameters += layers * (heads * d * d + d * d + 2 * heads * d)
        activations = layers * (3 * heads * nodes * d + 4 * heads * nnz)
    elif spec.model == "mf":
        activations = _largest(spec, "batch_size") * 3 * d
    else:  # lightgcn, and a user's model, estimated as a propagation like LightGCN's
        activations = (layers + 1) * nodes * d
    floats = 4 * parameters + 2 * activations + 3 * _largest(spec, "eval_batch_size") * graph.num_items
    samples = max(_largest(spec, "samples_per_user", default=0) * graph.num_users, graph.train_edges)
    bytes_ = 4 * floats + 8 * nnz + 3 * 8 * samples
    return CUDA_CONTEXT_BYTES + int(SAFETY * bytes_)


def _largest(spec: ExperimentSpec, name: str, default: int = 0) -> int:
    """The largest value of `name` a trial can get (`default` where neither fixed nor searched sets a number)."""
    fixed = getattr(spec.fixed, name, None)
    otherwise = int(fixed) if fixed is not None else default
    param = spec.params.get(name)
    if param is None:
        return otherwise
    if param.type == "categorical":
        values = [v for v in param.choice_list() if isinstance(v, (int, float))]
        return int(max(values)) if values else otherwise
    return int(param.bounds()[1])


def _fits(total: float, each: float) -> int:
    return int(math.floor(total / each + 1e-9))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _count(value: float, unit: str) -> str:
    return f"{_number(value)} {unit}" + ("s" if value > 1 else "")


def _gpu_share(fraction: float) -> str:
    share = Fraction(fraction).limit_denominator(64)
    return _number(fraction) if share.numerator != 1 or share.denominator == 1 else f"1/{share.denominator}"
