"""`tuner report`: what an experiment's report says — an overview, the ablation or tuning results with baselines,
significance and plots, and how it was made — from `Experiment.open(path)`. document.py writes it out as
report.md, report.html (images embedded) and tables/*.csv; plots go to plots/*.png.

Reads only the experiment folder's files: no Ray, no torch, so a copied folder works. The same records give
byte-identical markdown and CSV.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import optuna
import pandas as pd

from tuner import storage
from tuner.analysis import plots
from tuner.analysis.document import Section, write_document
from tuner.analysis.reproducibility import reproducibility_section
from tuner.analysis.summarize import (
    TRUSTED_TRIALS,
    ablation_columns,
    ablation_table,
    below_baselines,
    counts_text,
    flag_degenerate,
    format_value,
    parameter_importances,
    pareto_front,
    per_user_wilcoxon,
    resource_time,
    seed_paired_pvalues,
    usable_trials,
    weak_search_warning,
)
from tuner.errors import NoResultsError
from tuner.experiment.read import Experiment
from tuner.experiment.study_export import build_study
from tuner.vocabulary import (
    PRODUCED_METRICS,
    REPORT_DIR,
    RUNNING,
    Column,
    StopReason,
    metric_key,
    param_column,
    parse_metric_key,
)


def write_report(experiment: Experiment, out_dir: str | None = None) -> Path:
    """Write the report; returns its folder. Raises NoResultsError (after writing a report that says so)
    when no trial produced metrics."""
    spec = experiment.spec
    if out_dir is None:  # beside the records, or here when they are in an object store
        out_dir = (f"{spec.name}-report" if storage.is_uri(experiment.directory)
                   else os.path.join(experiment.directory, REPORT_DIR))
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    counts = experiment.counts
    sections = [_overview(experiment)]
    has_results = sum(counts[reason] for reason in PRODUCED_METRICS) > 0
    if has_results:
        if spec.ablated():
            for factor in spec.ablated():
                sections.append(_ablation(experiment, factor, out))
        else:
            sections.append(_tuning(experiment, out))
    else:
        sections[0].text(
            f"**No trial produced results**: {counts[StopReason.FAILED]} failed, {counts[StopReason.DIVERGED]} "
            f"diverged, {counts[RUNNING]} never ended. There is nothing to tabulate or plot; see the trials' error "
            "files in the experiment folder."
        )
    sections.append(reproducibility_section(experiment))
    write_document(f"Report: {spec.name}", sections, out)
    if not has_results:
        raise NoResultsError(f"{experiment.directory}: no trial of {spec.name} produced results (report written to {out})")
    return out


# ---- sections -----------------------------------------------------------------------------------------------


def _overview(experiment: Experiment) -> Section:
    spec, counts, errors = experiment.spec, experiment.counts, experiment.errors
    section = Section("Overview")
    spent = resource_time(experiment.trials, experiment.trial_resources)
    section.text(
        f"Experiment `{spec.name}`: model `{spec.model}` on `{spec.dataset.name}`, selected on `{spec.metric}` "
        f"({spec.mode}). Trials: {sum(counts.values())} — {counts_text(counts)}"
        + f". Time spent: {_duration(spent['trial_seconds'])} of trials, {_duration(spent['cpu_seconds'])} CPU, "
        f"{_duration(spent['gpu_seconds'])} GPU. Every metric is read at the trial's best-validation epoch."
    )
    if errors:
        section.text("Trials that failed for good, and the error that ended each (`<trial id>/error.txt` has the "
                     "whole traceback):")
        section.table("failed_trials", pd.DataFrame({"trial": list(errors), "error": list(errors.values())}))
    if warning := weak_search_warning(experiment.trials, experiment.baselines, spec.metric, spec.mode):
        section.text(f"**Warning: {warning}.**")
    unreadable = experiment.records.attrs.get("unreadable")
    if unreadable:
        section.text("**Records that could not be read** — the trials they hold are missing from every table "
                     "below: " + ", ".join(f"`{path}`" for path in unreadable))
    return section


def _ablation(experiment: Experiment, factor: str, out: Path) -> Section:
    spec, records, trials = experiment.spec, experiment.records, experiment.trials
    k = parse_metric_key(spec.metric).k
    section = Section(f"Ablation: {factor}")
    table = ablation_table(trials, factor, spec.metric, spec.mode, experiment.baselines)
    usable = usable_trials(trials, factor)
    best_label = table.loc[table["best"], Column.FACTOR_VALUE].iloc[0]
    pvalues = seed_paired_pvalues(trials, factor, best_label, spec.metric)
    ranked = table[~table["is_baseline"]].sort_values(spec.metric, ascending=spec.mode != "max")
    runner_up = ranked[Column.FACTOR_VALUE].iloc[1] if len(ranked) > 1 else None
    wilcoxon = (
        per_user_wilcoxon(experiment.per_user, trials, factor, best_label, runner_up, spec.metric)
        if runner_up is not None else float("nan")
    )
    flags = flag_degenerate(table, spec.metric)
    collapsed = set(usable.loc[usable[Column.STOP_REASON] == StopReason.COLLAPSED, Column.FACTOR_VALUE])
    flags = pd.Series([
        "; ".join(filter(None, [flag, "training collapsed (BPR loss at ln 2: every item scored alike)"]))
        if value in collapsed else flag for flag, value in zip(flags, table[Column.FACTOR_VALUE])
    ], index=table.index)

    shown = pd.DataFrame({"row": table["row"] + table["best"].map({True: " (best)", False: ""})})
    for column in ablation_columns(k):
        shown[column] = [_mean_std(m, s) for m, s in zip(table[column], table[f"{column} std"])]
    shown["seeds"] = table["seeds"].astype(int)
    shown["seconds (mean)"] = table["seconds"].map(_seconds)
    shown["p (seeds, vs best)"] = [
        "" if b or base else _p(pvalues.get(v))
        for v, b, base in zip(table[Column.FACTOR_VALUE], table["best"], table["is_baseline"])
    ]
    shown["p (users, vs best)"] = [_p(wilcoxon) if v == runner_up else "" for v in table[Column.FACTOR_VALUE]]
    shown["flag"] = flags
    section.text(
        f"Top-{k} precision and recall, mean ± std over seeds, each trial at its best-validation epoch (*seconds*: "
        f"a trial's mean training and evaluation time, what the value costs); the best "
        f"value has the best mean `{spec.metric}`. *p (seeds)*: paired t-test across seeds of test recall@{k} "
        f"against the best value. *p (users)*: Wilcoxon signed-rank test of per-user test recall@{k} between the "
        f"best value and the runner-up, users paired within each seed. A *flag* marks a row not to trust: not "
        f"better than MostPop, the very same metrics as another value (everyone gets the same popular items), or a "
        f"training that collapsed (its BPR loss sat at ln 2, and it was ended there)."
        + (f" {len(trials) - len(usable)} trial(s) failed or diverged and are left out." if len(trials) > len(usable) else "")
    )
    section.table(f"ablation_{factor}", shown)
    plots.ablation_values(table, factor, k, out / "plots" / f"ablation_{factor}.png")
    section.image(f"plots/ablation_{factor}.png", f"{factor}: validation and test precision/recall@{k} per value")
    plots.ablation_curves(records, usable, factor, spec.metric, out / "plots" / f"curves_{factor}.png")
    section.image(f"plots/curves_{factor}.png", f"{factor}: {spec.metric} and training loss per epoch")
    return section


def _tuning(experiment: Experiment, out: Path) -> Section:
    spec, records, trials, baselines = experiment.spec, experiment.records, experiment.trials, experiment.baselines
    k = parse_metric_key(spec.metric).k
    test_columns = [metric_key("test", m, k) for m in ("precision", "recall", "ndcg")]
    section = Section("Tuning")
    searched = list(spec.searched())
    top = trials[trials[Column.STOP_REASON].isin(PRODUCED_METRICS)].head(10)
    shown = pd.DataFrame({
        "trial": top[Column.TRIAL_ID],
        "stop reason": top[Column.STOP_REASON],
        "epochs": top[Column.EPOCHS_RUN].astype(int),
        "best epoch": top[Column.BEST_EPOCH].astype(int),
        spec.metric: top[spec.metric].map(_f),
        **{column: top[column].map(_f) for column in test_columns},
        "seconds": top[Column.TOTAL_SECONDS].map(_seconds),
        **{name: top[param_column(name)].map(format_value) for name in searched},
    })
    if not baselines.empty:
        shown["flag"] = below_baselines(top, baselines, spec.metric, spec.mode)
    section.text("Best trials: finished trials first (ranked by validation), then early-stopped ones, which are "
                 "never ranked as if they had finished. Test metrics at each trial's best-validation epoch."
                 + (f" A *flag* names the baselines a trial does not beat on `{spec.metric}`." if not baselines.empty
                    else ""))
    section.table("best_trials", shown)
    if not baselines.empty:
        section.text("Baselines on the same split (MF at its best-validation epoch): a trial that does not beat them "
                     "has learnt nothing the popularity of items does not already say.")
        section.table("baselines", pd.DataFrame({
            Column.BASELINE: baselines[Column.BASELINE],
            Column.SEED: baselines[Column.SEED].map(lambda s: "-" if pd.isna(s) else str(int(s))),
            spec.metric: baselines[spec.metric].map(_f),
            **{column: baselines[column].map(_f) for column in test_columns},
        }))
    _pareto(section, experiment, out)
    importances = parameter_importances(spec, records, trials)
    few = importances.attrs["trials"] < TRUSTED_TRIALS
    if not importances.empty:
        section.text(f"Parameter importances (Optuna's fANOVA on {importances.attrs['basis']}): the share of the "
                     f"variation of `{spec.metric}` each searched parameter explains."
                     + (f" **With {importances.attrs['trials']} trials this ranking means little**: fANOVA fits a "
                        f"forest to them, and a few more trials can reorder it (trust it from about "
                        f"{TRUSTED_TRIALS})." if few else ""))
        section.table("importances", importances.assign(importance=importances["importance"].map(_f)))
    else:
        section.text("Parameter importances need at least two trials with results whose searched values vary.")
    study = build_study(spec, records, trials)
    finished = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    if finished < TRUSTED_TRIALS:
        section.text(f"Only {finished} trial(s) finished: the history below has that many points, and the slice "
                     "and parallel-coordinate plots show single trials, not a trend"
                     + ("; the contour of two parameters needs more trials than that, and is left out."
                        if len(searched) >= 2 else "."))
    ranked = list(importances["parameter"]) if finished >= TRUSTED_TRIALS else []  # no contour from a few points
    for file, caption in plots.study_plots(study, searched, ranked, out / "plots"):
        section.image(f"plots/{file}", caption)
    plots.learning_curves(records, list(top[Column.TRIAL_ID].head(5)), spec.metric, out / "plots" / "learning_curves.png")
    section.image("plots/learning_curves.png", f"{spec.metric} per epoch of the top trials")
    return section


def _pareto(section: Section, experiment: Experiment, out: Path) -> None:
    spec, trials = experiment.spec, experiment.trials
    front = pareto_front(trials, spec.metric, spec.mode)
    if front.empty:
        return
    cost = experiment.trial_resources
    section.text("Quality against cost: the trials that no other trial beats on validation in fewer seconds "
                 "(cheapest first). A trial's seconds are its training and evaluation time; CPU and GPU seconds are "
                 "those times what the trial held. Early-stopped trials count with the time they ran.")
    section.table("pareto", pd.DataFrame({
        "trial": front[Column.TRIAL_ID],
        spec.metric: front[spec.metric].map(_f),
        "seconds": front[Column.TOTAL_SECONDS].map(_seconds),
        "CPU s": (front[Column.TOTAL_SECONDS] * cost["cpu"]).map(_seconds),
        "GPU s": (front[Column.TOTAL_SECONDS] * cost["gpu"]).map(_seconds),
        "stop reason": front[Column.STOP_REASON],
        **{name: front[param_column(name)].map(format_value) for name in spec.searched()},
    }))
    usable = trials[trials[Column.STOP_REASON].isin(PRODUCED_METRICS)].dropna(subset=[Column.TOTAL_SECONDS])
    plots.pareto(usable, front, spec.metric, out / "plots" / "pareto.png")
    section.image("plots/pareto.png", f"{spec.metric} against trial seconds; the line is the Pareto front")


# ---- number formats -----------------------------------------------------------------------------------------


def _seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


def _f(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _mean_std(mean, std) -> str:
    return _f(mean) if std is None or (isinstance(std, float) and math.isnan(std)) else f"{mean:.4f} ± {std:.4f}"


def _p(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3g}"
