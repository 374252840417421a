"""Optuna's plots of a study (tuner.analysis.plots.study_plots)."""

import warnings

import matplotlib.pyplot as plt
import optuna

from tuner.analysis import plots


def _study(values_of_a_constant_parameter):
    study = optuna.create_study(direction="maximize")
    distributions = {"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
                     "samples_per_user": optuna.distributions.CategoricalDistribution([100, 200])}
    for i, lr in enumerate([1e-3, 1e-2, 5e-2]):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr, "samples_per_user": values_of_a_constant_parameter}, distributions=distributions,
            value=0.1 + 0.01 * i))
    return study


def test_a_parameter_every_trial_drew_the_same_value_is_plotted_without_warnings(tmp_path):
    """A short search often draws one value of a parameter in every trial: its axis has no extent, which
    matplotlib widens with a UserWarning that `tuner report` must not print."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = plots.study_plots(_study(100), ["lr", "samples_per_user"], ["lr", "samples_per_user"], tmp_path)
    assert [file for file, _ in made] == ["history.png", "importances.png", "parallel.png", "slice.png", "contour.png"]
    assert all((tmp_path / file).stat().st_size > 0 for file, _ in made)


def test_optunas_style_stays_in_optunas_plots(tmp_path):
    """Optuna's matplotlib plots switch to the ggplot style; the report's own plots, drawn after them, keep tuner's."""
    with plt.rc_context({"axes.facecolor": "white"}):
        plots.study_plots(_study(100), ["lr"], ["lr"], tmp_path)
        assert plt.rcParams["axes.facecolor"] == "white"
