"""`resources: auto` and `search.max_concurrent: auto`: what each trial gets and how many run at once."""

import pytest

from tuner.spec import validate_spec
from tuner.tuning.resources import TRIALS_PER_GPU_CAP, Cluster, GraphSize, plan, trial_gpu_bytes

ML100K = GraphSize(num_users=943, num_items=1682, train_edges=72_000)
GIB = 2**30


def _spec(**changes):
    return validate_spec({"name": "s", "model": "lightgcn", **changes}, "test")


def test_without_gpus_one_cpu_per_trial_and_every_core_used():
    for cpus in (2, 16):
        chosen = plan(_spec(), ML100K, Cluster(cpus=cpus, gpus=0))
        assert (chosen.cpu, chosen.gpu, chosen.max_concurrent) == (1.0, 0.0, cpus)
    assert plan(_spec(), ML100K, Cluster(cpus=2, gpus=0)).describe(Cluster(2, 0)) == (
        "2 trials at once, each 1 CPU (2 CPUs, no GPU)"
    )


def test_a_small_graph_packs_many_trials_on_one_gpu():
    chosen = plan(_spec(), ML100K, Cluster(cpus=16, gpus=1, gpu_memory=80 * GIB))
    assert (chosen.cpu, chosen.gpu, chosen.max_concurrent) == (1.0, 1 / TRIALS_PER_GPU_CAP, TRIALS_PER_GPU_CAP)
    assert chosen.describe(Cluster(16, 1)).startswith("8 trials at once, each 1 CPU + 1/8 GPU (16 CPUs, 1 GPU")


def test_gpu_trials_are_limited_by_the_cpus_that_drive_them():
    chosen = plan(_spec(), ML100K, Cluster(cpus=2, gpus=1, gpu_memory=80 * GIB))
    assert (chosen.gpu, chosen.max_concurrent) == (0.5, 2)
    two_gpus = plan(_spec(), ML100K, Cluster(cpus=32, gpus=2, gpu_memory=80 * GIB))
    assert (two_gpus.gpu, two_gpus.max_concurrent) == (1 / 8, 16)


def test_a_graph_that_needs_a_whole_gpu_gets_one():
    huge = GraphSize(num_users=20_000_000, num_items=5_000_000, train_edges=500_000_000)
    assert trial_gpu_bytes(_spec(), huge) > 0.9 * 24 * GIB
    chosen = plan(_spec(), huge, Cluster(cpus=16, gpus=4, gpu_memory=24 * GIB))
    assert (chosen.gpu, chosen.max_concurrent) == (1.0, 4)


