"""What the tuning tests share: a tiny synthetic spec, the invariant every fault must keep (`assert_invariants`),
and the Optuna trials a run left behind."""

import glob
import os

from tuner.spec import validate_spec


def tiny_spec(tmp_path, **changes):
    """LightGCN on 60 users x 40 items, a 2-point grid over lr, 6 epochs; `changes` replace or update top-level keys
    (a None inside an updating dict removes that key)."""
    raw = {
        "name": "tiny",
        "model": "lightgcn",
        "dataset": {"name": "synthetic", "synthetic": {"num_users": 60, "num_items": 40, "interactions_per_user": 10}},
        "metric": "val/recall@10",
        "fixed": {"embedding_dim": 8, "num_layers": 1, "epochs": 6, "batch_size": 128, "k": [10], "eval_every": 1},
        "params": {"lr": {"type": "categorical", "choices": [0.01, 0.02]}},
        "search": {"sampler": "grid", "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "failure": {"max_failures": 2, "checkpoint_every": 2},
        "storage": str(tmp_path / "runs"),
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {k: v for k, v in {**raw[key], **value}.items() if v is not None}
        else:
            raw[key] = value
    return validate_spec(raw, "test")


_OPTUNA_STATE = {"finished": "COMPLETE", "early_stopped": "PRUNED", "failed": "FAIL", "diverged": "FAIL",
                 "collapsed": "COMPLETE"}


def assert_invariants(experiment_dir, all_ended: bool = True):
    """What every fault must leave behind, after the fault and a rerun: every record file readable; exactly one
    record row per (trial, epoch), epochs 1..n without a gap; a trial ends once, on its last row, with a stop
    reason (`all_ended`: every trial has ended, and the experiment holds its num_samples trials); `optuna.db` holds
    exactly the ended trials, in the state and with the value the records give. Returns the experiment."""
    import math

    from tuner.experiment.read import Experiment

    experiment = Experiment.open(str(experiment_dir))
    records, trials = experiment.records, experiment.trials
    assert not records.attrs.get("unreadable"), records.attrs["unreadable"]
    if not records.empty:
        assert_one_row_per_trial_epoch(records, trials, all_ended)
    if all_ended:
        ended = sum(count for state, count in experiment.counts.items() if state != "running")
        assert ended == experiment.spec.trial_count() and experiment.counts["running"] == 0, experiment.counts
    study = optuna_from_db(experiment.directory)
    in_study = {trial.user_attrs["trial_id"]: trial for trial in study.trials}
    ended_trials = trials[trials["stop_reason"] != "running"] if not trials.empty else trials
    assert set(in_study) == set(ended_trials["trial_id"] if not trials.empty else []), (set(in_study), ended_trials)
    for _, trial in ended_trials.iterrows():
        optuna_trial = in_study[trial["trial_id"]]
        value = trial[experiment.spec.metric]
        expected = _OPTUNA_STATE[trial["stop_reason"]]
        if expected == "COMPLETE" and not math.isfinite(value):
            expected = "FAIL"
        assert optuna_trial.state.name == expected, (trial["trial_id"], optuna_trial.state.name, trial["stop_reason"])
        if expected == "COMPLETE":
            assert optuna_trial.value == value
    return experiment


def assert_one_row_per_trial_epoch(records, trials, all_ended: bool = True):
    assert not records.duplicated(["trial_id", "epoch"]).any()
    for trial_id, rows in records.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, rows["epoch"].max() + 1)), trial_id
        last = rows.loc[rows["epoch"].idxmax()]
        ends = rows[(rows["status"] == "ended") | rows["stop_reason"].notna()]
        assert len(ends) <= 1 and (ends.empty or ends["epoch"].iloc[0] == last["epoch"]), (trial_id, ends)
        if all_ended:
            assert last["status"] == "ended" and isinstance(last["stop_reason"], str), trial_id
    assert set(records["trial_id"]) == set(trials["trial_id"])


def optuna_trials(experiment_dir):
    """The Optuna trials of the searcher Ray saved last, restored the way Ray restores it (trusted: our own
    experiment folder)."""
    from tuner.tuning.searcher import EpochOptunaSearch

    newest = sorted(glob.glob(os.path.join(experiment_dir, "searcher-state-*.pkl")))[-1]
    searcher = EpochOptunaSearch(epochs=1)
    searcher.restore(newest)
    return searcher.study.trials


def optuna_from_db(experiment_dir):
    """The study tuner exported to <experiment>/optuna.db."""
    import optuna

    return optuna.load_study(study_name=None, storage=f"sqlite:///{experiment_dir}/optuna.db")


def assert_live_study_is_the_export(experiment_dir):
    """The study the live searcher was told (saved by Ray) and the one tuner exported from the records agree trial
    for trial (matched by their hyperparameters): state, value and intermediate values."""
    import math

    def told(trial):
        value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
        return trial.state.name, value, trial.intermediate_values

    live = {tuple(sorted(t.params.items())): told(t) for t in optuna_trials(experiment_dir)}
    exported = {tuple(sorted(t.params.items())): told(t) for t in optuna_from_db(experiment_dir).trials}
    assert live == exported


def optuna_states(experiment_dir):
    return [trial.state.name for trial in optuna_trials(experiment_dir)]


