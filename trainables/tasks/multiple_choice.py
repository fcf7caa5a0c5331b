"""Multiple choice (XCOPA; English COPA and SocialIQA for training): one score per choice.

Inputs, as XTREME-R's ``third_party/run_xcopa.py`` builds them: every choice is its own
sequence pair ``tokenizer(context + " " + prompt, choice)``, truncated to ``max_length``. The
prompt is the example's question: COPA / XCOPA ``"What was the cause?"`` or ``"What was the
effect?"`` (run_xcopa's ``f"{premise} What was the {question}?"``), SocialIQA its own question
(``f"{context} {question}"``); tasks without a context (MedMCQA) or without a question
(HellaSwag, CaseHOLD) put the one they have first. ``tests/test_protocol_golden.py`` compares
the pairs and their input ids with run_xcopa's on the XCOPA fixture. The choices of a batch
are flattened, scored by dropout and a linear layer on the pooled output (``*ForMultipleChoice``,
``trainables.tasks.heads``), and regrouped per example; loss:
cross-entropy over the choices; metric: accuracy.

Mirror formats:
- COPA / XCOPA jsonl: one JSON object per line with ``premise``, ``choice1``, ``choice2``,
  ``question`` (``cause``|``effect``) and ``label`` (0/1), plus ``idx``;
- SocialIQA: ``{split}.jsonl`` (``context``, ``question``, ``answerA..C``) and
  ``{split}-labels.lst`` (1-3, one per line), line-aligned;
- intermediate tasks (HellaSwag, CaseHOLD, MedMCQA, SciQ): JSONL with the hub's own fields,
  one row per line, read by the same adapter as the hub rows (``choice_row``). CaseHOLD and
  HellaSwag put everything in the context (no question); MedMCQA has no context; SciQ's
  support paragraph is the context and its choices are put in a fixed per-question order.
Official prediction layout: ``test-{lang}.jsonl``, one ``{"label": choice index}`` per line,
for predictions and gold alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trainables.data import DataError, hub_rows, jsonl_rows
from trainables.scoring.metrics import accuracy
from trainables.tasks.base import Encoding, pad_inputs, tokenizer_inputs
from trainables.tasks.heads import choice_scorer

COPA_PROMPTS = {"cause": "What was the cause?", "effect": "What was the effect?"}
"""run_xcopa.py's ``What was the {question}?``, per COPA question."""


@dataclass(frozen=True)
class ChoiceExample:
    """A context, a prompt and its choices, with the right one."""
    context: str
    prompt: str
    choices: tuple[str, ...]
    label: int


