"""The report's reproducibility section: the dataset, split and its hash, seeds, the command, tuner's revision and
package versions, and whether every trial start ran that same code (from the manifests each start writes)."""

from __future__ import annotations

import pandas as pd

from tuner.analysis.document import Section
from tuner.experiment.read import Experiment
from tuner.vocabulary import Column


def reproducibility_section(experiment: Experiment) -> Section:
    spec, records = experiment.spec, experiment.records
    section = Section("Reproducibility")
    origin = experiment.provenance
    split_hashes = sorted(records[Column.SPLIT_HASH].unique()) if not records.empty else []
    seeds = sorted(int(s) for s in records[Column.SEED].unique()) if not records.empty else []
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
    _trial_code(section, origin, experiment.manifests)
    return section


def _code(facts: dict) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in sorted(facts.get("packages", {}).items()))
    return f"tuner {facts.get('git_revision', 'unknown')}; python {facts.get('python', '?')}; {packages}"


def _trial_code(section: Section, origin: dict, manifests: list[dict]) -> None:
    """Whether the trials' workers ran the code and packages above (each trial start writes a manifest)."""
    if not manifests:
        return
    starts = pd.DataFrame({"code": [_code(m) for m in manifests], "trial": [m[Column.TRIAL_ID] for m in manifests]})
    groups = starts.groupby("code", sort=True)["trial"].agg(["size", "nunique"]).reset_index()
    if len(groups) == 1 and groups["code"].iloc[0] == _code(origin):
        section.text(f"All {len(manifests)} trial starts (`manifests/`) ran this code and these packages.")
        return
    section.text(f"**The trials did not all run the code and packages above**: {len(groups)} combination(s) over "
                 f"{len(manifests)} trial starts (each start's are in `manifests/`).")
    section.table("trial_code", groups.rename(columns={"size": "trial starts", "nunique": "trials"}))
