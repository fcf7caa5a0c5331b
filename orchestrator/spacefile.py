"""Reading a space file: where it is, what it says, and where each key is written.

- ``find_space(name)``: a path as given, or the name of a space shipped with the package
  (``search_spaces/*.yaml``, package data), so ``xlt-sweep --space domains.yaml`` (or just
  ``domains``) works from any directory. A path that exists always wins over a shipped name.
- ``read_space(path)``: safe YAML only (no tags that construct objects), parsed once into the
  node tree so that (1) a key written twice in one mapping, at any depth, is an error naming
  both lines (PyYAML would keep the second silently: a second ``robust:`` block makes the swept
  methods vanish), and (2) every key and list item keeps its ``line:column``, so validation
  problems can point at the place to edit (``Positions``).

Positions are 1-based, as editors show them. Keys brought in by a YAML merge (``<<: *base``)
have the position of the merge.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "search_spaces"


def shipped_spaces() -> dict[str, Path]:
    """The space files installed with the package, by file name."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        return {}
    return {p.name: Path(str(p)) for p in root.iterdir() if p.name.endswith((".yaml", ".yml"))}


def find_space(name: str | Path) -> Path | None:
    """``name`` as a path if it exists, else the shipped space of that file name (``.yaml``
    may be left out; a leading ``search_spaces/`` is ignored); None if neither."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = shipped_spaces()
    for candidate in (path.name, f"{path.name}.yaml", f"{path.name}.yml"):
        if candidate in shipped and (len(path.parts) == 1 or path.parent.name == PACKAGE):
            return shipped[candidate]
    return None


class Positions:
    """``key path -> (line, column)`` of one YAML document."""

    def __init__(self):
        self.at: dict[tuple, tuple[int, int]] = {}

    def of(self, path: tuple) -> tuple[int, int] | None:
        """The position of ``path``, or of its longest prefix that has one."""
        path = tuple(path)
        while path:
            if path in self.at:
                return self.at[path]
            path = path[:-1]
        return None


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node, path: tuple, pos: Positions, dups: list) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, path, pos, dups)
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            where = _mark(key_node)
            if key in first:
                dotted = ".".join(str(p) for p in (*path, key))
                dups.append((f"{dotted}: duplicate key, written on line {first[key][0]} and again on line "
                             f"{where[0]} (YAML would keep only the second silently); keep one", where))
            else:
                first[key] = where
            pos.at.setdefault((*path, key), where)
            _walk(value_node, (*path, key), pos, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            pos.at.setdefault((*path, i), _mark(item))
            _walk(item, (*path, i), pos, dups)


def read_space(path: Path) -> tuple[Any, Positions, list[tuple[str, tuple[int, int]]]]:
    """Parse one YAML document safely; return (data, positions, duplicate keys as
    ``(problem, (line, column))``). The data is built even with duplicates (so the rest of
    the file is validated in the same pass), but a caller must refuse it. Raises
    ``yaml.YAMLError`` (syntax, or a tag safe YAML refuses)."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        pos, dups = Positions(), []
        if node is None:
            return None, pos, dups
        _walk(node, (), pos, dups)
        return loader.construct_document(node), pos, dups
    finally:
        loader.dispose()
