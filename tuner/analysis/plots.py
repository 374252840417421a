"""PNG plots for the report (matplotlib, Agg). Each function writes one file and returns nothing."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from tuner.vocabulary import Column, metric_key  # noqa: E402

# no timestamps or software versions in the files: the same records give the same bytes
_SAVE = {"dpi": 110, "metadata": {"Software": None}, "bbox_inches": "tight"}


def _save(figure, path) -> None:
    figure.savefig(path, **_SAVE)
    plt.close(figure)


def ablation_values(table: pd.DataFrame, factor: str, k: int, path) -> None:
    """Precision and recall@K (val and test) against the factor's value, mean ± std over seeds."""
    rows = table[~table["is_baseline"]]
    x = np.arange(len(rows))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric in zip(axes, ("precision", "recall")):
        for split, marker in (("val", "o"), ("test", "s")):
            column = metric_key(split, metric, k)
            axis.errorbar(x, rows[column], yerr=rows[f"{column} std"].fillna(0), marker=marker, capsize=4, label=split)
        for _, baseline in table[table["is_baseline"]].iterrows():
            test = baseline[metric_key("test", metric, k)]
            axis.axhline(test, linestyle="--", linewidth=1, color="grey")
            axis.annotate(f"{baseline['row']} (test)", (x[-1], test), fontsize=7,
                          ha="right", va="bottom", color="grey")
        axis.set_xticks(x, rows[Column.FACTOR_VALUE])
        axis.set_xlabel(factor)
        axis.set_ylabel(f"{metric}@{k}")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(f"{factor}: mean ± std over seeds, each trial at its best-validation epoch")
    _save(figure, path)


def ablation_curves(records: pd.DataFrame, trials: pd.DataFrame, factor: str, metric: str, path) -> None:
    """Validation metric and training loss against the epoch, one line per value (mean over seeds)."""
    labelled = records.merge(trials[[Column.TRIAL_ID, Column.FACTOR_VALUE]], on=Column.TRIAL_ID)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    groups = sorted(labelled.groupby(Column.FACTOR_VALUE, sort=False), key=lambda item: _numeric_first(item[0]))
    for value, group in groups:  # the legend in the values' order: 20, 100, 200, 500
        evaluated = group[group[Column.EVALUATED]].groupby(Column.EPOCH)[metric].mean()
        axes[0].plot(evaluated.index, evaluated.values, marker=".", label=f"{factor}={value}")
        loss = group.groupby(Column.EPOCH)[Column.LOSS].mean()
        axes[1].plot(loss.index, loss.values, label=f"{factor}={value}")
    axes[0].set_ylabel(metric)
    axes[1].set_ylabel("training loss")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("training curves per value (mean over seeds)")
    _save(figure, path)


def _numeric_first(value) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def study_plots(study, parameters: list[str], importances: list[str], folder) -> list[tuple[str, str]]:
    """Optuna's own plots (optuna.visualization.matplotlib) of the experiment's study, as (file, caption) pairs:
    optimisation history, parallel coordinates, slices, and — given `importances`, the parameters ranked (the
    caller leaves them out where too few trials finished for a ranking to mean anything) — their importances and a
    contour of the two most important. A plot Optuna cannot draw for this study (too few complete trials) is left
    out."""
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    wanted: list[tuple[str, str, Callable[[], Any]]] = [
        ("history.png", "optimisation history (complete trials; early-stopped ones are pruned)",
         lambda: optuna_plots.plot_optimization_history(study)),
    ]
    if importances:
        wanted.append(("importances.png", "parameter importances (Optuna fANOVA on the finished trials)",
                       lambda: optuna_plots.plot_param_importances(study, evaluator=evaluator, params=importances)))
    wanted += [
        ("parallel.png", "parallel coordinates of the searched parameters, coloured by the objective",
         lambda: optuna_plots.plot_parallel_coordinate(study, params=parameters)),
        ("slice.png", "the objective against each searched parameter",
         lambda: optuna_plots.plot_slice(study, params=parameters)),
    ]
    if len(importances) >= 2:
        wanted.append(("contour.png", f"contour of the two most important parameters ({importances[0]}, {importances[1]})",
                       lambda: optuna_plots.plot_contour(study, params=importances[:2])))
    made = []
    with warnings.catch_warnings(), plt.rc_context():  # Optuna's plots switch matplotlib to ggplot: for theirs only
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # a parameter every trial drew one value of has an axis without extent: matplotlib widens it, and says so
        warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
        for file, caption, draw in wanted:
            if len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) < 2 and file != "history.png":
                continue
            figure = np.atleast_1d(draw()).flat[0].figure  # Axes or an array of them
            for axis in figure.axes:  # log axes label their minor ticks too, and those collide
                if axis.get_xscale() == "log":
                    axis.xaxis.set_minor_formatter(NullFormatter())
            _save(figure, Path(folder) / file)
            made.append((file, caption))
    return made


def learning_curves(records: pd.DataFrame, trial_ids: list[str], metric: str, path) -> None:
    figure, axis = plt.subplots(figsize=(7, 3.8))
    for trial_id in trial_ids:
        rows = records[(records[Column.TRIAL_ID] == trial_id) & records[Column.EVALUATED]].sort_values(Column.EPOCH)
        axis.plot(rows[Column.EPOCH], rows[metric], marker=".", label=trial_id)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, title="top trials")
    _save(figure, path)


def pareto(trials: pd.DataFrame, front: pd.DataFrame, metric: str, path) -> None:
    """Validation metric against each trial's seconds (training and evaluation); the Pareto front joined and
    labelled."""
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.scatter(trials[Column.TOTAL_SECONDS], trials[metric], s=14, color="grey", alpha=0.6, label="trials")
    axis.plot(front[Column.TOTAL_SECONDS], front[metric], marker="o", color="C0", drawstyle="steps-post",
              label="Pareto front")
    for position, (_, row) in enumerate(front.iterrows()):  # above and below in turn: neighbours' labels overlap
        axis.annotate(str(row[Column.TRIAL_ID]), (row[Column.TOTAL_SECONDS], row[metric]), fontsize=7,
                      xytext=(3, 3) if position % 2 == 0 else (3, -9), textcoords="offset points")
    axis.set_xlabel("trial seconds (training + evaluation)")
    axis.set_ylabel(f"{metric} (best epoch)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    _save(figure, path)
