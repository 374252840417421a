"""Records -> trial tables -> ablation tables, from inline DataFrames (no files, no Ray)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tuner.analysis.summarize import (
    ablation_table,
    flag_degenerate,
    format_value,
    per_user_wilcoxon,
    resource_time,
    seed_paired_pvalues,
    usable_trials,
)
from tuner.experiment.trials import failed_trial_errors, hyperparameters_of, stop_reason_counts, trial_table
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.selection import best_epoch

METRIC = "val/recall@10"


def _rows(trial_id, values, stop_reason="finished", users=5.0, **params):
    """One record row per epoch of a trial whose validation recall is `values` (None: epoch not evaluated)."""
    rows = []
    for epoch, value in enumerate(values, start=1):
        last = epoch == len(values)
        rows.append({
            "trial_id": trial_id, "epoch": epoch, "evaluated": value is not None, METRIC: value,
            "val/users": users, "test/recall@10": None if value is None else value * 2,
            "stop_reason": stop_reason if last else None, "cumulative_seconds": float(epoch),
            **{f"param_{k}": v for k, v in params.items()},
        })
    return rows


def test_a_trial_is_read_at_its_best_validation_epoch_ties_to_the_earliest():
    records = pd.DataFrame(_rows("a", [0.1, 0.3, None, 0.3, 0.2]))
    row = trial_table(records, METRIC, "max").iloc[0]
    assert (row["best_epoch"], row["epochs_run"], row["test/recall@10"]) == (2, 5, 0.6)
    assert trial_table(records, METRIC, "min").iloc[0]["best_epoch"] == 1


def test_without_validation_users_the_last_evaluated_epoch_is_taken_as_training_does():
    records = pd.DataFrame(_rows("a", [0.0, 0.0, None], users=0.0))
    assert trial_table(records, METRIC, "max").iloc[0]["best_epoch"] == 2
    assert best_epoch([(1, 0.0, 0.0), (2, 0.0, 0.0)], "max") == 2


def test_finished_trials_rank_first_then_early_stopped_running_failed():
    records = pd.DataFrame(
        _rows("stopped", [0.9], "early_stopped") + _rows("good", [0.5]) + _rows("better", [0.6])
        + _rows("running", [0.99], None) + _rows("broken", [0.95], "failed")
    )
    table = trial_table(records, METRIC, "max")
    assert list(table["trial_id"]) == ["better", "good", "stopped", "running", "broken"]
    assert list(table["stop_reason"]) == ["finished", "finished", "early_stopped", "running", "failed"]


def test_counts_add_trials_that_failed_before_any_record():
    records = pd.DataFrame(_rows("a", [0.1]) + _rows("b", [0.2], "diverged") + _rows("c", [0.2], "failed"))
    trials = trial_table(records, METRIC, "max")
    errors = {"c": "ValueError: c", "never-recorded": "OSError: x", "b": "recovered once"}
    failed = failed_trial_errors(trials, errors)
    assert failed == {"c": "ValueError: c", "never-recorded": "OSError: x"}  # b diverged: its error is not why
    assert stop_reason_counts(trials, failed) == {"finished": 1, "early_stopped": 0, "failed": 2, "diverged": 1,
                                                  "collapsed": 0, "running": 0}


def test_hyperparameters_come_back_from_their_record_columns():
    hp = Hyperparameters(k=[10, 20], samples_per_user=None, lr=0.01, embedding_dim=64, temperature=0.2)
    row = {f"param_{name}": value for name, value in hp.model_dump().items()}
    row["param_k"] = "10,20"
    row["param_samples_per_user"] = float("nan")  # how a float column stores a null
    row["param_embedding_dim"] = np.int64(64)  # the model's own hyperparameters come back too
    row["param_heads"] = float("nan")  # another model's column, null for this trial: left out
    assert hyperparameters_of(row) == hp


def _ablation_trials():
    """weight_decay 0 (seeds 0, 1) better than 0.1; a null value; one failed trial."""
    rows = []
    for decay, seed, recall in [(0.0, 0, 0.30), (0.0, 1, 0.34), (0.1, 0, 0.20), (0.1, 1, 0.21), (None, 0, 0.1)]:
        rows.append({"trial_id": f"{decay}-{seed}", "stop_reason": "finished", "param_weight_decay": decay,
                     "param_seed": seed, METRIC: recall / 2,
                     **{f"{s}/{m}@10": recall for s in ("train", "val", "test") for m in ("precision", "recall")}})
    rows.append({"trial_id": "x", "stop_reason": "failed", "param_weight_decay": 1.0, "param_seed": 0})
    return pd.DataFrame(rows)


def test_usable_trials_are_ordered_null_first_then_by_value_and_seed():
    usable = usable_trials(_ablation_trials(), "weight_decay")
    assert list(usable["value"]) == ["null", "0", "0", "0.1", "0.1"]
    assert list(usable["param_seed"]) == [0, 0, 1, 0, 1]


def test_ablation_table_means_stds_best_and_baselines():
    baselines = pd.DataFrame([{"baseline": "mostpop", METRIC: 0.05, **{f"{s}/{m}@10": 0.15 for s in ("train", "val", "test")
                                                                        for m in ("precision", "recall")}}])
    table = ablation_table(_ablation_trials(), "weight_decay", METRIC, "max", baselines).set_index("row")
    assert table.loc["weight_decay=0", "test/recall@10"] == pytest.approx(0.32)
    assert table.loc["weight_decay=0", "test/recall@10 std"] == pytest.approx(np.std([0.30, 0.34], ddof=1))
    assert math.isnan(table.loc["weight_decay=null", "test/recall@10 std"])  # one seed: no spread
    assert list(table.index[table["best"]]) == ["weight_decay=0"]
    assert bool(table.loc["mostpop", "is_baseline"]) and not table.loc["mostpop", "best"]
    flags = flag_degenerate(table.reset_index(), METRIC)
    assert flags.iloc[0].startswith("not better than MostPop")  # null: 0.1 <= 0.15
    assert flags.iloc[1] == ""


def test_seed_paired_pvalues_pair_trials_by_seed():
    pvalues = seed_paired_pvalues(_ablation_trials(), "weight_decay", "0", METRIC)
    assert pvalues["0.1"] == pytest.approx(stats.ttest_rel([0.20, 0.21], [0.30, 0.34]).pvalue)
    assert math.isnan(pvalues["null"])  # one seed pairs up: no test


def test_per_user_wilcoxon_pairs_users_within_a_seed():
    trials = _ablation_trials()
    per_user = pd.DataFrame([
        {"trial_id": trial_id, "user": user, "test/recall@10": value}
        for trial_id, values in {"0.0-0": [0.1, 0.5, 0.3], "0.1-0": [0.2, 0.1, 0.0]}.items()
        for user, value in enumerate(values)
    ])
    expected = stats.wilcoxon([0.1, 0.5, 0.3], [0.2, 0.1, 0.0]).pvalue
    assert per_user_wilcoxon(per_user, trials, "weight_decay", "0", "0.1", METRIC) == pytest.approx(expected)
    assert math.isnan(per_user_wilcoxon(pd.DataFrame(), trials, "weight_decay", "0", "0.1", METRIC))


def test_values_print_as_a_user_wrote_them():
    assert [format_value(v) for v in (None, float("nan"), np.float64(0.001), 100, "tpe")] == [
        "null", "null", "0.001", "100", "tpe"]


def test_resource_time_multiplies_trial_seconds_by_what_each_trial_held():
    trials = pd.DataFrame({"total_seconds": [10.0, None, 5.0]})
    assert resource_time(trials, {"cpu": 2.0, "gpu": 0.5}) == {"trial_seconds": 15.0, "cpu_seconds": 30.0,
                                                               "gpu_seconds": 7.5}


def test_the_pareto_front_keeps_trials_nothing_beats_on_both_quality_and_time():
    from tuner.analysis.summarize import pareto_front

    trials = pd.DataFrame({
        "trial_id": ["cheap", "dominated", "better", "best", "slow-worse", "failed", "running"],
        "stop_reason": ["finished", "finished", "early_stopped", "finished", "finished", "failed", "running"],
        "total_seconds": [1.0, 2.0, 3.0, 10.0, 20.0, 0.5, 0.1],
        METRIC: [0.10, 0.08, 0.20, 0.30, 0.25, 0.9, 0.9],
    })
    assert list(pareto_front(trials, METRIC, "max")["trial_id"]) == ["cheap", "better", "best"]
    assert list(pareto_front(trials, METRIC, "min")["trial_id"]) == ["cheap", "dominated"]
    assert pareto_front(trials.iloc[:0], METRIC, "max").empty
