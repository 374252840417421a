"""`tuner report`: records -> report.md, report.html (images embedded), plots/*.png and tables/*.csv.

Reads only the experiment folder's files (records, per-user metrics, baselines, tuner-spec.json,
provenance.json): no Ray, so a copied folder works. The same records give byte-identical markdown and CSV.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tuner import plots, provenance, storage
from tuner import records as records_module
from tuner.baselines import load_baselines
from tuner.errors import TunerError
from tuner.experiment import load_saved_spec, trial_errors
from tuner.spec import ExperimentSpec
from tuner.study_export import build_study
from tuner.summarize import (
    format_value,
    ABLATION_COLUMNS,
    failed_trial_errors,
    ablation_table,
    flag_degenerate,
    metric_k,
    parameter_importances,
    per_user_wilcoxon,
    resource_time,
    seed_paired_pvalues,
    stop_reason_counts,
    trial_table,
    usable_trials,
)


class NoResultsError(TunerError):
    """The experiment has no trial with metrics: the report says so and the command fails."""

    exit_code = 1


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # ("text", str) | ("table", name, DataFrame) | ("image", file, caption)

    def text(self, value: str) -> None:
        self.blocks.append(("text", value))

    def table(self, name: str, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", name, frame))

    def image(self, file: str, caption: str) -> None:
        self.blocks.append(("image", file, caption))


def write_report(experiment_dir: str, out_dir: str | None = None) -> Path:
    """Write the report; returns its folder. Raises NoResultsError (after writing a report that says so)
    when no trial produced metrics."""
    spec = load_saved_spec(experiment_dir)
    if out_dir is None:  # beside the records, or here when they are in an object store
        out_dir = f"{spec.name}-report" if storage.is_uri(experiment_dir) else os.path.join(experiment_dir, "report")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    records = records_module.load(experiment_dir)
    trials = trial_table(records, spec.metric, spec.mode)
    errors = failed_trial_errors(trials, trial_errors(experiment_dir))
    counts = stop_reason_counts(trials, errors)
    sections = [_overview(spec, trials, counts, provenance.trial_resources(experiment_dir, spec), errors)]
    if records.attrs.get("unreadable"):
        sections[0].text("**Records that could not be read** — the trials they hold are missing from every table "
                         "below: " + ", ".join(f"`{path}`" for path in records.attrs["unreadable"]))
    has_results = counts["finished"] + counts["early_stopped"] > 0
    if has_results:
        if spec.ablated():
            for factor in spec.ablated():
                sections.append(_ablation(spec, factor, records, trials, experiment_dir, out))
        else:
            sections.append(_tuning(spec, records, trials, out, load_baselines(experiment_dir)))
    else:
        sections[0].text(
            f"**No trial produced results**: {counts['failed']} failed, {counts['diverged']} diverged, "
            f"{counts['running']} never ended. There is nothing to tabulate or plot; see the trials' error "
            "files in the experiment folder."
        )
    sections.append(_reproducibility(spec, records, experiment_dir))
    _write_tables(sections, out)
    _write(out / "report.md", _markdown(spec, sections))
    _write(out / "report.html", _html(spec, sections, out))
    if not has_results:
        raise NoResultsError(f"{experiment_dir}: no trial of {spec.name} produced results (report written to {out})")
    return out


# ---- sections -----------------------------------------------------------------------------------------------


def _overview(spec: ExperimentSpec, trials: pd.DataFrame, counts: dict, trial_resources: dict, errors: dict) -> Section:
    section = Section("Overview")
    spent = resource_time(trials, trial_resources)
    section.text(
        f"Experiment `{spec.name}`: model `{spec.model}` on `{spec.dataset.name}`, selected on `{spec.metric}` "
        f"({spec.mode}). Trials: {sum(counts.values())} — {counts['finished']} finished, {counts['early_stopped']} "
        f"early-stopped, {counts['failed']} failed, {counts['diverged']} diverged"
        + (f", {counts['running']} unfinished" if counts["running"] else "")
        + f". Time spent: {_duration(spent['trial_seconds'])} of trials, {_duration(spent['cpu_seconds'])} CPU, "
        f"{_duration(spent['gpu_seconds'])} GPU. Every metric is read at the trial's best-validation epoch."
    )
    if errors:
        section.text("Trials that failed for good, and the error that ended each (`<trial id>/error.txt` has the "
                     "whole traceback):")
        section.table("failed_trials", pd.DataFrame({"trial": list(errors), "error": list(errors.values())}))
    return section


def _ablation(spec, factor, records, trials, experiment_dir, out) -> Section:
    k = metric_k(spec.metric)
    section = Section(f"Ablation: {factor}")
    baselines = load_baselines(experiment_dir)
    table = ablation_table(trials, factor, spec.metric, spec.mode, baselines)
    usable = usable_trials(trials, factor)
    best_label = table.loc[table["best"], "value"].iloc[0]
    pvalues = seed_paired_pvalues(trials, factor, best_label, spec.metric)
    ranked = table[~table["baseline"]].sort_values(spec.metric, ascending=spec.mode != "max")
    runner_up = ranked["value"].iloc[1] if len(ranked) > 1 else None
    wilcoxon = (
        per_user_wilcoxon(records_module.load_per_user(experiment_dir), trials, factor, best_label, runner_up, spec.metric)
        if runner_up is not None else float("nan")
    )
    flags = flag_degenerate(table, spec.metric)

    shown = pd.DataFrame({"row": table["row"] + table["best"].map({True: " (best)", False: ""})})
    for column in ABLATION_COLUMNS:
        shown[f"{column}@{k}"] = [
            _mean_std(m, s) for m, s in zip(table[f"{column}@{k}"], table[f"{column}@{k} std"])
        ]
    shown["seeds"] = table["seeds"].astype(int)
    shown["p (seeds, vs best)"] = [
        "" if b or base else _p(pvalues.get(v)) for v, b, base in zip(table["value"], table["best"], table["baseline"])
    ]
    shown["p (users, vs best)"] = [_p(wilcoxon) if v == runner_up else "" for v in table["value"]]
    shown["flag"] = flags
    section.table(f"ablation_{factor}", shown)
    section.text(
        f"Top-{k} precision and recall, mean ± std over seeds, each trial at its best-validation epoch; the best "
        f"value has the best mean `{spec.metric}`. *p (seeds)*: paired t-test across seeds of test recall@{k} "
        f"against the best value. *p (users)*: Wilcoxon signed-rank test of per-user test recall@{k} between the "
        f"best value and the runner-up, users paired within each seed. A *flag* marks a row not to trust: not "
        f"better than MostPop, or the very same metrics as another value (everyone gets the same popular items)."
        + (f" {len(trials) - len(usable)} trial(s) failed or diverged and are left out." if len(trials) > len(usable) else "")
    )
    plots.ablation_values(table, factor, k, out / "plots" / f"ablation_{factor}.png")
    section.image(f"plots/ablation_{factor}.png", f"{factor}: validation and test precision/recall@{k} per value")
    plots.ablation_curves(records, usable, factor, spec.metric, out / "plots" / f"curves_{factor}.png")
    section.image(f"plots/curves_{factor}.png", f"{factor}: {spec.metric} and training loss per epoch")
    return section


def _tuning(spec, records, trials, out, baselines: pd.DataFrame) -> Section:
    k = metric_k(spec.metric)
    section = Section("Tuning")
    searched = list(spec.searched())
    top = trials[trials["stop_reason"].isin(["finished", "early_stopped"])].head(10)
    shown = pd.DataFrame({
        "trial": top["trial_id"],
        "stop reason": top["stop_reason"],
        "epochs": top["epochs_run"].astype(int),
        "best epoch": top["best_epoch"].astype(int),
        spec.metric: top[spec.metric].map(_f),
        **{f"test/{m}@{k}": top[f"test/{m}@{k}"].map(_f) for m in ("precision", "recall", "ndcg")},
        **{name: top[f"param_{name}"].map(format_value) for name in searched},
    })
    section.table("best_trials", shown)
    section.text("Best trials: finished trials first (ranked by validation), then early-stopped ones, which are "
                 "never ranked as if they had finished. Test metrics at each trial's best-validation epoch.")
    if not baselines.empty:
        section.table("baselines", pd.DataFrame({
            "baseline": baselines["baseline"],
            "seed": baselines["seed"].map(lambda s: "-" if pd.isna(s) else str(int(s))),
            spec.metric: baselines[spec.metric].map(_f),
            **{f"test/{m}@{k}": baselines[f"test/{m}@{k}"].map(_f) for m in ("precision", "recall", "ndcg")},
        }))
        section.text("Baselines on the same split (MF at its best-validation epoch): a trial that does not beat them "
                     "has learnt nothing the popularity of items does not already say.")
    importances = parameter_importances(spec, records, trials)
    if not importances.empty:
        section.table("importances", importances.assign(importance=importances["importance"].map(_f)))
    else:
        section.text("Parameter importances need at least two finished trials with varying parameters.")
    study = build_study(spec, records, trials)
    for file, caption in plots.study_plots(study, searched, list(importances["parameter"]), out / "plots"):
        section.image(f"plots/{file}", caption)
    plots.learning_curves(records, list(top["trial_id"].head(5)), spec.metric, out / "plots" / "learning_curves.png")
    section.image("plots/learning_curves.png", f"{spec.metric} per epoch of the top trials")
    return section


def _reproducibility(spec: ExperimentSpec, records: pd.DataFrame, experiment_dir: str) -> Section:
    section = Section("Reproducibility")
    origin = provenance.load(experiment_dir)
    split_hashes = sorted(records["split_hash"].unique()) if not records.empty else []
    seeds = sorted(int(s) for s in records["seed"].unique()) if not records.empty else []
    rows = [
        ("dataset", f"{spec.dataset.name} (rating_threshold {spec.dataset.rating_threshold}, "
                    f"max_users {spec.dataset.max_users})"),
        ("split", f"{spec.dataset.split.kind}, test {spec.dataset.split.test}, val {spec.dataset.split.val}, "
                  f"seed {spec.dataset.split.seed}; hash {', '.join(split_hashes) or '-'}"),
        ("training seeds", ", ".join(map(str, seeds)) or "-"),
        ("command", origin.get("command", "unknown")),
        ("resumed with", "; ".join(origin.get("resumed_with", [])) or "-"),
        ("tuner git revision", origin.get("git_revision", "unknown")),
        ("python", origin.get("python", "unknown")),
        *((f"{name}", version) for name, version in sorted(origin.get("packages", {}).items())),
    ]
    section.table("reproducibility", pd.DataFrame(rows, columns=["what", "value"]))
    _trial_code(section, origin, provenance.trial_manifests(experiment_dir))
    return section


def _code(facts: dict) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in sorted(facts.get("packages", {}).items()))
    return f"tuner {facts.get('git_revision', 'unknown')}; python {facts.get('python', '?')}; {packages}"


def _trial_code(section: Section, origin: dict, manifests: list[dict]) -> None:
    """Whether the trials' workers ran the code and packages above (each trial start writes a manifest)."""
    if not manifests:
        return
    starts = pd.DataFrame({"code": [_code(m) for m in manifests], "trial": [m["trial_id"] for m in manifests]})
    groups = starts.groupby("code", sort=True)["trial"].agg(["size", "nunique"]).reset_index()
    if len(groups) == 1 and groups["code"].iloc[0] == _code(origin):
        section.text(f"All {len(manifests)} trial starts (`manifests/`) ran this code and these packages.")
        return
    section.text(f"**The trials did not all run the code and packages above**: {len(groups)} combination(s) over "
                 f"{len(manifests)} trial starts (each start's are in `manifests/`).")
    section.table("trial_code", groups.rename(columns={"size": "trial starts", "nunique": "trials"}))


