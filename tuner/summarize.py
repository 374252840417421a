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


def stop_reason_counts(trials: pd.DataFrame) -> dict[str, int]:
    counts = trials["stop_reason"].value_counts().to_dict() if not trials.empty else {}
    return {reason: int(counts.get(reason, 0)) for reason in ("finished", "early_stopped", "failed", "diverged", "running")}


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
