"""The tuning code's pure parts, without a Ray cluster: the searcher's corrections to OptunaSearch (told to it
the way Tune does), settling an experiment's stop reasons, pruning checkpoints, and `base:`."""

import json
import pickle
import warnings

import optuna
import pytest

from tests.fake_experiment import K, write_trial
from tuner.experiment.inherit import with_base
from tuner.experiment.layout import save_spec
from tuner.experiment.set_aside import prune_checkpoints
from tuner.experiment.settle import settle
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.spec import validate_spec
from tuner.tuning.searcher import EpochOptunaSearch, optuna_sampler

METRIC = f"val/recall@{K}"


EPOCHS = 10  # a trial that reaches epoch 10 trained every epoch


def _searcher(sampler=None, lr=optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True), storage=None):
    storage = storage or optuna.storages.InMemoryStorage()
    searcher = EpochOptunaSearch(space={"lr": lr}, metric=METRIC, mode="max", sampler=sampler,
                                 study_name="s", storage=storage, epochs=EPOCHS)
    return searcher, lambda: optuna.load_study(study_name="s", storage=storage).trials


def _tell(searcher, trial_id, values: dict[int, float], **last):
    """Tune's calls for a trial that reported `values` (epoch -> validation value); returns its last result."""
    for epoch, value in values.items():
        searcher.on_trial_result(trial_id, {"epoch": epoch, METRIC: value, "training_iteration": 1})
    epoch = max(values)
    return {"epoch": epoch, METRIC: values[epoch], **last}


def test_what_optuna_is_told_of_a_finished_a_stopped_a_collapsed_a_failed_and_a_diverged_trial():
    """As tuner's records say, and as Optuna's own pruning would tell it: a finished trial is COMPLETE with its
    best validation value (the epoch tuner returns), not its last; one the scheduler stopped is PRUNED with its
    intermediate values (Optuna values it at its last one); a collapsed one ended itself with real metrics
    (COMPLETE); failed and diverged ones are FAIL."""
    searcher, trials = _searcher()
    for trial_id in ("finished", "stopped", "collapsed", "failed", "diverged"):
        searcher.suggest(trial_id)
    searcher.on_trial_complete("finished", _tell(searcher, "finished", {5: 0.30, 10: 0.28}))
    searcher.on_trial_complete("stopped", _tell(searcher, "stopped", {5: 0.20}))
    searcher.on_trial_complete("collapsed", _tell(searcher, "collapsed", {5: 0.01}, ended_itself="collapsed"))
    searcher.on_trial_complete("failed", _tell(searcher, "failed", {5: 0.25}), error=True)
    searcher.on_trial_result("diverged", {"epoch": 3, METRIC: float("-inf"), "ended_itself": "diverged"})
    searcher.on_trial_complete("diverged", {"epoch": 3, METRIC: float("-inf"), "ended_itself": "diverged"})
    told = [(t.state.name, t.value, t.intermediate_values) for t in trials()]
    assert told == [
        ("COMPLETE", 0.30, {5: 0.30, 10: 0.28}),
        ("PRUNED", 0.20, {5: 0.20}),
        ("COMPLETE", 0.01, {5: 0.01}),
        ("FAIL", None, {5: 0.25}),
        ("FAIL", None, {}),  # the diverged report is never told
    ]


def test_the_result_a_scheduler_stops_a_trial_at_is_its_last_intermediate_value():
    """Tune hands the result ASHA stops a trial at to on_trial_complete only, never to on_trial_result."""
    searcher, trials = _searcher()
    searcher.suggest("t")
    searcher.on_trial_result("t", {"epoch": 4, METRIC: 0.2})
    searcher.on_trial_complete("t", {"epoch": 8, METRIC: 0.25})
    (trial,) = trials()
    assert (trial.state.name, trial.value, trial.intermediate_values) == ("PRUNED", 0.25, {4: 0.2, 8: 0.25})


