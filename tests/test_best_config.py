"""`tuner best`'s spec (tuner.analysis.best_config): the header says how to run the trial again as it ran."""

import os

import pytest

from tests.fake_experiment import K, ablation_spec, write_trial
from tuner.analysis.best_config import best_spec_yaml
from tuner.experiment import provenance
from tuner.experiment.read import Experiment
from tuner.recsys.hyperparameters import Hyperparameters


def _experiment(tmp_path, device, trial_resources):
    directory = str(tmp_path / "runs" / "exp")
    os.makedirs(directory)
    ablation_spec(directory)
    hp = Hyperparameters(weight_decay=0.1, seed=0, k=[K], epochs=1, eval_every=1)
    write_trial(directory, "t1", hp, [{f"val/recall@{K}": 0.2}], device=device)
    if trial_resources:
        provenance.record(directory, trial_resources)
    return Experiment.open(directory)


@pytest.mark.parametrize(("device", "trial_resources", "options"), [
    ("cpu", {"cpu": 4.0, "gpu": 0.0}, "--threads 4"),  # a trial's torch threads are its CPUs
    ("cpu", None, "--threads 1"),  # no run recorded its resources: `auto` gives a trial one CPU
    ("cuda:0", {"cpu": 1.0, "gpu": 0.25}, "--device cuda"),
])
def test_the_header_runs_the_trial_again_with_its_threads_or_on_its_gpu(tmp_path, device, trial_resources, options):
    header = best_spec_yaml(_experiment(tmp_path, device, trial_resources)).splitlines()[1]
    assert header == f"# run it again with: tuner train <this file> {options}"
