"""How a run starts (tuning.start.decide): a pure function of the spec, the flags and what the folder holds."""

import pytest

from tuner.errors import DataError, ExperimentError
from tuner.spec import validate_spec
from tuner.tuning.start import Folder, Start, decide

DIRECTORY = "/runs/exp"


def _spec(num_samples=4, **changes):
    return validate_spec({"name": "exp", "model": "mf", "search": {"num_samples": num_samples}, **changes}, "test")


def _folder(ended=4, running=0, **facts):
    """An experiment of _spec() whose records show `ended` trials ended and `running` unfinished."""
    facts = {"started_at": DIRECTORY, "restorable": True, "has_records": True, **facts}
    return Folder(DIRECTORY, exists=True, saved_spec=_spec(), ended={"finished": ended, "running": running}, **facts)


def test_no_experiment_or_fresh_starts_a_new_run():
    assert decide(_spec(), Folder(DIRECTORY, exists=False)) == (Start.NEW, None)


def test_an_experiment_whose_trials_have_all_ended_has_nothing_to_do():
    assert decide(_spec(), _folder()) == (Start.NOTHING, None)


def test_unfinished_trials_are_resumed_and_so_are_errored_ones_when_asked():
    assert decide(_spec(), _folder(ended=2, running=1)) == (Start.RESUME, None)
    assert decide(_spec(), _folder(), resume_errored=True) == (Start.RESUME, None)
    assert decide(_spec(), _folder(), restart_errored=True) == (Start.RESUME, None)


def test_trials_a_killed_driver_lost_are_run_again_even_when_the_rest_ended():
    assert decide(_spec(), _folder(lost_trials=["t9"])) == (Start.RESUME, None)


def test_more_samples_grow_a_finished_experiment_and_fewer_are_refused():
    start, told = decide(_spec(num_samples=6), _folder())
    assert start is Start.GROW and told is not None and told.search.num_samples == 4
    with pytest.raises(ExperimentError, match="has unfinished trials; finish them first"):
        decide(_spec(num_samples=6), _folder(ended=3, running=1))
    with pytest.raises(ExperimentError, match=r"changed: search.num_samples\); .* \(a search can grow, not shrink\)"):
        decide(_spec(num_samples=2), _folder())


def test_another_spec_is_refused_naming_what_changed():
    with pytest.raises(ExperimentError, match=r"started with another spec \(changed: model\)"):
        decide(_spec(model="lightgcn"), _folder())


def test_damaged_ray_state_starts_again_from_the_records_unless_everything_ended():
    damaged = {"tuner.pkl": "cut short"}
    assert decide(_spec(), _folder(ended=2, running=1, damaged=damaged)) == (Start.FROM_RECORDS, _spec())
    assert decide(_spec(), _folder(damaged=damaged)) == (Start.NOTHING, None)


@pytest.mark.parametrize("facts, error, message", [
    ({"unreadable_records": ["records/t1/epoch=2.parquet"]}, DataError, r"1 record file\(s\) cannot be read"),
    ({"writable_by_others": ["/runs/exp/tuner.pkl (writable by everyone)"]}, ExperimentError, "a pickle runs code"),
    ({"started_at": "/elsewhere/exp"}, ExperimentError, "was started at /elsewhere/exp"),
    ({"restorable": False}, ExperimentError, "has records but Ray never saved its state"),
])
def test_a_folder_that_cannot_be_resumed_as_it_is_is_refused(facts, error, message):
    with pytest.raises(error, match=message):
        decide(_spec(), _folder(ended=2, running=1, **facts))


def test_a_folder_that_never_got_as_far_as_any_record_starts_over():
    assert decide(_spec(), _folder(ended=0, restorable=False, has_records=False)) == (Start.NEW, None)


# ---- read_folder: what the experiment folder holds, read once ------------------------------------------------------


def test_reading_a_folder_without_records_finds_none(tmp_path):
    from tests.fake_experiment import ablation_spec
    from tuner.tuning.start import read_folder

    spec = ablation_spec(str(tmp_path / "exp"))
    folder = read_folder(str(tmp_path / "exp"), spec, fresh=False)
    assert (folder.exists, folder.has_records, folder.unreadable_records, folder.restorable) == (True, False, [], False)
    assert read_folder(str(tmp_path / "exp"), spec, fresh=True) == Folder(str(tmp_path / "exp"), exists=False)


def test_reading_a_folder_counts_how_its_trials_ended_and_names_the_record_files_it_cannot_read(tmp_path):
    from tests.fake_experiment import K, ablation_spec, write_trial
    from tuner.recsys.hyperparameters import Hyperparameters
    from tuner.tuning.start import read_folder

    directory = tmp_path / "exp"
    spec = ablation_spec(str(directory))
    write_trial(str(directory), "t1", Hyperparameters(k=[K]), [{}, {}])
    write_trial(str(directory), "t2", Hyperparameters(k=[K]), [{}], stop_reason=None)
    assert read_folder(str(directory), spec, fresh=False).ended["finished"] == 1
    (damaged := directory / "records" / "t1" / "epoch=1.parquet").write_bytes(damaged.read_bytes()[:100])
    with pytest.warns(UserWarning, match="not a readable parquet file"):
        folder = read_folder(str(directory), spec, fresh=False)
    assert folder.has_records and folder.unreadable_records == ["records/t1/epoch=1.parquet"]
    assert folder.ended["running"] == 1
