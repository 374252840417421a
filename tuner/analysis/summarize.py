"""The analysis: trial tables -> ablation tables, significance tests, degenerate-row flags, importances and time
spent (pandas DataFrames). No Ray, no torch, no plotting."""

from __future__ import annotations

import pandas as pd

from tuner.vocabulary import (
    PRODUCED_METRICS,
    RUNNING,
    SPLITS,
    Column,
    Objective,
    StopReason,
    metric_key,
    param_column,
    parse_metric_key,
)


def ablation_columns(k: int) -> list[str]:
    """The metrics an ablation table shows: top-K precision and recall on every split."""
    return [metric_key(split, metric, k) for split in SPLITS for metric in ("precision", "recall")]


def usable_trials(trials: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Trials that produced metrics, with `value`: the factor's value as a label ("null" for None)."""
    usable = trials[trials[Column.STOP_REASON].isin(PRODUCED_METRICS)].copy()
    usable[Column.FACTOR_VALUE] = usable[param_column(factor)].map(format_value)
    order = usable[param_column(factor)].map(
        lambda v: (0, 0.0) if _is_null(v) else (1, float(v)) if _is_number(v) else (2, str(v))
    )
    return usable.assign(_order=order).sort_values(["_order", param_column("seed")]).drop(columns="_order")


def ablation_table(
    trials: pd.DataFrame, factor: str, metric: str, mode: str, baselines: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per value of `factor`: mean and std over seeds of top-K train / val / test precision and recall
    (each trial at its best-validation epoch), the number of seeds and a trial's mean seconds; then one
    row per baseline (`is_baseline`). `best` marks the value with the best mean validation metric (the selection
    criterion); test metrics are only reported."""
    k = parse_metric_key(metric).k
    groups = [(value, group) for value, group in usable_trials(trials, factor).groupby(Column.FACTOR_VALUE, sort=False)]
    if baselines is not None and not baselines.empty:
        groups += [(name, group) for name, group in baselines.groupby(Column.BASELINE, sort=True)]
    rows = []
    for label, group in groups:
        row = {"row": label if label in _baseline_names(baselines) else f"{factor}={label}", Column.FACTOR_VALUE: label,
               "is_baseline": label in _baseline_names(baselines), "seeds": len(group), metric: group[metric].mean(),
               "seconds": group[Column.TOTAL_SECONDS].mean() if Column.TOTAL_SECONDS in group else float("nan")}
        for column in ablation_columns(k):
            series = group[column]
            row[column] = series.mean()
            row[f"{column} std"] = series.std(ddof=1) if len(series) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    candidates = table[~table["is_baseline"]][metric]
    best_index = Objective(metric, mode).best_index(candidates)
    table["best"] = table.index == best_index
    return table


def flag_degenerate(table: pd.DataFrame, metric: str) -> pd.Series:
    """Why a value's row is not to be trusted ('' when it is): not better than MostPop on test precision; test
    precision and recall identical (to 4 decimals) to another value's; or identical in every seed — the
    signatures of a model that recommends the same popular items to everyone."""
    k = parse_metric_key(metric).k
    precision, recall = metric_key("test", "precision", k), metric_key("test", "recall", k)
    values = table[~table["is_baseline"]]
    most_popular = table.loc[table["row"] == "mostpop", precision]
    reasons = pd.Series([""] * len(table), index=table.index, dtype=object)
    for index, row in values.iterrows():
        why = []
        if len(most_popular) and row[precision] <= most_popular.iloc[0] + 1e-12:
            why.append(f"not better than MostPop (test precision@{k} {most_popular.iloc[0]:.4f})")
        same = [
            other["row"] for j, other in values.iterrows()
            if j != index and round(other[precision], 4) == round(row[precision], 4)
            and round(other[recall], 4) == round(row[recall], 4)
        ]
        if same:
            why.append(f"same test precision/recall@{k} as {', '.join(same)}")
        if row["seeds"] > 1 and row[f"{precision} std"] == 0 and row[f"{recall} std"] == 0:
            why.append("identical test precision/recall in every seed")
        reasons[index] = "; ".join(why)
    return reasons


def weak_search_warning(trials: pd.DataFrame, baselines: pd.DataFrame, metric: str, mode: str) -> str | None:
    """One line naming each baseline (its validation `metric`, mean over its seeds) that no trial with results
    beats — a search that has learnt nothing the baseline does not already know; None when there is none."""
    if baselines.empty or metric not in baselines or trials.empty:
        return None
    usable = trials.loc[trials[Column.STOP_REASON].isin(PRODUCED_METRICS), metric].dropna()
    if usable.empty:
        return None
    objective = Objective(metric, mode)
    best = objective.best(usable)
    per_baseline = baselines.groupby(Column.BASELINE)[metric].mean()
    beating = per_baseline[objective.sign * per_baseline >= objective.sign * best]
    if beating.empty:
        return None
    named = ", ".join(f"{name} ({value:.4f})" for name, value in beating.items())
    return (f"no trial beats the baseline(s) {named} on {metric} (the best trial has {best:.4f}): the tuned model has "
            "learnt nothing they do not already know; widen the search, train longer, or check the model")


def below_baselines(trials: pd.DataFrame, baselines: pd.DataFrame, metric: str, mode: str) -> pd.Series:
    """Per trial, the baselines it does not beat on the validation `metric` ('below mostpop, mf (rank 8)'; '' when
    it beats them all, or there are none)."""
    flags = pd.Series([""] * len(trials), index=trials.index, dtype=object)
    if baselines.empty or metric not in baselines:
        return flags
    per_baseline = baselines.groupby(Column.BASELINE)[metric].mean()
    for index, value in trials[metric].items():
        if pd.isna(value):
            continue
        below = [str(name) for name, b in per_baseline.items() if not Objective(metric, mode).better(value, b)]
        flags[index] = f"below {', '.join(below)}" if below else ""
    return flags


def seed_paired_pvalues(trials: pd.DataFrame, factor: str, best_label: str, metric: str) -> dict[str, float]:
    """Paired t-test across seeds of test recall@K, each value against the best one (pairs share a seed).
    NaN where fewer than two seeds pair up; 1.0 where every pair is identical."""
    from scipy import stats

    column = metric_key("test", "recall", parse_metric_key(metric).k)
    groups = usable_trials(trials, factor).groupby(Column.FACTOR_VALUE, sort=False)
    by_value = {v: g.set_index(param_column("seed"))[column] for v, g in groups}
    pvalues = {}
    for label, series in by_value.items():
        if label == best_label or best_label not in by_value:
            continue
        paired = pd.concat([series, by_value[best_label]], axis=1, join="inner").dropna()
        if len(paired) < 2:
            pvalues[label] = float("nan")
        elif (paired.iloc[:, 0] == paired.iloc[:, 1]).all():
            pvalues[label] = 1.0
        else:
            pvalues[label] = float(stats.ttest_rel(paired.iloc[:, 0], paired.iloc[:, 1]).pvalue)
    return pvalues


def per_user_wilcoxon(per_user: pd.DataFrame, trials: pd.DataFrame, factor: str, first: str, second: str, metric: str) -> float:
    """Wilcoxon signed-rank test of per-user test recall@K between two values, users paired within a seed
    (every (seed, user) is one pair). NaN when nothing pairs up; 1.0 when every pair is identical."""
    from scipy import stats

    column = metric_key("test", "recall", parse_metric_key(metric).k)
    if per_user.empty or column not in per_user:
        return float("nan")
    trial_values = usable_trials(trials, factor)[[Column.TRIAL_ID, Column.FACTOR_VALUE, param_column("seed")]]
    keyed = per_user.merge(trial_values, on=Column.TRIAL_ID)
    a = keyed[keyed[Column.FACTOR_VALUE] == first].set_index([param_column("seed"), Column.USER])[column]
    b = keyed[keyed[Column.FACTOR_VALUE] == second].set_index([param_column("seed"), Column.USER])[column]
    paired = pd.concat([a, b], axis=1, join="inner").dropna()
    if len(paired) == 0:
        return float("nan")
    if (paired.iloc[:, 0] == paired.iloc[:, 1]).all():
        return 1.0
    return float(stats.wilcoxon(paired.iloc[:, 0], paired.iloc[:, 1]).pvalue)


def _baseline_names(baselines: pd.DataFrame | None) -> set:
    return set() if baselines is None or baselines.empty else set(baselines[Column.BASELINE])


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) or hasattr(value, "dtype")


def format_value(value) -> str:
    if _is_null(value):
        return "null"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


TRUSTED_TRIALS = 10  # fewer than this, and fANOVA's ranking changes with a few more trials (2 of 8 finished gave
# 0.38/0.21/0.21/0.21, and the order flipped at 4)


def importance_basis(spec, records: pd.DataFrame, trials: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The trials to rank the searched parameters on, with `spec.metric` the value to rank by, and what that value
    is. The finished trials' best validation value — unless fewer than TRUSTED_TRIALS finished and early stopping
    left more trials at a common epoch: then the trials that reached the deepest epoch that TRUSTED_TRIALS of them
    (or all, when fewer ran) reached, by their best validation value up to that epoch (each trial measured on the
    same budget, as ASHA compares them)."""
    finished = trials[trials[Column.STOP_REASON] == StopReason.FINISHED] if not trials.empty else trials
    basis = (finished, f"the best `{spec.metric}` of the {len(finished)} finished trial(s)")
    usable = trials[trials[Column.STOP_REASON].isin(PRODUCED_METRICS)] if not trials.empty else trials
    if len(finished) >= TRUSTED_TRIALS or len(usable) <= len(finished) or records.empty:
        return basis
    evaluated = records[records[Column.EVALUATED] & records[Column.TRIAL_ID].isin(usable[Column.TRIAL_ID])]
    reached = evaluated.groupby(Column.TRIAL_ID)[Column.EPOCH].max()
    wanted = min(TRUSTED_TRIALS, len(reached))  # as many trials as a ranking needs, or as there are
    for epoch in sorted(set(evaluated[Column.EPOCH]), reverse=True):
        at_least = reached[reached >= epoch].index
        if len(at_least) >= wanted and len(at_least) > len(finished):
            upto = evaluated[evaluated[Column.TRIAL_ID].isin(at_least) & (evaluated[Column.EPOCH] <= epoch)]
            best = spec.objective.best(upto.groupby(Column.TRIAL_ID)[spec.metric])
            chosen = usable[usable[Column.TRIAL_ID].isin(at_least)].copy()
            chosen[spec.metric] = chosen[Column.TRIAL_ID].map(best)
            chosen[Column.STOP_REASON] = StopReason.FINISHED.value  # complete, for this comparison
            return chosen, (f"the best `{spec.metric}` up to epoch {epoch} of the {len(chosen)} trials that reached it "
                            f"(early stopping ended most before the last epoch; {len(finished)} finished)")
    return basis


def parameter_importances(spec, records: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Optuna's fANOVA importances of the searched parameters for the spec metric, on `importance_basis`'s trials
    (empty when fewer than two of them, or nothing varies). attrs: "basis" (what was ranked on), "trials" (how
    many)."""
    import optuna

    from tuner.experiment.study_export import build_study

    chosen, basis = importance_basis(spec, records, trials)
    names = [n for n in spec.searched() if chosen[param_column(n)].astype(str).nunique() > 1] if not chosen.empty else []
    empty = pd.DataFrame(columns=["parameter", "importance"])
    empty.attrs.update(basis=basis, trials=len(chosen))
    if len(chosen) < 2 or not names:
        return empty
    study = build_study(spec, records, chosen)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator, params=names)
    table = pd.DataFrame({"parameter": list(importances), "importance": list(importances.values())})
    table.attrs.update(basis=basis, trials=len(chosen))
    return table


def resource_time(trials: pd.DataFrame, trial_resources: dict[str, float]) -> dict[str, float]:
    """Wall seconds summed over trials, times the CPUs / GPUs each trial held ({"cpu": ..., "gpu": ...})."""
    seconds = float(trials[Column.TOTAL_SECONDS].fillna(0).sum()) if not trials.empty else 0.0
    return {"trial_seconds": seconds, "cpu_seconds": seconds * trial_resources["cpu"],
            "gpu_seconds": seconds * trial_resources["gpu"]}


def pareto_front(trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """The trials no other trial beats on both counts — a better validation `metric` in no more seconds — cheapest
    first: what each extra second of training bought. Trials without metrics or time are left out."""
    usable = trials[trials[Column.STOP_REASON].isin(PRODUCED_METRICS)] if not trials.empty else trials
    usable = usable.dropna(subset=[Column.TOTAL_SECONDS, metric]) if not usable.empty else usable
    if usable.empty:
        return usable
    sign = Objective(metric, mode).sign
    front, best = [], -float("inf")
    for index, row in usable.sort_values([Column.TOTAL_SECONDS, metric], ascending=[True, sign < 0]).iterrows():
        if sign * row[metric] > best:
            front.append(index)
            best = sign * row[metric]
    return usable.loc[front]


def counts_text(counts: dict[str, int]) -> str:
    """"3 finished, 1 early-stopped, 0 failed, 0 diverged" (", 2 unfinished" when some are)."""
    text = (f"{counts[StopReason.FINISHED]} finished, {counts[StopReason.EARLY_STOPPED]} early-stopped, "
            f"{counts[StopReason.FAILED]} failed, {counts[StopReason.DIVERGED]} diverged")
    text += f", {counts[StopReason.COLLAPSED]} collapsed" if counts[StopReason.COLLAPSED] else ""
    return text + (f", {counts[RUNNING]} unfinished" if counts[RUNNING] else "")
