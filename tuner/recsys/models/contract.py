"""What tuner reads from a model class and how it checks one: its graph inputs, its own hyperparameters (from the
constructor's annotated keyword parameters), building it, and a dry run on a tiny graph."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal, Mapping, Union

import torch
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from torch import Tensor

from tuner.errors import ModelContractError
from tuner.recsys.models.base import Recommender
from tuner.recsys.models.graph import normalized_adjacency

SIZES = ("num_users", "num_items")
GRAPH_INPUTS = ("train", "adjacency")  # what a constructor may ask for by name, besides the sizes
HYPERPARAMETER_TYPES = (int, float, bool, str)


def check_class(obj: Any, where: str) -> type[Recommender]:
    """`obj` as a model class, or ModelContractError saying what it is instead."""
    if not (inspect.isclass(obj) and issubclass(obj, Recommender)):
        what = f"class {obj.__module__}.{obj.__qualname__}" if inspect.isclass(obj) else type(obj).__name__
        raise ModelContractError(f"{where} is a {what}, not a subclass of tuner.Recommender")
    if obj.forward is Recommender.forward:
        raise ModelContractError(f"{where} does not define forward(); it must return (user, item) embeddings")
    return obj


def graph_inputs(cls: type[Recommender]) -> tuple[str, ...]:
    parameters = inspect.signature(cls).parameters
    return tuple(name for name in GRAPH_INPUTS if name in parameters)


def hyperparameter_model(cls: type[Recommender]) -> type[BaseModel]:
    """A pydantic model of the class's own hyperparameters: one field per constructor parameter beyond the sizes
    and graph inputs, with its annotation and default. ModelContractError names a parameter that has no
    annotation, no default, or a type that is not int, float, bool, str or a Literal of them."""
    where = f"model: {cls.__module__}:{cls.__qualname__}"
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception as exc:
        raise ModelContractError(f"{where}: the constructor's annotations cannot be resolved ({exc})") from None
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if name in SIZES or name in GRAPH_INPUTS:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ModelContractError(f"{where}: the constructor takes *{name}; name every hyperparameter instead")
        if name not in hints:
            raise ModelContractError(f"{where}: hyperparameter {name} has no type annotation; e.g. {name}: float = ...")
        if parameter.default is inspect.Parameter.empty:
            raise ModelContractError(f"{where}: hyperparameter {name} has no default; e.g. {name}: "
                                     f"{_type_name(hints[name])} = ...")
        if column_type(hints[name]) is None:
            raise ModelContractError(f"{where}: hyperparameter {name} is annotated {_type_name(hints[name])}; expected "
                                     "int, float, bool, str or a Literal of them (optionally Annotated, or | None)")
        fields[name] = (hints[name], parameter.default)
    config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)
    model = create_model(f"{cls.__name__}Hyperparameters", __config__=config, **fields)
    try:
        model()
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ModelContractError(f"{where}: the default of hyperparameter {error['loc'][0]} is not valid "
                                 f"({error['msg']})") from None
    return model


def column_type(annotation: Any) -> type | None:
    """The plain type a hyperparameter's values have (how its record column stores them), or None if unsupported."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return column_type(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = {column_type(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else (float if kinds == {int, float} else None)
    if origin is Literal:
        kinds = {type(v) for v in typing.get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 and kinds <= set(HYPERPARAMETER_TYPES) else None
    return annotation if annotation in HYPERPARAMETER_TYPES else None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def column_types(cls: type[Recommender]) -> dict[str, type]:
    """hyperparameter name -> the plain type of its values."""
    return {name: column_type(field.annotation) or str
            for name, field in hyperparameter_model(cls).model_fields.items()}


def describe(cls: type[Recommender]) -> list[tuple[str, str, Any, str]]:
    """Each hyperparameter as (name, type, default, bounds): bounds such as "> 0, <= 1" or the Literal's choices."""
    rows = []
    for name, field in hyperparameter_model(cls).model_fields.items():
        bounds = []
        for rule in field.metadata:
            for attribute, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                if getattr(rule, attribute, None) is not None:
                    bounds.append(f"{sign} {getattr(rule, attribute)}")
        if typing.get_origin(field.annotation) is Literal:
            bounds.append("one of " + ", ".join(map(str, typing.get_args(field.annotation))))
        kind = column_type(field.annotation)
        rows.append((name, kind.__name__ if kind else str(field.annotation), field.default, ", ".join(bounds)))
    return rows


def complete(cls: type[Recommender], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of the class: the given ones (validated) and the others' defaults."""
    return hyperparameter_model(cls).model_validate(dict(values)).model_dump()


def build(cls: type[Recommender], num_users: int, num_items: int, train: Tensor, hyperparameters: Mapping[str, Any],
          adjacency: Tensor | None = None) -> Recommender:
    """The model with the graph inputs its constructor names (`adjacency` built from `train` unless given) and the
    hyperparameters it takes (others, such as lr, are ignored)."""
    names = hyperparameter_model(cls).model_fields
    kwargs: dict[str, Any] = {k: v for k, v in hyperparameters.items() if k in names}
    wanted = graph_inputs(cls)
    if "train" in wanted:
        kwargs["train"] = train
    if "adjacency" in wanted:
        kwargs["adjacency"] = adjacency if adjacency is not None else normalized_adjacency(train, num_users, num_items)
    return cls(num_users=num_users, num_items=num_items, **kwargs)


def dry_run(cls: type[Recommender], hyperparameters: Mapping[str, Any], where: str) -> None:
    """Build the model on a tiny graph (4 users, 5 items), run forward and one training step's auxiliary loss;
    ModelContractError says what came back instead of what was expected."""
    num_users, num_items = 4, 5
    train = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 1, 2, 2, 3, 3, 4]])
    torch.manual_seed(0)
    try:
        model = build(cls, num_users, num_items, train, complete(cls, hyperparameters))
    except ModelContractError:
        raise
    except Exception as exc:
        raise ModelContractError(f"{where}: building it on a tiny graph raised {type(exc).__name__}: {exc}") from None
    model.train()
    try:
        output = model()
    except Exception as exc:
        raise ModelContractError(f"{where}: forward() on a tiny graph raised {type(exc).__name__}: {exc}") from None
    users, items = _check_embeddings(output, num_users, num_items, where)
    batch = (torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([4, 0]))
    try:
        extra = model.auxiliary_loss(*batch, users, items)
    except Exception as exc:
        raise ModelContractError(f"{where}: auxiliary_loss() on a tiny graph raised {type(exc).__name__}: {exc}") from None
    if extra is not None and not (isinstance(extra, Tensor) and extra.dim() == 0 and extra.is_floating_point()):
        raise ModelContractError(f"{where}: auxiliary_loss() returned {_describe(extra)}; expected a scalar float "
                                 "tensor or None")


def _check_embeddings(output: Any, num_users: int, num_items: int, where: str) -> tuple[Tensor, Tensor]:
    expected = f"expected (user embeddings ({num_users}, d), item embeddings ({num_items}, d)), float tensors"
    if not (isinstance(output, tuple) and len(output) == 2 and all(isinstance(t, Tensor) for t in output)):
        raise ModelContractError(f"{where}: forward() returned {_describe(output)}; {expected}")
    users, items = output
    if (users.dim() != 2 or items.dim() != 2 or users.shape[0] != num_users or items.shape[0] != num_items
            or users.shape[1] != items.shape[1] or not users.is_floating_point() or not items.is_floating_point()):
        raise ModelContractError(f"{where}: forward() returned {_describe(output)} on a graph of {num_users} users and "
                                 f"{num_items} items; {expected} of one width d")
    return users, items


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')} tensor"
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    return f"a {type(value).__name__}"
