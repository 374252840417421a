"""Records -> one row per trial: how it ended and every column of its best-validation epoch (`selection`'s rule).
The trial view every command shares (`Experiment.trials`)."""

from __future__ import annotations

import pandas as pd

from tuner.recsys import selection
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.vocabulary import PARAM_PREFIX, RUNNING, TRIAL_STATES, Column, Objective, StopReason, decode_param

_RANK = {StopReason.FINISHED.value: 0, StopReason.EARLY_STOPPED.value: 1, StopReason.COLLAPSED.value: 2,
         RUNNING: 3}  # then failed and diverged


def trial_table(records: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: its stop reason (`running` while it has none), epochs run, and every column of its
    best-validation epoch by `metric`.

    Sorted best first: finished trials by their best `metric`, then early-stopped ones (never ranked as if
    they had finished), then unfinished, failed and diverged ones.
    """
    if records.empty:
        return pd.DataFrame()
    users = Objective(metric, mode).users
    rows = []
    for trial_id, trial in records.groupby(Column.TRIAL_ID, sort=True):
        last = trial.loc[trial[Column.EPOCH].idxmax()]
        evaluated = trial[trial[Column.EVALUATED] & trial[metric].notna()]
        chosen = selection.best_epoch(zip(evaluated[Column.EPOCH], evaluated[metric], evaluated[users]), mode)
        best = last if chosen is None else evaluated[evaluated[Column.EPOCH] == chosen].iloc[0]
        row = best.to_dict()
        row.update(
            trial_id=trial_id,
            stop_reason=last[Column.STOP_REASON] if isinstance(last[Column.STOP_REASON], str) else RUNNING,
            epochs_run=int(last[Column.EPOCH]),
            best_epoch=None if chosen is None else int(chosen),
            total_seconds=float(last[Column.CUMULATIVE_SECONDS]) if pd.notna(last[Column.CUMULATIVE_SECONDS]) else None,
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    rank = table[Column.STOP_REASON].map(_RANK).fillna(4)
    ascending = mode != "max"
    table = table.assign(_rank=rank).sort_values(["_rank", metric, Column.TRIAL_ID], ascending=[True, ascending, True])
    return table.drop(columns="_rank").reset_index(drop=True)


def stop_reason_counts(trials: pd.DataFrame, errors: dict[str, str] | None = None) -> dict[str, int]:
    """Trials per stop reason (and `running`); `errors` (failed_trial_errors) adds the trials that failed before
    they wrote a single record."""
    counts = trials[Column.STOP_REASON].value_counts().to_dict() if not trials.empty else {}
    recorded = set(trials[Column.TRIAL_ID]) if not trials.empty else set()
    failed = StopReason.FAILED.value
    counts[failed] = counts.get(failed, 0) + sum(1 for trial_id in errors or {} if trial_id not in recorded)
    return {state: int(counts.get(state, 0)) for state in TRIAL_STATES}


def failed_trial_errors(trials: pd.DataFrame, errors: dict[str, str]) -> dict[str, str]:
    """Of every trial's error (layout.trial_errors), those of the trials that failed for good: recorded as failed,
    or never got to write a record (a trial that failed once and then recovered keeps Ray's error.txt, but is not
    failed)."""
    recorded = dict(zip(trials[Column.TRIAL_ID], trials[Column.STOP_REASON])) if not trials.empty else {}
    return {t: e for t, e in sorted(errors.items()) if recorded.get(t, StopReason.FAILED.value) == StopReason.FAILED}


def hyperparameters_of(row: pd.Series | dict) -> Hyperparameters:
    """The configuration a record row was trained with: its param_<name> columns, the model's own ones included (a
    null model column, which a record of another model's trial gives when tables are combined, is left out)."""
    values = {name.removeprefix(PARAM_PREFIX): value for name, value in dict(row).items() if name.startswith(PARAM_PREFIX)}
    decoded = {name: decode_param(name, value) for name, value in values.items()}
    return Hyperparameters.model_validate(
        {name: value for name, value in decoded.items() if name in Hyperparameters.model_fields or value is not None}
    )
