"""The experiment spec (a YAML file): what to train, on which data, and how results are selected.

load_spec(path, overrides) -> ExperimentSpec, validated and frozen. Every problem is one line:
`<file>: <field.path>: <message>`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuner.data.config import DatasetSpec
from tuner.errors import SpecError
from tuner.hyperparameters import Hyperparameters
from tuner.metrics import METRICS, SPLITS
from tuner.models import MODELS
from tuner.yaml_loader import parse_yaml, read_yaml_file

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_METRIC = re.compile(r"^(?P<split>[a-z]+)/(?P<name>[a-z]+)@(?P<k>[0-9]+)$")


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str
    dataset: DatasetSpec = DatasetSpec()
    metric: str = "val/recall@20"
    mode: Literal["max", "min"] = "max"
    fixed: Hyperparameters = Hyperparameters()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value) or value in (".", ".."):
            raise ValueError(
                f"{value!r} is not a safe directory name: use letters, digits, '.', '_' and '-' (at most 100)"
            )
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; expected one of {', '.join(MODELS)}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_form(cls, value: str) -> str:
        match = _METRIC.match(value)
        if not match or match["split"] not in SPLITS or match["name"] not in METRICS:
            raise ValueError(f"{value!r} is not a metric; expected e.g. val/recall@20 ({'|'.join(METRICS)})")
        if match["split"] != "val":
            raise ValueError(f"{value!r}: model selection uses validation only; use val/{match['name']}@{match['k']}")
        return value

    @model_validator(mode="after")
    def _metric_k_is_evaluated(self) -> "ExperimentSpec":
        k = int(_METRIC.match(self.metric)["k"])
        if k not in self.fixed.k:
            raise ValueError(f"metric {self.metric}: K={k} is not among fixed.k {list(self.fixed.k)}")
        if self.model == "gat" and self.fixed.num_layers < 1:
            raise ValueError("fixed.num_layers: gat needs at least one layer")
        return self


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    path = Path(path)
    raw = read_yaml_file(path)
    if raw is None:
        raise SpecError(f"{path}: is empty; expected a mapping with at least name and model")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for override in overrides:
        apply_override(raw, override)
    return validate_spec(raw, str(path))


def validate_spec(raw: dict, source: str) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError("\n".join(f"{source}: {line}" for line in format_errors(exc))) from None


def format_errors(exc: ValidationError) -> list[str]:
    """One `field.path: message` line per pydantic error."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "spec"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{loc}: {message}")
    return lines


def apply_override(raw: dict, override: str) -> None:
    """`key.path=value` (value parsed as YAML) into the raw spec; a bare hyperparameter name means fixed.<name>."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise SpecError(f"--set {override!r}: expected key=value, e.g. fixed.lr=0.01")
    parts = key.split(".")
    if len(parts) == 1 and parts[0] not in ExperimentSpec.model_fields and parts[0] in Hyperparameters.model_fields:
        parts = ["fixed", parts[0]]
    target: Any = raw
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"--set {key}: {part} is not a mapping")
        target = node
    target[parts[-1]] = parse_yaml(text, f"--set {key}")
