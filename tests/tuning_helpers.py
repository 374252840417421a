"""What the tuning tests share: a tiny synthetic spec, the records invariants of a run, and the Optuna trials a run
left behind."""

import glob
import os
import pickle

from tuner.spec import validate_spec


def tiny_spec(tmp_path, **changes):
    """LightGCN on 60 users x 40 items, a 2-point grid over lr, 6 epochs; `changes` replace or update top-level keys."""
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
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return validate_spec(raw, "test")


def assert_one_row_per_trial_epoch(records, trials):
    assert not records.duplicated(["trial_id", "epoch"]).any()
    for trial_id, rows in records.groupby("trial_id"):
        assert sorted(rows["epoch"]) == list(range(1, rows["epoch"].max() + 1)), trial_id
        last = rows.loc[rows["epoch"].idxmax()]
        assert last["status"] == "ended" and isinstance(last["stop_reason"], str)
    assert set(records["trial_id"]) == set(trials["trial_id"])


def optuna_trials(experiment_dir):
    """The Optuna trials inside the searcher Ray saved (trusted: our own experiment folder)."""
    newest = sorted(glob.glob(os.path.join(experiment_dir, "searcher-state-*.pkl")))[-1]
    with open(newest, "rb") as f:
        state = pickle.load(f)
    return state["_ot_study"].trials


def optuna_from_db(experiment_dir):
    """The study tuner exported to <experiment>/optuna.db."""
    import optuna

    return optuna.load_study(study_name=None, storage=f"sqlite:///{experiment_dir}/optuna.db")


def optuna_states(experiment_dir):
    return [trial.state.name for trial in optuna_trials(experiment_dir)]


