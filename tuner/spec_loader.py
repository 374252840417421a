"""load_spec(path, overrides): a spec file, validated and checked against its model before anything runs.

The model is found (a registered name or an import path, from the spec's folder first) and imported; the names in
`fixed` and `params` that are not training hyperparameters must be the model's own, with values and ranges its
annotations accept; then the model is built on a tiny graph and run once (forward and auxiliary_loss). Every problem
is one line `<file>: <field>: <message>`, a SpecError (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ValidationError

from tuner.errors import ModelContractError, SpecError
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.models import hyperparameter_model, locate
from tuner.recsys.models.contract import dry_run
from tuner.search_space import check_drawable_values
from tuner.spec import ExperimentSpec, read_spec


def load_spec(path: str | Path, overrides: Sequence[str] = (), fixing_wins: bool = False) -> ExperimentSpec:
    """`fixing_wins` (`tuner train`, which trains one configuration): an override that fixes a searched
    hyperparameter takes it out of `params` rather than being an error."""
    spec = read_spec(path, overrides, fixing_wins)
    return check_model(spec, str(path), Path(path).resolve().parent)


def check_model(spec: ExperimentSpec, source: str, folder: Path | None = None) -> ExperimentSpec:
    """`spec` with its model's hyperparameters in `fixed` validated (and coerced to their types), checked against the
    model it names, found from `folder` first."""
    try:
        model_class = locate(spec.model, folder).load()
        schema = hyperparameter_model(model_class)
        fixed = _checked_fixed(spec, schema)
        _check_params(spec, schema)
        dry_run(model_class, fixed.model_values(), f"model: {spec.model}")
    except (ModelContractError, ValueError) as exc:
        raise SpecError(f"{source}: {exc}") from None
    checked = spec.model_copy(update={"fixed": fixed})
    checked._model_folder = str(folder) if folder is not None else None
    return checked


def _not_taken(where: str, name: str, spec: ExperimentSpec, schema: type[BaseModel]) -> str:
    own = ", ".join(schema.model_fields) or "none"
    return (f"{where}.{name}: {spec.model} takes no hyperparameter {name}; its own: {own}; training: "
            f"{', '.join(Hyperparameters.model_fields)}")


def _checked_fixed(spec: ExperimentSpec, schema: type[BaseModel]) -> Hyperparameters:
    own = spec.fixed.model_values()
    for name in own:
        if name not in schema.model_fields:
            raise ValueError(_not_taken("fixed", name, spec, schema))
    try:
        coerced = schema.model_validate(own).model_dump(include=set(own))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ValueError(f"fixed.{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    return Hyperparameters.model_validate({**spec.fixed.model_dump(exclude_unset=True, exclude=set(own)), **coerced})


def _check_params(spec: ExperimentSpec, schema: type[BaseModel]) -> None:
    for name, param in spec.params.items():
        if name in Hyperparameters.model_fields:
            continue  # checked with the spec's structure
        if name not in schema.model_fields:
            raise ValueError(_not_taken("params", name, spec, schema))
        check_drawable_values(name, param, schema)
