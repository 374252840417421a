"""A spec's `params`: one searched hyperparameter in Optuna's short form (a range or choices), and the check that
every value a search can draw is one the model accepts."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class Frozen(BaseModel):
    """A part of a spec: unknown fields refused, immutable, no inf or nan."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ParamSpec(Frozen):
    """One searched hyperparameter, in Optuna's short form."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> "ParamSpec":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical parameter needs a non-empty list of choices")
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("a categorical parameter takes only choices")
            return self
        if self.choices is not None:
            raise ValueError(f"choices: only categorical parameters take choices, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs low and high")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log: a log-scaled range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("step: cannot be combined with log (as in Optuna)")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step: must be > 0, got {self.step}")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high, self.step or 1)):
            raise ValueError("an int parameter needs integer low, high and step")
        return self

    def choice_list(self) -> list[Any]:
        """A categorical parameter's choices (validated non-empty); none for a range."""
        return list(self.choices or [])

    def bounds(self) -> tuple[float, float]:
        """A range's low and high (validated present for int and float parameters)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter has no low and high")
        return self.low, self.high

    def smallest(self) -> Any:
        if self.type == "categorical":
            return min(v for v in self.choice_list() if isinstance(v, (int, float)))
        return self.bounds()[0]

    def grid_values(self) -> list[Any]:
        """Every value, for the grid sampler: categorical choices, or a stepped int/float range."""
        if self.type == "categorical":
            return self.choice_list()
        low, high = self.bounds()
        if self.type == "int":
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ValueError("step: the grid sampler needs a step for a float range (or use choices)")
        count = int(round((high - low) / self.step)) + 1
        return [round(low + i * self.step, 12) for i in range(count)]


def check_drawable_values(name: str, param: ParamSpec, model: type[BaseModel]) -> None:
    """Every value a search can draw must be one `model` (Hyperparameters, or a model's own hyperparameters) accepts
    for `name` (type and bounds), checked before anything runs: every choice, and both ends of a range (the bounds
    are intervals, so the values between pass too)."""
    if param.type == "categorical":
        candidates = [(f"choices[{i}]", choice) for i, choice in enumerate(param.choice_list())]
    else:
        if param.type == "float" and param.low == param.high:
            raise ValueError(f"params.{name}: low and high are both {param.low:g}; set fixed.{name} instead")
        if param.type == "float" and _takes_whole_numbers(model, name):
            raise ValueError(f"params.{name}.type: {name} takes whole numbers; use type: int or categorical")
        as_type = int if param.type == "int" else float
        low, high = param.bounds()
        candidates = [("low", as_type(low)), ("high", as_type(high))]
    for where, value in candidates:
        try:
            model.model_validate({name: value})
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise ValueError(f"params.{name}.{where}: {value!r} is not a valid {name} ({reason})") from None


def _takes_whole_numbers(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is int or (int in get_args(annotation) and float not in get_args(annotation))
