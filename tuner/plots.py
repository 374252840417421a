"""PNG plots for the report (matplotlib, Agg). Each function writes one file and returns nothing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# no timestamps or software versions in the files: the same records give the same bytes
_SAVE = {"dpi": 110, "metadata": {"Software": None}, "bbox_inches": "tight"}


def _save(figure, path) -> None:
    figure.savefig(path, **_SAVE)
    plt.close(figure)


def ablation_values(table: pd.DataFrame, factor: str, k: int, path) -> None:
    """Precision and recall@K (val and test) against the factor's value, mean ± std over seeds."""
    rows = table[~table["baseline"]]
    x = np.arange(len(rows))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric in zip(axes, ("precision", "recall")):
        for split, marker in (("val", "o"), ("test", "s")):
            column = f"{split}/{metric}@{k}"
            axis.errorbar(x, rows[column], yerr=rows[f"{column} std"].fillna(0), marker=marker, capsize=4, label=split)
        for _, baseline in table[table["baseline"]].iterrows():
            axis.axhline(baseline[f"test/{metric}@{k}"], linestyle="--", linewidth=1, color="grey")
            axis.annotate(f"{baseline['row']} (test)", (x[-1], baseline[f"test/{metric}@{k}"]), fontsize=7,
                          ha="right", va="bottom", color="grey")
        axis.set_xticks(x, rows["value"])
        axis.set_xlabel(factor)
        axis.set_ylabel(f"{metric}@{k}")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(f"{factor}: mean ± std over seeds, each trial at its best-validation epoch")
    _save(figure, path)


def ablation_curves(records: pd.DataFrame, trials: pd.DataFrame, factor: str, metric: str, path) -> None:
    """Validation metric and training loss against the epoch, one line per value (mean over seeds)."""
    labelled = records.merge(trials[["trial_id", "value"]], on="trial_id")
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for value, group in labelled.groupby("value", sort=False):
        evaluated = group[group["evaluated"]].groupby("epoch")[metric].mean()
        axes[0].plot(evaluated.index, evaluated.values, marker=".", label=f"{factor}={value}")
        loss = group.groupby("epoch")["loss"].mean()
        axes[1].plot(loss.index, loss.values, label=f"{factor}={value}")
    axes[0].set_ylabel(metric)
    axes[1].set_ylabel("training loss")
    axes[1].set_yscale("log")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("training curves per value (mean over seeds)")
    _save(figure, path)


def optimisation_history(trials: pd.DataFrame, metric: str, mode: str, path) -> None:
    ordered = trials.sort_values(["trial_started", "trial_id"]) if "trial_started" in trials else trials.sort_values("trial_id")
    values = ordered[metric].to_numpy(dtype=float)
    best = np.fmax.accumulate(values) if mode == "max" else np.fmin.accumulate(values)
    colours = ordered["stop_reason"].map({"finished": "tab:blue", "early_stopped": "tab:orange"}).fillna("tab:red")
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.scatter(np.arange(len(values)), values, c=list(colours), s=18, label="trial (blue finished, orange early-stopped)")
    axis.step(np.arange(len(values)), best, where="post", color="black", label="best so far")
    axis.set_xlabel("trial (in start order)")
    axis.set_ylabel(f"best {metric}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    _save(figure, path)


def parallel_coordinates(trials: pd.DataFrame, parameters: list[str], metric: str, path) -> None:
    """One line per trial across the searched parameters (each scaled to [0, 1]), coloured by the metric."""
    columns = []
    for name in parameters:
        raw = trials[f"param_{name}"]
        numeric = pd.to_numeric(raw, errors="coerce")
        if numeric.notna().all():
            positive = (numeric > 0).all() and numeric.max() / max(numeric.min(), 1e-300) > 50
            scaled = np.log(numeric) if positive else numeric
        else:
            scaled = raw.astype(str).astype("category").cat.codes.astype(float)
        span = scaled.max() - scaled.min()
        columns.append((scaled - scaled.min()) / span if span else scaled * 0 + 0.5)
    values = trials[metric].to_numpy(dtype=float)
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    colour = plt.get_cmap("viridis")
    figure, axis = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(parameters) + 1)
    for i in range(len(trials)):
        if not finite[i]:
            continue
        level = (values[i] - low) / (high - low) if high > low else 0.5
        ys = [c.iloc[i] for c in columns] + [level]
        axis.plot(x, ys, color=colour(level), alpha=0.7)
    axis.set_xticks(x, parameters + [metric], rotation=20)
    axis.set_yticks([])
    axis.set_title("parallel coordinates (each axis scaled to its range; log for wide positive ranges)")
    _save(figure, path)


def learning_curves(records: pd.DataFrame, trial_ids: list[str], metric: str, path) -> None:
    figure, axis = plt.subplots(figsize=(7, 3.8))
    for trial_id in trial_ids:
        rows = records[(records["trial_id"] == trial_id) & records["evaluated"]].sort_values("epoch")
        axis.plot(rows["epoch"], rows[metric], marker=".", label=trial_id)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, title="top trials")
    _save(figure, path)


def importances(table: pd.DataFrame, path) -> None:
    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.4 * len(table)))
    axis.barh(table["parameter"][::-1], table["importance"][::-1])
    axis.set_xlabel("fANOVA importance")
    _save(figure, path)