def test_memory_decides_between_whole_and_cap():
    medium = GraphSize(num_users=200_000, num_items=100_000, train_edges=5_000_000)
    need = trial_gpu_bytes(_spec(), medium)
    chosen = plan(_spec(), medium, Cluster(cpus=16, gpus=1, gpu_memory=24 * GIB))
    assert chosen.gpu == pytest.approx(1 / int(0.9 * 24 * GIB // need))
    assert 1 < chosen.max_concurrent < TRIALS_PER_GPU_CAP


def test_the_estimate_takes_the_largest_configuration_the_search_can_draw():
    small = trial_gpu_bytes(_spec(fixed={"embedding_dim": 32}), ML100K)
    searched = trial_gpu_bytes(_spec(params={"embedding_dim": {"type": "categorical", "choices": [32, 512]}}), ML100K)
    assert searched > trial_gpu_bytes(_spec(fixed={"embedding_dim": 256}), ML100K) > small


def test_explicit_values_win():
    cluster = Cluster(cpus=16, gpus=1, gpu_memory=80 * GIB)
    chosen = plan(_spec(resources={"cpu": 2, "gpu": 0.5}), ML100K, cluster)
    assert (chosen.cpu, chosen.gpu, chosen.max_concurrent) == (2.0, 0.5, 2)
    chosen = plan(_spec(resources={"cpu": 4}), ML100K, Cluster(cpus=16, gpus=0))
    assert (chosen.cpu, chosen.gpu, chosen.max_concurrent) == (4.0, 0.0, 4)
    chosen = plan(_spec(search={"max_concurrent": 3}), ML100K, cluster)
    assert (chosen.gpu, chosen.max_concurrent) == (1 / 8, 3)


def test_a_cluster_without_room_for_a_trial_still_runs_one_at_a_time():
    chosen = plan(_spec(), ML100K, Cluster(cpus=0, gpus=0))
    assert chosen.max_concurrent == 1
    assert chosen.describe(Cluster(0, 0)) == "1 trial at once, each 1 CPU (0 CPUs, no GPU)"


def test_what_a_trial_asks_for_and_ray_lacks_is_named():
    """On a fixed machine such trials would wait for resources forever (`tuner run` refuses them there)."""
    laptop = Cluster(cpus=2, gpus=0)
    assert plan(_spec(resources={"cpu": 1, "gpu": 0.5}), ML100K, laptop).unmet(laptop) == (
        "resources.gpu: each trial asks for 0.5 GPU, but Ray has no GPU")
    assert plan(_spec(resources={"cpu": 4}), ML100K, laptop).unmet(laptop) == (
        "resources.cpu: each trial asks for 4 CPUs, but Ray has 2 CPUs")
    assert plan(_spec(resources={"cpu": 2}), ML100K, laptop).unmet(laptop) is None
    assert plan(_spec(), ML100K, laptop).unmet(laptop) is None  # auto always fits
    gpu_box = Cluster(cpus=16, gpus=1, gpu_memory=80 * GIB)
    assert plan(_spec(resources={"cpu": 1, "gpu": 2}), ML100K, gpu_box).unmet(gpu_box) == (
        "resources.gpu: each trial asks for 2 GPUs, but Ray has 1 GPU")


def test_a_trial_must_fit_on_one_node_of_a_cluster():
    """Ray places a trial's CPUs and GPUs on one node: 8 CPUs spread over two 4-CPU nodes do not make room."""
    cluster = Cluster(cpus=12, gpus=2, nodes=((4, 0), (4, 1), (4, 1)))
    assert plan(_spec(resources={"cpu": 8}), ML100K, cluster).unmet(cluster) == (
        "resources.cpu: each trial asks for 8 CPUs, but Ray's largest node has 4 CPUs")
    assert plan(_spec(resources={"cpu": 1, "gpu": 2}), ML100K, cluster).unmet(cluster) == (
        "resources.gpu: each trial asks for 2 GPUs, but Ray's largest node has 1 GPU")
    assert plan(_spec(resources={"cpu": 4, "gpu": 1}), ML100K, cluster).unmet(cluster) is None
    no_workers_yet = Cluster(cpus=0, gpus=0, nodes=((0, 0),))  # an autoscaling cluster's head runs no trials
    assert plan(_spec(), ML100K, no_workers_yet).unmet(no_workers_yet) == (
        "resources.cpu: each trial asks for 1 CPU, but Ray has no CPU")


def test_auto_can_be_written_out():
    spec = _spec(resources="auto", search={"max_concurrent": "auto"})
    assert (spec.resources, spec.search.max_concurrent) == ("auto", "auto")


def test_spec_errors_name_the_field():
    from tuner.errors import SpecError

    with pytest.raises(SpecError, match=r"resources: expected auto or a mapping"):
        _spec(resources="all")
    with pytest.raises(SpecError, match=r"resources: cpu: Input should be greater than 0"):
        _spec(resources={"cpu": 0})
    with pytest.raises(SpecError, match=r"search.max_concurrent: expected auto or a whole number"):
        _spec(search={"max_concurrent": "many"})
    with pytest.raises(SpecError, match=r"search.max_concurrent: expected auto or a whole number of trials >= 1, got 0$"):
        _spec(search={"max_concurrent": 0})


@pytest.mark.slow
def test_auto_on_a_ray_cluster_with_one_gpu(tmp_path, capsys):
    """Ray started with a (fake) GPU: every trial gets 1 CPU and half the GPU, two run at once; they train on the
    CPU here (no CUDA), and the report's GPU time counts the half GPU each trial held."""
    import ray
    from ray import tune

    from tuner.experiment import provenance
    from tuner.tuning.run import run_experiment

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    try:
        spec = validate_spec({
            "name": "gpu", "model": "mf", "storage": str(tmp_path / "runs"), "metric": "val/recall@10",
            "dataset": {"name": "synthetic", "synthetic": {"num_users": 40, "num_items": 30, "interactions_per_user": 8}},
            "fixed": {"embedding_dim": 4, "epochs": 2, "batch_size": 64, "k": [10]},
            "params": {"lr": {"type": "categorical", "choices": [0.01, 0.02]}},
            "search": {"sampler": "grid"}, "scheduler": {"kind": "none"},
        }, "test")
        summary = run_experiment(spec)
        trials = tune.ExperimentAnalysis(summary.experiment_dir).trials
        resources = {t.trial_id: t.placement_group_factory.required_resources for t in trials}
    finally:
        ray.shutdown()
    assert "gpu: 2 trials at once, each 1 CPU + 1/2 GPU (2 CPUs, 1 GPU" in capsys.readouterr().out
    assert summary.counts["finished"] == 2
    assert all(r == {"CPU": 1.0, "GPU": 0.5} for r in resources.values()), resources
    assert set(summary.trials["device"]) == {"cpu"}
    assert provenance.load(summary.experiment_dir)["trial_resources"] == {"cpu": 1.0, "gpu": 0.5}
