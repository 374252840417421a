"""What the commands print: the lines and tables `tuner run` and `tuner train` show in the terminal (beside the
CLI; the analysis layer renders reports, not terminals)."""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING, Protocol

from tuner.analysis.summarize import counts_text
from tuner.spec import ExperimentSpec
from tuner.vocabulary import (
    CATALOGUE_METRICS,
    METRICS,
    SPLITS,
    Column,
    metric_key,
    param_column,
    parse_metric_key,
    users_key,
)

if TYPE_CHECKING:
    from tuner.experiment.settle import RunSummary
    from tuner.train_command import TrainOutcome


class Epoch(Protocol):
    """What a printed epoch shows (recsys.training.EpochResult has it)."""

    epoch: int
    loss: float
    train_seconds: float
    eval_seconds: float
    metrics: dict[str, float]


def _epoch_columns(spec: ExperimentSpec) -> list[str]:
    k = parse_metric_key(spec.metric).k
    extra = [metric_key("val", m, k) for m in ("precision", "ndcg")]
    return [spec.metric] + [column for column in extra if column != spec.metric]


def epoch_header(spec: ExperimentSpec) -> str:
    return f"{'epoch':>5} {'loss':>9} {'train s':>8} {'eval s':>7}  " + "  ".join(
        f"{c:>15}" for c in _epoch_columns(spec)
    )


def epoch_row(spec: ExperimentSpec, result: Epoch) -> str:
    row = f"{result.epoch:>5} {result.loss:>9.5f} {result.train_seconds:>8.2f} {result.eval_seconds:>7.2f}  "
    if result.metrics:
        row += "  ".join(f"{result.metrics[c]:>15.4f}" for c in _epoch_columns(spec))
    return row


def metrics_table(metrics: dict[str, float], ks: tuple[int, ...], splits=SPLITS) -> str:
    """One row per split and K, one column per metric (coverage where the metrics have it: older records lack it)."""
    names = [m for m in (*METRICS, *CATALOGUE_METRICS) if metric_key(splits[0], m, ks[0]) in metrics]
    lines = [f"{'':<10}" + "".join(f"{m:>11}" for m in names) + f"{'users':>8}"]
    for split in splits:
        for k in ks:
            values = "".join(f"{metrics[metric_key(split, m, k)]:>11.4f}" for m in names)
            lines.append(f"{f'{split}@{k}':<10}{values}{int(metrics[users_key(split)]):>8}")
    return "\n".join(lines)


def final_table(outcome: TrainOutcome) -> str:
    spec, best = outcome.spec, outcome.best
    parts = [
        "",
        f"best epoch {best.epoch} of {len(outcome.epochs)} by {spec.metric} ({spec.mode}); "
        f"device {outcome.device}; {sum(r.train_seconds for r in outcome.epochs):.1f} s training",
        metrics_table(best.metrics, spec.fixed.k),
        "",
        "MostPop baseline on the same split:",
        metrics_table(outcome.most_popular, spec.fixed.k, splits=("val", "test")),
    ]
    if best.metrics.get(users_key("val"), 0) == 0:
        parts.insert(2, "no validation edges (dataset.split.val is 0): the last evaluated epoch is reported")
    return "\n".join(parts)


def run_summary_text(summary: RunSummary) -> str:
    spec, counts = summary.spec, summary.counts
    lines = [""]
    finished = summary.experiment.finished_trials()
    if not finished.empty:
        best = finished.iloc[0]
        k = spec.fixed.k[-1]
        test = "  ".join(f"{m}@{k} {best[metric_key('test', m, k)]:.4f}" for m in METRICS
                         if isinstance(best.get(metric_key("test", m, k)), float))
        params = ", ".join(f"{name}={_plain(best[param_column(name)])}" for name in spec.searched()) or "(fixed)"
        lines += [
            f"best trial {best[Column.TRIAL_ID]}: {spec.metric} {best[spec.metric]:.4f} at epoch {int(best[Column.BEST_EPOCH])} "
            f"of {int(best[Column.EPOCHS_RUN])}" + _seconds_note(best.get(Column.TOTAL_SECONDS)),
            f"  test at that epoch: {test}",
            f"  config: {params}",
        ]
    else:
        lines.append("no trial finished")
    from tuner.analysis.summarize import weak_search_warning

    if warning := weak_search_warning(summary.trials, summary.experiment.baselines, spec.metric, spec.mode):
        lines.append(f"warning: {warning}")
    total = sum(counts.values())
    lines.append(f"trials: {total} of {summary.expected_trials} — {counts_text(counts)}")
    if not summary.trials.empty:
        from tuner.analysis.summarize import resource_time

        spent = resource_time(summary.trials, summary.experiment.trial_resources)
        lines.append(f"time: {spent['trial_seconds']:.0f} s of trials ({spent['cpu_seconds']:.0f} CPU s, "
                     f"{spent['gpu_seconds']:.0f} GPU s); the report has the quality-against-cost front")
    failed = summary.errors
    for trial_id, error in list(failed.items())[:5]:
        lines.append(f"  failed {trial_id}: {error}")
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more failed trials (<experiment>/<trial id>/error.txt)")
    lines.append(f"written to {summary.experiment_dir} (records/ per epoch as parquet"
                 + (", optuna.db for optuna-dashboard" if summary.study_path else "") + ")")
    if summary.interrupted:
        lines.append("interrupted: run the same command again to resume")
    where = f"{spec.name} --storage {shlex.quote(spec.storage)}"  # quoted: the line is made to be copied and run
    lines.append(f"next: tuner report {where}   |   tuner best {where}   |   tuner records {where}")
    return "\n".join(lines)


def _seconds_note(value) -> str:
    return f" ({value:.1f} s)" if isinstance(value, (int, float)) and not math.isnan(value) else ""


def _plain(value):
    if isinstance(value, float):
        return "null" if math.isnan(value) else f"{value:.4g}"  # a null samples_per_user is NaN in a float column
    return value