def _copa_example(row: dict, where: str) -> ChoiceExample:
    missing = [k for k in ("premise", "choice1", "choice2", "question", "label") if k not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    if row["question"] not in COPA_PROMPTS:
        raise DataError(f"{where}: question '{row['question']}' is not one of cause, effect")
    if row["label"] not in (0, 1):
        raise DataError(f"{where}: label {row['label']!r} is not one of 0, 1")
    return ChoiceExample(row["premise"], COPA_PROMPTS[row["question"]],
                         (row["choice1"], row["choice2"]), int(row["label"]))


def read_copa_jsonl(path: str | Path) -> list[ChoiceExample]:
    """COPA-format JSON lines; errors name the file and line."""
    path = Path(path)
    out = [_copa_example(row, f"{path}:{n}") for n, row in jsonl_rows(path)]
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def read_siqa(path: str | Path) -> list[ChoiceExample]:
    """SocialIQA in either release: the leaderboard's ``{split}.jsonl`` with a line-aligned
    ``{split}-labels.lst`` (1-3), or ``socialIQa_v1.4_*.jsonl`` (what XTREME-R downloads) whose
    rows carry the answer as ``correct`` (A/B/C)."""
    path = Path(path)
    rows = list(jsonl_rows(path))
    labels_path = path.with_name(path.stem + "-labels.lst")
    if rows and "correct" in rows[0][1]:
        labels = [(n, {"A": "1", "B": "2", "C": "3"}.get(str(row.get("correct")), str(row.get("correct"))))
                  for n, row in rows]
        where = path
    elif labels_path.is_file():
        labels = [(n, line.strip()) for n, line in
                  enumerate(labels_path.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()]
        where = labels_path
        if len(rows) != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} labels for {len(rows)} examples in {path.name}")
    else:
        raise DataError(f"{labels_path}: file not found (SocialIQA labels go next to {path.name}, "
                        f"or each row carries 'correct')")
    out = []
    for (n, row), (m, label) in zip(rows, labels):
        missing = [k for k in ("context", "question", "answerA", "answerB", "answerC") if k not in row]
        if missing:
            raise DataError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        if label not in ("1", "2", "3"):
            raise DataError(f"{where}:{m}: label '{label}' is not one of 1, 2, 3 (A, B, C)")
        out.append(ChoiceExample(row["context"], row["question"],
                                 (row["answerA"], row["answerB"], row["answerC"]), int(label) - 1))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def _label(row: dict, column: str, names: dict, where: str, choices: int) -> int | None:
    """A choice index from a ClassLabel (its names are the choices' digits, CaseHOLD ``0``-``4``,
    or letters, MedMCQA ``a``-``d``), a digit string (HellaSwag ``"0"``-``"3"``) or an int;
    None when unlabelled (-1 or "": a hidden test label)."""
    raw = row.get(column)
    if raw is None or raw == "" or raw == -1:
        return None
    name = str(names[column][raw]) if column in names and isinstance(raw, int) else str(raw)
    if name.isdigit():
        index = int(name)
    elif len(name) == 1 and name.isalpha():
        index = ord(name.lower()) - ord("a")
    else:
        index = -1
    if not 0 <= index < choices:
        allowed = names.get(column) or [str(i) for i in range(choices)]
        raise DataError(f"{where}: {column} {raw!r} ({name}) is not one of {', '.join(map(str, allowed))}")
    return index


def _shuffled(question: str, correct: str, others: list[str]) -> tuple[tuple[str, ...], int]:
    """SciQ lists the answer first: a fixed, example-seeded order so the answer is not always A."""
    import random

    choices = [correct, *others]
    random.Random(question).shuffle(choices)
    return tuple(choices), choices.index(correct)


def choice_row(kind: str, row: dict, names: dict, where: str) -> ChoiceExample | None:
    """One hub (or mirrored) row of a multiple-choice dataset -> an example; None if unlabelled."""
    try:
        if kind == "siqa":  # lighteval/siqa: label "1".."3" (a string), as the release's labels file
            label = str(row["label"]).strip()
            if label not in ("1", "2", "3"):
                raise DataError(f"{where}: label {row['label']!r} is not one of 1, 2, 3 (A, B, C)")
            return ChoiceExample(row["context"], row["question"],
                                 (row["answerA"], row["answerB"], row["answerC"]), int(label) - 1)
        if kind == "hellaswag":  # ctx = ctx_a + ctx_b; 4 endings; label "0".."3" ("" on test)
            label = _label(row, "label", names, where, len(row["endings"]))
            return None if label is None else ChoiceExample(row["ctx"], "", tuple(row["endings"]), label)
        if kind == "casehold":  # the citing context with <HOLDING>; 5 candidate holdings (ClassLabel "0".."4")
            label = _label(row, "label", names, where, len(row["endings"]))
            return None if label is None else ChoiceExample(row["context"], "", tuple(row["endings"]), label)
        if kind == "medmcqa":  # cop: ClassLabel a..d, the correct option (-1 on the hidden test split)
            label = _label(row, "cop", names, where, 4)
            return None if label is None else ChoiceExample(
                "", row["question"], (row["opa"], row["opb"], row["opc"], row["opd"]), label)
        if kind == "sciq":
            choices, label = _shuffled(row["question"], row["correct_answer"],
                                       [row["distractor1"], row["distractor2"], row["distractor3"]])
            return ChoiceExample(row.get("support") or "", row["question"], choices, label)
    except KeyError as e:
        raise DataError(f"{where}: missing field {e}") from None
    return _copa_example(row, where)


def choices_from_hub(source: tuple, kind: str, data_dir: str = "hub") -> list[ChoiceExample]:
    """Multiple-choice examples of a hub dataset of format ``kind``."""
    out = [choice_row(kind, row, names, where) for where, row, names in hub_rows(*source, data_dir)]
    return [e for e in out if e is not None]


def first_segment(example: ChoiceExample) -> str:
    """The first sequence of every choice's pair: the context, a space, the prompt (run_xcopa.py)."""
    if example.context and example.prompt:
        return f"{example.context} {example.prompt}"
    return example.context or example.prompt


class MultipleChoice:
    """The multiple-choice family (XCOPA and its SocialIQA recipe, HellaSwag and the other choice tasks)."""
    name = "multiple_choice"

    def load(self, task, split: str, lang: str, data_dir: str) -> list[ChoiceExample]:
        if task.from_hub(data_dir, split, lang):
            return choices_from_hub(task.hub_source(split, lang), task.mirror_format, data_dir)
        path = task.mirror_path(data_dir, split, lang)
        if task.mirror_format in ("hellaswag", "casehold", "medmcqa", "sciq"):  # JSONL, one hub-shaped row per line
            out = [choice_row(task.mirror_format, row, {}, f"{path}:{n}") for n, row in jsonl_rows(path)]
            return [e for e in out if e is not None]
        return (read_siqa if task.mirror_format == "siqa" else read_copa_jsonl)(path)

    def augment(self, example, fn):
        """RS-DA: the context and every choice rewritten by ``fn`` (text -> text)."""
        return replace(example, context=fn(example.context), choices=tuple(fn(c) for c in example.choices))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        firsts = [first_segment(e) for e in examples for _ in e.choices]
        seconds = [c for e in examples for c in e.choices]
        enc = tokenizer(firsts, seconds, truncation=True, max_length=cfg.max_length)
        feats, k = [], 0
        for i, e in enumerate(examples):
            rows = [tokenizer_inputs(enc, k + c) for c in range(len(e.choices))]
            k += len(e.choices)
            feats.append({key: [r[key] for r in rows] for key in rows[0]}
                         | {"labels": e.label, "example": i})
        return feats

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        counts = {len(f["input_ids"]) for f in features}
        if len(counts) != 1:
            raise ValueError(f"examples with different numbers of choices in one batch: {sorted(counts)}")
        n = counts.pop()
        flat = [{k: f[k][c] for k in f if k not in ("labels", "example")} for f in features for c in range(n)]
        return {**pad_inputs(flat, pad_id), "labels": torch.tensor([f["labels"] for f in features])}

    def head(self, encoder, task) -> nn.Module:
        return choice_scorer(encoder)

    def loss(self, outputs, batch) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs.view(batch["labels"].shape[0], -1), batch["labels"])

    def raw(self, outputs, batch) -> list:
        return outputs.view(batch["labels"].shape[0], -1).argmax(-1).tolist()

    def decode(self, task, examples, features, raw) -> list[str]:
        preds = [None] * len(examples)
        for f, r in zip(features, raw):
            preds[f["example"]] = int(r)
        return preds

    def gold(self, task, examples) -> list[int]:
        return [e.label for e in examples]

    def score(self, task, lang, examples, predictions) -> dict[str, float]:
        return accuracy(self.gold(task, examples), predictions)

    def write(self, task, lang, examples, predictions, pred_dir: Path, label_dir: Path) -> None:
        from trainables.scoring.files import write_jsonl

        write_jsonl(pred_dir / task.key / f"test-{lang}.jsonl", [{"label": p} for p in predictions])
        write_jsonl(label_dir / task.key / f"test-{lang}.jsonl", [{"label": g} for g in self.gold(task, examples)])


FAMILY = MultipleChoice()
