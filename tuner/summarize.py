"""Records -> tables (pandas DataFrames). No Ray, no plotting."""

from __future__ import annotations

import pandas as pd

from tuner.hyperparameters import Hyperparameters


def trial_table(records: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: its stop reason, epochs run, and every column of its best-validation epoch.

    Sorted best first: finished trials by their best `metric`, then early-stopped ones (never ranked as if
    they had finished), then failed and diverged ones.
    """
    if records.empty:
        return pd.DataFrame()
    rows = []
    for trial_id, trial in records.groupby("trial_id", sort=True):
        last = trial.loc[trial["epoch"].idxmax()]
        evaluated = trial[trial["evaluated"] & trial[metric].notna()]
        if evaluated.empty:
            best = last
        else:
            order = evaluated.sort_values(["epoch"])
            best = order.loc[order[metric].idxmax() if mode == "max" else order[metric].idxmin()]
        row = best.to_dict()
        row.update(
            trial_id=trial_id,
            stop_reason=last["stop_reason"] if isinstance(last["stop_reason"], str) else "running",
            epochs_run=int(last["epoch"]),
            best_epoch=int(best["epoch"]) if not evaluated.empty else None,
            total_seconds=float(last["cumulative_seconds"]) if pd.notna(last["cumulative_seconds"]) else None,
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    rank = table["stop_reason"].map({"finished": 0, "early_stopped": 1, "running": 2}).fillna(3)
    ascending = mode != "max"
    table = table.assign(_rank=rank).sort_values(["_rank", metric, "trial_id"], ascending=[True, ascending, True])
    return table.drop(columns="_rank").reset_index(drop=True)


def stop_reason_counts(trials: pd.DataFrame, errors: dict[str, str] | None = None) -> dict[str, int]:
    """Trials per stop reason; `errors` (experiment.trial_errors) adds the trials that failed before they wrote
    a single record."""
    counts = trials["stop_reason"].value_counts().to_dict() if not trials.empty else {}
    recorded = set(trials["trial_id"]) if not trials.empty else set()
    counts["failed"] = counts.get("failed", 0) + sum(1 for trial_id in errors or {} if trial_id not in recorded)
    return {reason: int(counts.get(reason, 0)) for reason in ("finished", "early_stopped", "failed", "diverged", "running")}


def failed_trial_errors(trials: pd.DataFrame, errors: dict[str, str]) -> dict[str, str]:
    """The errors of the trials that failed for good: recorded as failed, or never got to write a record (a
    trial that failed once and then recovered keeps Ray's error.txt, but is not failed)."""
    recorded = dict(zip(trials["trial_id"], trials["stop_reason"])) if not trials.empty else {}
    return {t: e for t, e in sorted(errors.items()) if recorded.get(t, "failed") == "failed"}


def hyperparameters_of(row: pd.Series | dict) -> Hyperparameters:
    """The configuration a record row was trained with (its param_<name> columns)."""
    values = {}
    for name in Hyperparameters.model_fields:
        value = row[f"param_{name}"]
        if name == "k":
            value = [int(k) for k in str(value).split(",")]
        elif pd.isna(value):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        values[name] = value
    return Hyperparameters.model_validate(values)


ABLATION_COLUMNS = ("train/precision", "train/recall", "val/precision", "val/recall", "test/precision", "test/recall")


def metric_k(metric: str) -> int:
    return int(metric.split("@")[1])


def usable_trials(trials: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Trials that produced metrics, with `value`: the factor's value as a label ("null" for None)."""
    usable = trials[trials["stop_reason"].isin(["finished", "early_stopped"])].copy()
    usable["value"] = usable[f"param_{factor}"].map(format_value)
    order = usable[f"param_{factor}"].map(lambda v: (0, 0.0) if _is_null(v) else (1, float(v)) if _is_number(v) else (2, str(v)))
    return usable.assign(_order=order).sort_values(["_order", "param_seed"]).drop(columns="_order")


def ablation_table(trials: pd.DataFrame, factor: str, metric: str, mode: str, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per value of `factor`: mean and std over seeds of top-K train / val / test precision and recall
    (each trial at its best-validation epoch) and the number of seeds; then one row per baseline. `best` marks
    the value with the best mean validation metric (the selection criterion); test metrics are only reported."""
    k = metric_k(metric)
    groups = [(value, group) for value, group in usable_trials(trials, factor).groupby("value", sort=False)]
    if baselines is not None and not baselines.empty:
        groups += [(name, group) for name, group in baselines.groupby("baseline", sort=True)]
    rows = []
    for label, group in groups:
        row = {"row": label if label in _baseline_names(baselines) else f"{factor}={label}", "value": label,
               "baseline": label in _baseline_names(baselines), "seeds": len(group), metric: group[metric].mean()}
        for column in ABLATION_COLUMNS:
            series = group[f"{column}@{k}"]
            row[f"{column}@{k}"] = series.mean()
            row[f"{column}@{k} std"] = series.std(ddof=1) if len(series) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    candidates = table[~table["baseline"]][metric]
    best_index = candidates.idxmax() if mode == "max" else candidates.idxmin()
    table["best"] = table.index == best_index
    return table


def flag_degenerate(table: pd.DataFrame, metric: str) -> pd.Series:
    """Why a value's row is not to be trusted ('' when it is): not better than MostPop on test precision; test
    precision and recall identical (to 4 decimals) to another value's; or identical in every seed — the
    signatures of a model that recommends the same popular items to everyone."""
    k = metric_k(metric)
    precision, recall = f"test/precision@{k}", f"test/recall@{k}"
    values = table[~table["baseline"]]
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


def seed_paired_pvalues(trials: pd.DataFrame, factor: str, best_label: str, metric: str) -> dict[str, float]:
    """Paired t-test across seeds of test recall@K, each value against the best one (pairs share a seed).
    NaN where fewer than two seeds pair up; 1.0 where every pair is identical."""
    from scipy import stats

    column = f"test/recall@{metric_k(metric)}"
    by_value = {v: g.set_index("param_seed")[column] for v, g in usable_trials(trials, factor).groupby("value", sort=False)}
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

    column = f"test/recall@{metric_k(metric)}"
    if per_user.empty or column not in per_user:
        return float("nan")
    keyed = per_user.merge(usable_trials(trials, factor)[["trial_id", "value", "param_seed"]], on="trial_id")
    a = keyed[keyed["value"] == first].set_index(["param_seed", "user"])[column]
    b = keyed[keyed["value"] == second].set_index(["param_seed", "user"])[column]
    paired = pd.concat([a, b], axis=1, join="inner").dropna()
    if len(paired) == 0:
        return float("nan")
    if (paired.iloc[:, 0] == paired.iloc[:, 1]).all():
        return 1.0
    return float(stats.wilcoxon(paired.iloc[:, 0], paired.iloc[:, 1]).pvalue)


def _baseline_names(baselines: pd.DataFrame | None) -> set:
    return set() if baselines is None or baselines.empty else set(baselines["baseline"])


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


def parameter_importances(spec, records: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Optuna's fANOVA importances of the searched parameters for the spec metric, evaluated on the finished
    trials of the records (empty when fewer than two finished trials or nothing varies)."""
    import optuna

    from tuner.study_export import build_study

    finished = trials[trials["stop_reason"] == "finished"]
    names = [n for n in spec.searched() if finished[f"param_{n}"].astype(str).nunique() > 1] if not finished.empty else []
    if len(finished) < 2 or not names:
        return pd.DataFrame(columns=["parameter", "importance"])
    study = build_study(spec, records, finished)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator, params=names)
    return pd.DataFrame({"parameter": list(importances), "importance": list(importances.values())})


def resource_time(trials: pd.DataFrame, trial_resources: dict[str, float]) -> dict[str, float]:
    """Wall seconds summed over trials, times the CPUs / GPUs each trial held ({"cpu": ..., "gpu": ...})."""
    seconds = float(trials["total_seconds"].fillna(0).sum()) if not trials.empty else 0.0
    return {"trial_seconds": seconds, "cpu_seconds": seconds * trial_resources["cpu"],
            "gpu_seconds": seconds * trial_resources["gpu"]}
