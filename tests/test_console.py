"""What `tuner run` prints when it ends (tuner.console), read from an experiment folder written as trials write it."""

from tests.fake_experiment import K, write_trial
from tuner.console import run_summary_text
from tuner.experiment.layout import save_spec
from tuner.experiment.read import Experiment
from tuner.experiment.settle import RunSummary
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.spec import validate_spec


def _summary(tmp_path, spec: dict, trials: dict[str, tuple[Hyperparameters, list]]) -> RunSummary:
    """The summary of a run of `spec` whose trials wrote `trials` (trial id -> hyperparameters, one dict per epoch)."""
    experiment = validate_spec({"name": "e", "model": "lightgcn", "metric": f"val/recall@{K}", "fixed": {"k": [K]},
                                **spec}, "test")
    directory = str(tmp_path / "e")
    save_spec(directory, experiment)
    for trial_id, (hp, epochs) in trials.items():
        write_trial(directory, trial_id, hp, epochs)
    return RunSummary(Experiment.open(directory), expected_trials=max(1, len(trials)), study_path=None)


def test_the_next_hint_names_report_best_and_records_with_the_storage_quoted(tmp_path):
    hint = run_summary_text(_summary(tmp_path, {"storage": "runs; rm -rf ~"}, {})).splitlines()[-1]
    assert hint == ("next: tuner report e --storage 'runs; rm -rf ~'   |   tuner best e --storage 'runs; rm -rf ~'"
                    "   |   tuner records e --storage 'runs; rm -rf ~'")


def test_the_summary_prints_null_and_whole_epochs(tmp_path):
    spec = {"params": {"samples_per_user": {"type": "categorical", "choices": [None, 100]}}}
    epochs = [{f"val/recall@{K}": 0.1}, {f"val/recall@{K}": 0.2}, {f"val/recall@{K}": 0.3}]
    text = run_summary_text(_summary(tmp_path, spec, {"t1": (Hyperparameters(k=[K], samples_per_user=None), epochs)}))
    assert "at epoch 3 of 3 (3.0 s)" in text and "config: samples_per_user=null" in text
    assert "time: 3 s of trials (3 CPU s, 0 GPU s)" in text  # one CPU per trial, the default