# ---- rendering ----------------------------------------------------------------------------------------------


def _write_tables(sections: list[Section], out: Path) -> None:
    for section in sections:
        for block in section.blocks:
            if block[0] == "table":
                _write(out / "tables" / f"{block[1]}.csv", block[2].to_csv(index=False, lineterminator="\n"))


def _markdown(spec: ExperimentSpec, sections: list[Section]) -> str:
    lines = [f"# Report: {spec.name}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if block[0] == "text":
                lines += [block[1], ""]
            elif block[0] == "table":
                lines += [_markdown_table(block[2]), "", f"(CSV: `tables/{block[1]}.csv`)", ""]
            else:
                lines += [f"![{block[2]}]({block[1]})", ""]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, td:last-child { text-align: left; }
img { max-width: 100%; display: block; margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
"""


def _html(spec: ExperimentSpec, sections: list[Section], out: Path) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report: {html.escape(spec.name)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>Report: {html.escape(spec.name)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if block[0] == "text":
                parts.append(f"<p>{_inline(block[1])}</p>")
            elif block[0] == "table":
                parts.append(block[2].to_html(index=False, escape=True, border=0))
            else:
                data = base64.b64encode((out / block[1]).read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(block[2])}'>"
                             f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _inline(text: str) -> str:
    """The little markdown the texts use: `code`, **bold** and *italic*."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", escaped)


def _write(path: Path, text: str) -> None:
    storage.write_text(str(path), text)  # atomic, and as readable as any new file (the umask decides)


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
