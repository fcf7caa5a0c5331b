"""Prediction and label files in the layout google-research/xtreme's ``evaluate.py`` reads
(``{dir}/{task}/test-{lang}.tsv|json``): the writers every task family uses for its
predictions and gold files, and the readers the folder evaluator (``trainables.scoring.evaluator``)
uses. Writes are atomic (a temporary file, then ``os.replace``)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ScoreError(ValueError):
    """Unusable prediction or label folders; the message names every bad file."""


# ------------------------------------------------------------------------------------ writers


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_lines(path: Path, lines) -> None:
    """One value per line."""
    _atomic_write(Path(path), "".join(f"{x}\n" for x in lines))


def write_tag_file(path: Path, sentences) -> None:
    """One tag per line, a blank line after each sentence."""
    _atomic_write(Path(path), "".join("".join(f"{t}\n" for t in s) + "\n" for s in sentences))


def write_json(path: Path, obj) -> None:
    """One JSON document (UTF-8, not ASCII-escaped)."""
    _atomic_write(Path(path), json.dumps(obj, ensure_ascii=False))


# ------------------------------------------------------------------------------------ readers
# They read exactly what evaluate.py reads: stripped lines; for tags, a blank line closes a
# sentence (two blank lines in a row make an empty one, as there).


def read_label(path: Path) -> list[str]:
    """The stripped lines of a label file."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f]


def read_tag(path: Path) -> list[list[str]]:
    """The sentences of a tag file (a blank line closes one)."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                current.append(line)
            else:
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return sentences


def read_xcopa(path: Path) -> list:
    """One JSON object per line; only its ``label`` is read (as evaluate.py does)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            try:
                out.append(json.loads(line)["label"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ScoreError(f"{path}:{n}: expected a JSON object with a 'label'") from None
    return out


def write_jsonl(path: Path, rows) -> None:
    """One JSON object per line."""
    _atomic_write(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: Path):
    """A JSON document (its ``data`` when it is a SQuAD-style file); invalid JSON raises ``ScoreError`` with the
    line."""
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as e:
            raise ScoreError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    return doc["data"] if isinstance(doc, dict) and "data" in doc else doc
