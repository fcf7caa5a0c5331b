"""Sentence(-pair) classification (XNLI, PAWS-X; intermediate NLI, pair and single-sentence tasks).

Inputs: ``tokenizer(sentence1, sentence2)`` truncated to ``max_length``; head: what
``run_classify.py``'s model class puts on the encoder (BERT: the pooler, dropout, linear;
XLM-R: dense + tanh on <s>; ``trainables.tasks.heads``); loss: cross-entropy; metric: accuracy.

Mirror format: tab-separated ``sentence1<TAB>sentence2<TAB>label`` (XNLI as the XTREME
download writes it) or ``id<TAB>sentence1<TAB>sentence2<TAB>label`` (PAWS-X ``x-final``); a
header line naming the columns is skipped. Labels are the names in the task's label set
(``entailment``, ``0``/``1`` ...). Official prediction layout: one label name per line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trainables.data import DataError, hub_rows, jsonl_rows
from trainables.scoring.metrics import accuracy
from trainables.tasks.base import Encoding, pad_inputs, tokenizer_inputs
from trainables.tasks.heads import sequence_classifier

_HEADERS = (["premise", "hypothesis", "label"], ["sentence1", "sentence2", "label"],
            ["id", "sentence1", "sentence2", "label"])


@dataclass(frozen=True)
class PairExample:
    """A sentence pair (or a single sentence) and its label."""
    premise: str
    hypothesis: str | None
    """None for single-sentence classification (LEDGAR, Financial PhraseBank)."""
    label: int


def read_pair_jsonl(path: Path, labels: tuple[str, ...]) -> list[PairExample]:
    """SNLI-style JSONL (MedNLI's ``mli_*_v1.jsonl``): ``sentence1``, ``sentence2``, ``gold_label``."""
    index = {name: i for i, name in enumerate(labels)}
    rows = []
    for n, row in jsonl_rows(path):
        missing = [k for k in ("sentence1", "sentence2", "gold_label") if k not in row]
        if missing:
            raise DataError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        if row["gold_label"] not in index:
            raise DataError(f"{path}:{n}: label '{row['gold_label']}' is not one of {', '.join(labels)}")
        rows.append(PairExample(row["sentence1"], row["sentence2"], index[row["gold_label"]]))
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def read_pair_tsv(path: str | Path, labels: tuple[str, ...]) -> list[PairExample]:
    """Read a pair file: 3 or 4 tab-separated columns (id first), or 2 (sentence, label) for a
    single-sentence task; ``.jsonl`` files are SNLI-style. Bad lines name file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".jsonl":
        return read_pair_jsonl(path, labels)
    index = {name: i for i, name in enumerate(labels)}
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            cols = line.split("\t")
            if n == 1 and [c.lower() for c in cols] in _HEADERS:
                continue
            if len(cols) == 4:
                cols = cols[1:]
            if len(cols) == 2:  # single sentence, label
                cols = [cols[0], None, cols[1]]
            if len(cols) != 3:
                raise DataError(f"{path}:{n}: expected 3 tab-separated columns (sentence1, sentence2, "
                                f"label), 4 (id first) or 2 (sentence, label), found {len(cols)}")
            if cols[2] not in index:
                raise DataError(f"{path}:{n}: label '{cols[2]}' is not one of {', '.join(labels)}")
            rows.append(PairExample(cols[0], cols[1], index[cols[2]]))
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def _field(row: dict, path: str | None, where: str):
    """A column, or a nested one (``context.contexts``); lists of passages are joined."""
    if path is None:
        return None
    value = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise DataError(f"{where}: missing field '{path}'")
        value = value[part]
    return " ".join(value) if isinstance(value, list) else value


def pairs_from_hub(source: tuple, fields: tuple, labels: tuple[str, ...],
                   data_dir: str = "hub") -> list[PairExample]:
    """Hub rows -> examples; ``fields`` are the (sentence1, sentence2 or None, label) columns,
    dotted for nested ones. ``labels`` () takes the label column's ClassLabel names."""
    first, second, label = fields
    out = []
    index = {name: i for i, name in enumerate(labels)}
    for where, row, names in hub_rows(*source, data_dir):
        if not index and label in names:
            index = {name: i for i, name in enumerate(names[label])}
        raw = row[label]
        if raw is None or raw == -1:  # unlabeled rows (GLUE test)
            continue
        name = names[label][raw] if label in names and isinstance(raw, int) else str(raw)
        if name not in index:
            raise DataError(f"{where}: label '{name}' is not one of {', '.join(index) or '(no label set)'}")
        out.append(PairExample(_field(row, first, where), _field(row, second, where), index[name]))
    return out


class PairClassification:
    """The classification family (XNLI, PAWS-X, and the NLI and classification intermediate tasks)."""
    name = "classification"
    hub_fields = ("premise", "hypothesis", "label")

    def load(self, task, split: str, lang: str, data_dir: str) -> list[PairExample]:
        if task.from_hub(data_dir, split, lang):
            fields = task.hub_fields or self.hub_fields
            return pairs_from_hub(task.hub_source(split, lang), fields, task.labels, data_dir)
        return read_pair_tsv(task.mirror_path(data_dir, split, lang), task.labels)

    def source_files(self, task, split, lang, data_dir) -> list[Path]:
        return [task.mirror_path(data_dir, split, lang)]

    def augment(self, example, fn):
        """RS-DA: both sentences rewritten by ``fn`` (text -> text)."""
        return replace(example, premise=fn(example.premise),
                       hypothesis=None if example.hypothesis is None else fn(example.hypothesis))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        if examples and all(e.hypothesis is None for e in examples):  # single-sentence task
            enc = tokenizer([e.premise for e in examples], truncation=True, max_length=cfg.max_length)
        else:
            enc = tokenizer([e.premise for e in examples], [e.hypothesis or "" for e in examples],
                            truncation=True, max_length=cfg.max_length)
        return [{**tokenizer_inputs(enc, i), "labels": e.label, "example": i}
                for i, e in enumerate(examples)]

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        return {**pad_inputs(features, pad_id), "labels": torch.tensor([f["labels"] for f in features])}

    def head(self, encoder, task) -> nn.Module:
        return sequence_classifier(encoder, len(task.labels))

    def loss(self, outputs, batch) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs, batch["labels"])

    def raw(self, outputs, batch) -> list:
        return outputs.argmax(-1).tolist()

    def decode(self, task, examples, features, raw) -> list[str]:
        preds = [None] * len(examples)
        for f, r in zip(features, raw):
            preds[f["example"]] = task.labels[r]
        return preds

    def gold(self, task, examples) -> list[str]:
        return [task.labels[e.label] for e in examples]

    def score(self, task, lang, examples, predictions) -> dict[str, float]:
        return accuracy(self.gold(task, examples), predictions)

    def write(self, task, lang, examples, predictions, pred_dir: Path, label_dir: Path) -> None:
        from trainables.scoring.files import write_lines

        write_lines(pred_dir / task.key / f"test-{lang}.tsv", predictions)
        write_lines(label_dir / task.key / f"test-{lang}.tsv", self.gold(task, examples))


FAMILY = PairClassification()
