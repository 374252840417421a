"""Everything one training run is configured by (the spec's `fixed` block, and each trial's config): the training
hyperparameters, declared here, and the model's own, which its constructor declares (tuner.recsys.models.contract)
and which this model keeps as extra fields (`model_extra`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Hyperparameters(BaseModel):
    """Training hyperparameters (they drive the Trainer) and, as extra fields, the model's own (its constructor takes
    them). Which extra names are valid, and their types, only the model knows: a spec is checked against it when it
    is loaded (tuner.spec_loader)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    # optimisation
    lr: float = Field(0.001, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    regularization: Literal["embedding_l2", "optimizer"] = "embedding_l2"
    samples_per_user: int | None = Field(None, ge=1)
    batch_size: int = Field(2048, ge=1)
    epochs: int = Field(100, ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # what numpy's generators take
    # evaluation
    eval_every: int = Field(1, ge=1)
    k: tuple[int, ...] = (10, 20)
    eval_batch_size: int = Field(1024, ge=1)

    @field_validator("k", mode="before")
    @classmethod
    def _k_list(cls, value):
        if isinstance(value, int):
            value = [value]
        if not value:
            raise ValueError("needs at least one K")
        return value

    @field_validator("k")
    @classmethod
    def _k_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(k < 1 for k in value):
            raise ValueError(f"every K must be >= 1, got {list(value)}")
        return tuple(sorted(set(value)))

    def model_values(self) -> dict:
        """The model's own hyperparameters (the extra fields)."""
        return dict(self.model_extra or {})
