"""Everything one training run is configured by (the spec's `fixed` block, and each trial's config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Hyperparameters(BaseModel):
    """Model and training hyperparameters. Models take the ones their constructor names; the rest drive
    `training.fit`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # model
    embedding_dim: int = Field(64, ge=1, le=4096)
    num_layers: int = Field(3, ge=0, le=16)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # NGCF message dropout, GAT attention dropout
    heads: int = Field(2, ge=1, le=64)  # GAT attention heads (averaged)
    # optimisation
    lr: float = Field(0.001, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    regularization: Literal["embedding_l2", "optimizer"] = "embedding_l2"
    samples_per_user: int | None = Field(None, ge=1)
    batch_size: int = Field(2048, ge=1)
    epochs: int = Field(100, ge=1)
    seed: int = 0
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
