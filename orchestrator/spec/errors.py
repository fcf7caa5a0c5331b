"""Every problem of a space file as one line naming its key path, what is wrong and what is
allowed, with its ``line:column`` where the file has one."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import (
    BaseModel,
)

from orchestrator.spacefile import Positions
from orchestrator.spec.params import Choice, Range
from orchestrator.spec.sweep import SweepSpec


class SpecError(ValueError):
    """All problems of one space file, one per line; ``where`` gives the ``(line, column)``
    of the problems that have a place in the file (shown as ``line:column:`` before them)."""

    def __init__(self, source: str, problems: list[str], where: dict[str, tuple[int, int]] | None = None):
        self.problems = problems
        self.where = dict(where or {})
        head = f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)}"
        lines = [f"  - {'{}:{}: '.format(*self.where[p]) if p in self.where else ''}{p}" for p in problems]
        super().__init__("\n".join([head, *lines]))


_TAGS = {"fixed": None, "choice": Choice, "range": Range}
_PARAM_KEYS = ("learning_rate", "noise_magnitude")


def _clean(loc: tuple) -> tuple:
    """Drop the union-member tags and validator names pydantic puts into error locations."""
    out: list = []
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if part in ("shared", "per_method") and out and out[-1] == "noise_magnitude":
            continue
        if part in _TAGS and out and (out[-1] in _PARAM_KEYS or out[-2:-1] == ["noise_magnitude"]):
            out += ["__tag__", part]
            continue
        out.append(part)
    return tuple(out)


def _path(loc: tuple) -> str:
    out = ""
    parts = list(_clean(loc))
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "__tag__":
            i += 2
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        i += 1
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the key at ``loc`` (for listing allowed keys)."""
    parts = list(_clean(loc))[:-1]
    if len(parts) >= 2 and parts[-2] == "__tag__":
        return _TAGS[parts[-1]]
    model: Any = SweepSpec
    for part in parts:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None:
            return None
    return model


def _message(err: dict) -> str:
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key{hint}; allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ")
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type", "bool_parsing",
                "string_type", "list_type", "dict_type", "model_type"):
        msg += f" (got {err.get('input')!r})"
    return msg


_KEY_PATH = r"[A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*"
"""A dotted key path with list indices (``robust.options.rs_rp.layer``, ``seeds[2]``)."""
_SUBPATH = re.compile(rf"^{_KEY_PATH}: ")
"""A validator's problem that starts with its own key path (``options.rs_rp.layer: ...``)."""


_LEAD = re.compile(r"^\[studies [^\]]*\] |^")
_KEYPATH = re.compile(rf"^({_KEY_PATH})(?=[: ])")


def _key_path(problem: str) -> tuple:
    """The key path a problem line starts with, as a tuple (``a.b[2]`` -> ``('a', 'b', 2)``)."""
    m = _KEYPATH.match(problem[_LEAD.match(problem).end():])
    if not m:
        return ()
    return tuple(int(x[1:-1]) if x.startswith("[") else x
                 for x in re.findall(r"\[\d+\]|[^.\[\]]+", m.group(1)))


def _locate(problems: list[str], positions: Positions | None, prefixes: list[tuple]) -> dict:
    """``{problem: (line, column)}`` for the problems whose key path (or a parent of it) is
    written in the file; ``prefixes``: where to look first (a study's overrides)."""
    if positions is None:
        return {}
    where = {}
    for problem in problems:
        path = _key_path(problem)
        if not path:
            continue
        for prefix in [*prefixes, ()]:
            at = positions.at.get((*prefix, *path)) if prefix else positions.of(path)
            if at is not None:
                where[problem] = at
                break
    return where
