"""Reading space files: one sweep, or several (``studies``), validated before Ray starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from orchestrator.spacefile import Positions, find_space, read_space, shipped_spaces
from orchestrator.spec.errors import _SUBPATH, SpecError, _locate, _message, _path
from orchestrator.spec.sweep import SweepSpec


def parse_spec(data: Any, source: str = "<spec>", positions: Positions | None = None,
               prefixes: list[tuple] | None = None) -> SweepSpec:
    """Validate a parsed YAML document; raise SpecError listing every problem (with its
    ``line:column`` where ``positions`` has one)."""
    if not isinstance(data, dict):
        raise SpecError(source, ["(top level): expected a mapping of sections"])
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as e:
        problems, seen = [], set()
        for err in e.errors():
            path = _path(err["loc"])
            for part in _message(err).split("\n"):  # a validator may report several problems
                if path == "(top level)" and _SUBPATH.match(part):
                    line = part
                elif _SUBPATH.match(part):
                    line = f"{path}.{part}"
                else:
                    line = f"{path}: {part}"
                if line not in seen:  # union branches can repeat one problem
                    seen.add(line)
                    problems.append(line)
        raise SpecError(source, problems, _locate(problems, positions, prefixes or [])) from None


def resolve_space(path: str | Path) -> Path:
    """The space file ``path`` names: a path, or a space shipped with the package."""
    found = find_space(path)
    if found is None:
        shipped = ", ".join(sorted(shipped_spaces())) or "none installed"
        raise SpecError(str(path), [f"file not found (from {Path.cwd()}); shipped spaces, usable by name "
                                    f"from any directory: {shipped}"])
    return found


class _Source:
    """A read space file: its data, key positions and the problems found while reading."""

    def __init__(self, path: str | Path):
        found = resolve_space(path)
        self.path = str(found)
        try:
            self.data, self.positions, dups = read_space(found)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = f"not valid YAML: {getattr(e, 'problem', None) or e}"
            raise SpecError(self.path, [problem], {} if mark is None else {
                problem: (mark.line + 1, mark.column + 1)}) from None
        self.problems = [m for m, _ in dups]
        self.where = dict(dups)

    def fail(self, problems: list[str] = (), where: dict | None = None):
        """Raise every problem of the file: those found reading it, then ``problems``."""
        everything = [*self.problems, *(p for p in problems if p not in self.problems)]
        raise SpecError(self.path, everything, {**self.where, **(where or {})}) from None

    def parse(self, data: Any, prefixes: list[tuple] | None = None) -> SweepSpec:
        try:
            spec = parse_spec(data, self.path, self.positions, prefixes)
        except SpecError as e:
            self.fail(e.problems, e.where)
        if self.problems:
            self.fail()
        return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a space file of one sweep (safe YAML only)."""
    src = _Source(path)
    if isinstance(src.data, dict) and "studies" in src.data:
        src.fail(["studies: this file holds several sweeps; load it with load_sweeps"])
    return src.parse(src.data)


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_sweeps(path: str | Path, only: list[str] | None = None, data_dir: str | None = None) -> list[SweepSpec]:
    """The sweeps of a space file: itself, or one per entry of its ``studies`` section.

    ``studies: {key: overrides}`` makes a file hold several sweeps that differ in a few keys
    (the model, the target task and what depends on them: a paper's model x task grid). Each
    study is the rest of the file deep-merged with its overrides, named ``{name}-{key}``, and
    validated as a whole sweep; problems are reported for all studies at once, a problem
    shared by every study once. ``only`` picks studies by key (``xlt-sweep --study``);
    ``data_dir`` (``xlt-sweep --data-dir``) replaces ``target.data_dir`` and
    ``intermediate.data_dir`` everywhere (an offline mirror)."""
    src = _Source(path)
    data = src.data
    if data_dir is not None and isinstance(data, dict):
        over = {"target": {"data_dir": data_dir}, "intermediate": {"data_dir": data_dir}}
        data = deep_merge(data, over)
        if isinstance(data.get("studies"), dict):
            data["studies"] = {k: deep_merge(v, over) if isinstance(v, dict) else v
                               for k, v in data["studies"].items()}
    if not (isinstance(data, dict) and "studies" in data):
        if only:
            src.fail([f"--study {', '.join(only)}: this file has no studies section"])
        return [src.parse(data)]
    studies = data.get("studies")
    base = {k: v for k, v in data.items() if k != "studies"}
    if not isinstance(studies, dict) or not studies or not all(isinstance(v, dict) for v in studies.values()):
        src.fail(["studies: expected a mapping {study key: {overrides}} with at least one study"])
    problems = [f"studies.{k}: a study key must match [A-Za-z0-9][A-Za-z0-9_.-]*" for k in studies
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(k))]
    problems += [f"--study {k}: no such study; allowed: {', '.join(map(str, studies))}"
                 for k in only or [] if k not in studies]
    if problems:
        src.fail(problems, _locate(problems, src.positions, []))
    specs, found, where = [], {}, {}
    selected = [k for k in studies if not only or k in only]
    for key in selected:
        merged = deep_merge(base, studies[key])
        merged["name"] = f"{merged.get('name', '')}-{key}"
        try:
            specs.append(parse_spec(merged, src.path, src.positions, [("studies", key)]))
        except SpecError as e:
            for problem in e.problems:
                found.setdefault(problem, []).append(str(key))
                if problem in e.where:
                    where.setdefault(problem, e.where[problem])
    if found or src.problems:
        lines = {p: p if len(keys) == len(selected) > 1 else f"[studies {', '.join(keys)}] {p}"
                 for p, keys in found.items()}
        src.fail(list(lines.values()), {lines[p]: at for p, at in where.items()})
    return specs
