"""Swept values of a space file: a fixed number, a categorical choice, or a continuous range."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from trainables.names import unknown
from trainables.robust import METHODS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A continuous range Optuna samples from (``log``: on a log scale)."""
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        return self


class Choice(_Strict):
    """A grid of values, each a cell of its own."""
    choice: list[float] = Field(min_length=1)

    @field_validator("choice")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate values in {v}: every value would run twice")
        return v


def _param_form(v: Any) -> str | None:
    if isinstance(v, dict):
        return "choice" if "choice" in v else "range" if {"low", "high"} & v.keys() else None
    return "fixed"


Param = Annotated[
    Annotated[float, Tag("fixed")] | Annotated[Choice, Tag("choice")] | Annotated[Range, Tag("range")],
    Discriminator(
        _param_form,
        custom_error_type="param_form",
        custom_error_message="expected a number, {choice: [v1, v2, ...]} or "
                             "{low: x, high: y, log: true|false} (noise_magnitude also takes "
                             "{method: one of those} per robust method)",
    ),
]
"""A swept knob: fixed number, categorical choice (grid axis), or continuous range (Optuna)."""


def _magnitude_form(v: Any) -> str:
    if isinstance(v, dict) and v.keys() & METHODS.keys() and not ({"choice", "low", "high", "log"} & v.keys()):
        return "per_method"
    return "shared"


Magnitude = Annotated[
    Annotated[Param, Tag("shared")] | Annotated[dict[str, Param], Tag("per_method")],
    Discriminator(_magnitude_form),
]
"""``noise_magnitude``: one Param shared by every noisy method, or ``{method: Param}`` (each
method on its own scale: epsilon, sigma and a probability rarely share a range)."""


def param_values(p: Param) -> list[float] | None:
    """The finite values of a fixed or choice param; None for a range."""
    if isinstance(p, Range):
        return None
    return list(p.choice) if isinstance(p, Choice) else [float(p)]


def _unique_list(v: list, what: str) -> list:
    dup = sorted({x for x in v if v.count(x) > 1}, key=str)
    if dup:
        raise ValueError(f"duplicate {what} {dup}: every {what[:-1]} runs once")
    return v


def _registry_keys(v: list[str], registry, kind: str) -> list[str]:
    """A categorical axis: every key known to its registry, none twice."""
    bad = [unknown(kind, k, registry) for k in v if k not in registry]
    if bad:
        raise ValueError("\n".join(bad))
    return _unique_list(v, kind.split()[-1] + "s")