def test_a_minimised_metric_is_told_its_lowest_value():
    storage = optuna.storages.InMemoryStorage()
    searcher = EpochOptunaSearch(space={"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1)}, metric=METRIC,
                                 mode="min", study_name="s", storage=storage, epochs=EPOCHS)
    searcher.suggest("t")
    searcher.on_trial_complete("t", _tell(searcher, "t", {5: 0.2, 10: 0.3}))
    assert [(t.state.name, t.value) for t in optuna.load_study(study_name="s", storage=storage).trials] == [("COMPLETE", 0.2)]


def test_a_resumed_trial_is_told_as_if_it_had_never_stopped(tmp_path):
    """The driver stops after epoch 5 of 10; the searcher comes back from its saved state and the trial resumes
    from its checkpoint at epoch 5, running epoch 5 again: Optuna sees each epoch once and the best of all."""
    searcher, _ = _searcher()  # an in-memory study, as tuner runs: it lives in the searcher's saved state
    searcher.suggest("t")
    _tell(searcher, "t", {1: 0.1, 5: 0.35})
    searcher.save(str(tmp_path / "searcher.pkl"))
    resumed = EpochOptunaSearch(epochs=EPOCHS)  # as Ray restores it: a searcher, then its saved state
    resumed.restore(str(tmp_path / "searcher.pkl"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when told an epoch twice
        resumed.on_trial_complete("t", _tell(resumed, "t", {5: 0.33, 10: 0.30}))
    (trial,) = resumed.study.trials
    assert (trial.state.name, trial.value, trial.intermediate_values) == ("COMPLETE", 0.35, {1: 0.1, 5: 0.35, 10: 0.30})


def test_intermediate_values_are_indexed_by_epoch_not_by_report_count():
    searcher, trials = _searcher()
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"epoch": 5, METRIC: 0.2, "training_iteration": 1})
    searcher.on_trial_result("t1", {"epoch": 10, METRIC: 0.3, "training_iteration": 2})
    searcher.on_trial_complete("t1", {"epoch": 10, METRIC: 0.3})
    (trial,) = trials()
    assert trial.intermediate_values == {5: 0.2, 10: 0.3} and trial.state.name == "COMPLETE" and trial.value == 0.3


def test_epochs_a_resumed_trial_runs_again_are_told_once():
    """A trial resumed from its checkpoint at epoch 2 runs epoch 3 again: Optuna keeps the first value, and warned
    on every such epoch."""
    searcher, trials = _searcher()
    searcher.suggest("t1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in (1, 2, 3, 3, 4):
            searcher.on_trial_result("t1", {"epoch": epoch, METRIC: 0.1 * epoch})
    assert trials()[0].intermediate_values == {1: 0.1, 2: 0.2, 3: 0.1 * 3, 4: 0.4}


def test_diverged_and_errored_trials_are_failed_not_complete():
    searcher, trials = _searcher()
    for trial_id in ("diverged", "errored"):
        searcher.suggest(trial_id)
    searcher.on_trial_result("errored", {"epoch": 1, METRIC: 0.25})
    searcher.on_trial_result("diverged", {"epoch": 2, METRIC: float("-inf"), "ended_itself": "diverged"})
    searcher.on_trial_complete("diverged", {"epoch": 2, METRIC: float("-inf"), "ended_itself": "diverged"})
    searcher.on_trial_complete("errored", {"epoch": 1, METRIC: 0.25}, error=True)
    assert [(t.state.name, t.value) for t in trials()] == [("FAIL", None), ("FAIL", None)]
    assert trials()[0].intermediate_values == {}  # the diverged report is never told


def test_a_trial_it_never_suggested_is_left_alone():
    """--restart-errored: Ray restarts an errored trial under a new id (OptunaSearch would raise KeyError)."""
    searcher, trials = _searcher()
    searcher.on_trial_result("restarted", {"epoch": 1, METRIC: 0.1})
    searcher.on_trial_complete("restarted", {"epoch": 1, METRIC: 0.1})
    assert trials() == []


def test_a_grid_sampler_that_stops_the_study_while_told_a_failure_does_not_crash():
    grid = optuna.samplers.GridSampler({"lr": [0.01]})
    searcher, trials = _searcher(sampler=grid, lr=optuna.distributions.CategoricalDistribution([0.01]))
    searcher.suggest("only")
    searcher.on_trial_complete("only", {"epoch": 1, METRIC: float("-inf"), "ended_itself": "diverged"})
    assert [t.state.name for t in trials()] == ["FAIL"]


def test_a_grid_search_ends_without_warnings(caplog):
    """Optuna's GridSampler stops the study when the grid is done, which raises outside Optuna's optimize loop;
    Ray's OptunaSearch printed that as a warning at the end of every grid search (every ablation)."""
    spec = validate_spec({"name": "g", "model": "mf", "metric": METRIC, "fixed": {"k": [K]}, "search": {"sampler": "grid"},
                          "params": {"lr": {"type": "categorical", "choices": [0.01, 0.02]}}}, "test")
    searcher, trials = _searcher(sampler=optuna_sampler(spec),
                                 lr=optuna.distributions.CategoricalDistribution([0.01, 0.02]))
    with caplog.at_level("WARNING"):
        for trial_id in ("a", "b"):
            searcher.suggest(trial_id)
            searcher.on_trial_complete(trial_id, {"epoch": EPOCHS, METRIC: 0.1})
    assert sorted(t.params["lr"] for t in trials()) == [0.01, 0.02]
    assert [t.state.name for t in trials()] == ["COMPLETE", "COMPLETE"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def _experiment(tmp_path, name="exp", **spec):
    directory = tmp_path / name
    experiment = validate_spec({"name": name, "model": "mf", "metric": METRIC, "storage": str(tmp_path),
                                "fixed": {"k": [K], "epochs": 2}, **spec}, "test")
    save_spec(str(directory), experiment)
    return experiment, str(directory)


def test_settle_ends_the_trials_ray_ended_and_leaves_unfinished_ones_running(tmp_path):
    spec, directory = _experiment(tmp_path)
    for trial_id in ("stopped", "errored", "unfinished", "done"):
        write_trial(directory, trial_id, Hyperparameters(k=[K]), [{METRIC: 0.1}],
                    stop_reason="finished" if trial_id == "done" else None)
    statuses = {"stopped": "TERMINATED", "errored": "ERROR", "unfinished": "RUNNING", "done": "TERMINATED"}
    summary = settle(spec, directory, statuses, expected_trials=4)
    reasons = dict(zip(summary.trials["trial_id"], summary.trials["stop_reason"]))
    assert reasons == {"done": "finished", "stopped": "early_stopped", "errored": "failed", "unfinished": "running"}
    assert summary.interrupted and summary.exit_code == 130
    assert summary.study_path is not None


def test_prune_checkpoints_keeps_each_trials_newest(tmp_path):
    for trial_id in ("a", "b"):
        for n in (1, 2, 10):
            (tmp_path / trial_id / f"checkpoint_{n:06d}").mkdir(parents=True)
    prune_checkpoints(str(tmp_path), ["a"])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["checkpoint_000010"]
    assert len(list((tmp_path / "b").iterdir())) == 3  # not ended: untouched


def test_base_takes_the_best_finished_trials_configuration_except_what_is_set_or_searched(tmp_path):
    _, base_dir = _experiment(tmp_path, "base")
    write_trial(base_dir, "best", Hyperparameters(k=[K], lr=0.05, embedding_dim=32, weight_decay=0.01), [{METRIC: 0.4}])
    write_trial(base_dir, "worse", Hyperparameters(k=[K], lr=0.01, embedding_dim=16), [{METRIC: 0.3}])
    write_trial(base_dir, "stopped", Hyperparameters(k=[K], lr=0.09), [{METRIC: 0.9}], stop_reason="early_stopped")
    spec, _ = _experiment(tmp_path, "ablation", fixed={"k": [K], "embedding_dim": 8},
                          params={"weight_decay": {"type": "categorical", "choices": [0.0, 0.1]}})
    fixed = with_base(spec, base_dir).fixed
    assert (fixed.lr, fixed.embedding_dim, fixed.weight_decay) == (0.05, 8, Hyperparameters().weight_decay)


def test_base_without_a_finished_trial_is_one_line(tmp_path):
    from tuner.errors import ExperimentError

    _, base_dir = _experiment(tmp_path, "base")
    write_trial(base_dir, "stopped", Hyperparameters(k=[K]), [{METRIC: 0.9}], stop_reason="early_stopped")
    spec, _ = _experiment(tmp_path, "next")
    with pytest.raises(ExperimentError, match="no finished trial to take a configuration from"):
        with_base(spec, base_dir)


def test_progress_lines_name_each_ended_trial_its_best_epoch_the_runs_best_and_the_time_left():
    from tuner.tuning.progress import Tally
    from tuner.vocabulary import StopReason

    tally = Tally(METRIC, "max", expected=4, ended_before=1, started=100.0)
    for epoch, value in [(1, 0.2), (2, 0.3), (3, 0.25)]:
        tally.offer("a", {"epoch": epoch, METRIC: value, "val/users": 5.0})
    tally.offer("b", {"epoch": 1, METRIC: 0.9, "val/users": 5.0})
    tally.offer("c", {"epoch": 1, METRIC: float("-inf"), "ended_itself": "diverged"})
    first = tally.line("a", StopReason.FINISHED, {"lr": 0.0123456, "num_layers": 2}, now=110.0)
    assert first == (f"[2/4] a finished: {METRIC} 0.3000 at epoch 2; run's best 0.3000 (a); about 20 s left; "
                     "lr=0.01235 num_layers=2")
    stopped = tally.line("b", StopReason.EARLY_STOPPED, {"lr": 0.1, "samples_per_user": None}, now=120.0)
    assert "b early-stopped: " in stopped and "run's best 0.3000 (a)" in stopped  # never ranked as finished
    assert stopped.endswith("lr=0.1 samples_per_user=null")  # as the spec and the report write it
    last = tally.line("c", StopReason.DIVERGED, {"lr": 1.0}, now=130.0)
    assert last.startswith(f"[4/4] c diverged: {METRIC} -;") and "left" not in last


def test_the_time_left_comes_from_measured_epoch_times_and_the_epochs_left():
    """The ETA was far off early (said 88 s, took 10 s): trial counts say little while the first trials run."""
    from tuner.tuning.progress import Tally
    from tuner.vocabulary import StopReason

    # 5 trials of 10 epochs, 2 at once; an epoch takes 1 s. Trial a ended after 10 epochs, b has run 4.
    tally = Tally(METRIC, "max", expected=5, started=0.0, epochs=10, concurrency=2)
    tally.offer("a", {"epoch": 10, "time_total_s": 10.0, METRIC: 0.3})
    tally.offer("b", {"epoch": 4, "time_total_s": 4.0, METRIC: 0.2})
    line = tally.line("a", StopReason.FINISHED, {}, now=10.0)
    # left: b's 6 epochs and 3 trials x 10 epochs = 36 epoch-seconds over 2 trials at once
    assert "about 18 s left" in line
    # with early stopping, a trial is expected to run as many epochs as the ended trials did on average
    tally.offer("c", {"epoch": 2, "time_total_s": 2.0, METRIC: 0.1})
    line = tally.line("c", StopReason.EARLY_STOPPED, {}, now=12.0)
    # (10 + 2) / 2 = 6 epochs a trial: b's 2 left and 2 trials not started x 6 = 14 epoch-seconds over 2 at once
    assert "about 7 s left" in line


def test_a_warm_start_from_a_missing_experiment_is_one_line_before_anything_runs(tmp_path):
    from tuner.errors import ExperimentError
    from tuner.tuning.run import run_experiment

    spec, _ = _experiment(tmp_path, "warm", params={"lr": {"type": "float", "low": 1e-3, "high": 0.1}},
                          search={"warm_start": {"experiment": "nope"}})
    with pytest.raises(ExperimentError, match="nope: not a tuner experiment"):
        run_experiment(spec)


def test_a_moved_unfinished_experiment_is_refused_before_anything_runs(tmp_path):
    """Ray Tune's saved search keeps the old location and would create the next trials there."""
    from tests.fake_experiment import ablation_spec, write_trial
    from tuner.errors import ExperimentError
    from tuner.recsys.hyperparameters import Hyperparameters
    from tuner.tuning.run import run_experiment

    directory = tmp_path / "new-home" / "abl"
    spec = ablation_spec(str(directory))
    write_trial(str(directory), "t1", Hyperparameters(k=[10]), [{"val/recall@10": 0.1}], stop_reason=None)
    (directory / "provenance.json").write_text(json.dumps({"started_at": str(tmp_path / "old-home" / "abl")}))
    with pytest.raises(ExperimentError, match=r"was started at .*old-home/abl.*move it back to resume it"):
        run_experiment(spec)


def test_state_saved_by_older_tuners_still_restores():
    """tuner.pkl and the searcher's state of an experiment started by an older tuner name tuner.search /
    tuner.trainable (before the layer packages), or tuner.tuning.search for the searcher, its sampler and the run's
    callbacks (before they had modules of their own)."""
    from tuner.tuning import callbacks, mlflow_logging, restore, searcher, trainable

    restore._accept_state_saved_by_older_tuner()
    assert pickle.loads(b"ctuner.search\nEpochOptunaSearch\n.") is searcher.EpochOptunaSearch  # protocol 0: module, name
    assert pickle.loads(b"ctuner.trainable\ntrain_trial\n.") is trainable.train_trial
    for name, module in [("EpochOptunaSearch", searcher), ("AskAndTellGridSampler", searcher),
                         ("RecordStopReasons", callbacks), ("StopOnStorageFault", callbacks),
                         ("MetricNamesForMLflow", mlflow_logging)]:
        assert pickle.loads(f"ctuner.tuning.search\n{name}\n.".encode()) is getattr(module, name)
    # saved while the MLflow callback sat beside the others (it has its own module, imported only when asked for)
    assert pickle.loads(b"ctuner.tuning.callbacks\nMetricNamesForMLflow\n.") is mlflow_logging.MetricNamesForMLflow


def test_how_a_trial_ended_is_decided_once_from_its_last_report():
    """The rule the records' callback, the progress lines and the live search share (vocabulary.how_it_ended)."""
    from tuner.vocabulary import StopReason, how_it_ended

    assert how_it_ended({"epoch": EPOCHS}, EPOCHS) is StopReason.FINISHED
    assert how_it_ended({"epoch": 4}, EPOCHS) is StopReason.EARLY_STOPPED
    assert how_it_ended(None, EPOCHS) is StopReason.EARLY_STOPPED
    assert how_it_ended({"epoch": 3, "ended_itself": "collapsed"}, EPOCHS) is StopReason.COLLAPSED
    assert how_it_ended({"epoch": 3, "ended_itself": "diverged"}, EPOCHS) is StopReason.DIVERGED
    assert how_it_ended({"epoch": EPOCHS}, EPOCHS, errored=True) is StopReason.FAILED
