"""Extractive QA (XQuAD, MLQA, TyDiQA-GoldP; SQuAD v1.1 as English training data).

Inputs: ``tokenizer(question, context)`` with the question cut to ``max_query_length`` tokens
and the context split into overlapping windows (``doc_stride`` tokens of overlap) so a long
paragraph is read whole; offsets map tokens back to context characters (fast tokenizers).
Training: a window holding the whole first gold answer points at it, any other window at the
first token (no answer in this window). Head: a linear layer giving start and end logits.

Decoding: over every window of a question, the ``n_best`` highest start and end logits; a
span is valid when both ends lie in the context, end >= start and it is at most
``max_answer_length`` tokens long; the best start+end logit sum wins; the answer is the
context's characters under the span. No valid span: the empty answer (which scores 0).

Metric: SQuAD EM/F1; MLQA with its language-aware normalisation (``task.qa_normalization``).
Mirror format: SQuAD v1.1 JSON (``{"data": [{"title", "paragraphs": [{"context", "qas":
[{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}``). Official prediction
layout: ``{id: answer}`` JSON; the gold file is the SQuAD JSON itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trainables.data import DataError, hub_rows, read_json_file
from trainables.scoring.metrics import mlqa_em_f1, squad_em_f1
from trainables.tasks.base import Encoding, pad_inputs

N_BEST = 20
MAX_ANSWER_LENGTH = 30


@dataclass(frozen=True)
class QAExample:
    """A question on a context, with its answers (text and character start)."""
    id: str
    title: str
    context: str
    question: str
    answers: tuple[tuple[str, int], ...]
    """(text, character start) of every gold answer."""


def read_squad_json(path: str | Path) -> list[QAExample]:
    """The questions of a SQuAD-format file; errors name the file and the question."""
    path = Path(path)
    doc = read_json_file(path)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a SQuAD JSON object with a 'data' list")
    out = []
    for a, article in enumerate(data):
        for p, para in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = para.get("context")
            if not isinstance(context, str):
                raise DataError(f"{where}: missing 'context'")
            for q, qa in enumerate(para.get("qas", [])):
                if not {"id", "question", "answers"} <= set(qa):
                    raise DataError(f"{where}.qas[{q}]: needs 'id', 'question' and 'answers'")
                answers = []
                for ans in qa["answers"]:
                    start, text = ans.get("answer_start"), ans.get("text")
                    if not isinstance(start, int) or not isinstance(text, str) or \
                            context[start:start + len(text)] != text:
                        raise DataError(f"{where}.qas[{q}] (id {qa['id']}): answer {text!r} is not "
                                        f"at character {start} of the context")
                    answers.append((text, start))
                out.append(QAExample(str(qa["id"]), article.get("title", ""), context,
                                     qa["question"], tuple(answers)))
    if not out:
        raise DataError(f"{path}: no questions")
    return out


def qa_from_hub(source: tuple, data_dir: str = "hub") -> list[QAExample]:
    """The questions of a SQuAD-style hub dataset."""
    out = []
    for _, row, _ in hub_rows(*source, data_dir):
        ans = row["answers"]
        out.append(QAExample(str(row["id"]), row.get("title", ""), row["context"], row["question"],
                             tuple(zip(ans["text"], ans["answer_start"]))))
    return out


def squad_document(examples: list[QAExample]) -> dict:
    """Examples back to a SQuAD v1.1 document (paragraphs grouped by title and context)."""
    articles: dict[str, dict[str, list]] = {}
    for e in examples:
        articles.setdefault(e.title, {}).setdefault(e.context, []).append(
            {"id": e.id, "question": e.question,
             "answers": [{"text": t, "answer_start": s} for t, s in e.answers]})
    return {"version": "1.1", "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paras.items()]}
        for title, paras in articles.items()]}


class SpanHead(nn.Module):
    """Start and end logits per token, always in fp32: under bf16 autocast the encoder runs in
    bf16 but the span logits are computed and ranked in full precision (bf16 keeps 8 bits of
    mantissa, so near-equal start + end sums would tie or swap), as the benchmark's fp32 run ranks them."""
    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 2)

    def forward(self, hidden, attention_mask):
        with torch.autocast(hidden.device.type, enabled=False):
            logits = self.linear(hidden.float())
        if attention_mask is not None:  # padding can never be a span end
            logits = logits.masked_fill(attention_mask.unsqueeze(-1) == 0, -1e4)
        return logits


class ExtractiveQA:
    """The extractive QA family (XQuAD, MLQA, TyDi QA-GoldP, SQuAD)."""
    name = "qa"

    def load(self, task, split: str, lang: str, data_dir: str) -> list[QAExample]:
        hub = task.from_hub(data_dir, split, lang)
        if hub:
            examples = qa_from_hub(task.hub_source(split, lang), data_dir)
        else:
            examples = read_squad_json(task.mirror_path(data_dir, split, lang))
        if task.key == "tydiqa" and (split == "train" or hub):
            # one file / hub split holds every language; ids start with the language name
            from trainables.tasks import TYDIQA_NAMES

            prefix = TYDIQA_NAMES["en" if split != "test" else lang] + "-"
            examples = [e for e in examples if e.id.startswith(prefix)]
            if not examples:
                raise DataError(f"tydiqa {split}: no question id starts with '{prefix}'")
        return examples

    def augment(self, example, fn):
        """RS-DA: the question (the context stays: answer offsets remain valid) rewritten by ``fn`` (text -> text)."""
        return replace(example, question=fn(example.question))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        if not examples:
            return []
        room = cfg.max_length - cfg.max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
        if room < 2:
            raise ValueError(f"max_length {cfg.max_length} leaves no room for the context after a question of "
                             f"up to max_query_length {cfg.max_query_length} tokens")
        stride = min(cfg.doc_stride, room - 1)  # the tokenizer needs stride < the context budget
        qenc = tokenizer([e.question.lstrip() for e in examples], add_special_tokens=False,
                         truncation=True, max_length=cfg.max_query_length, return_offsets_mapping=True)
        questions = [e.question.lstrip()[:offs[-1][1]] if offs else e.question
                     for e, offs in zip(examples, qenc["offset_mapping"])]
        enc = tokenizer(questions, [e.context for e in examples], truncation="only_second",
                        max_length=cfg.max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        feats = []
        for j in range(len(enc["input_ids"])):
            i = enc["overflow_to_sample_mapping"][j]
            seq = enc.sequence_ids(j)
            offsets = [list(o) if s == 1 else [-1, -1] for o, s in zip(enc["offset_mapping"][j], seq)]
            f = {k: list(enc[k][j]) for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}
            f.update(example=i, offsets=offsets)
            if train:
                f["start_positions"], f["end_positions"] = self._target(examples[i], offsets)
            feats.append(f)
        return feats

    @staticmethod
    def _target(example: QAExample, offsets) -> tuple[int, int]:
        if not example.answers:
            return 0, 0
        text, start = example.answers[0]
        end = start + len(text)
        ctx = [k for k, o in enumerate(offsets) if o[0] >= 0]
        if not ctx or offsets[ctx[0]][0] > start or offsets[ctx[-1]][1] < end:
            return 0, 0
        s = next(k for k in ctx if offsets[k][1] > start)
        e = next(k for k in reversed(ctx) if offsets[k][0] < end)
        return s, e

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        batch = pad_inputs(features, pad_id)
        if "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
        return batch

    def head(self, hidden_size: int, task) -> nn.Module:
        return SpanHead(hidden_size)

    def loss(self, outputs, batch) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        return (ce(outputs[..., 0], batch["start_positions"]) + ce(outputs[..., 1], batch["end_positions"])) / 2

    def raw(self, outputs, batch) -> list:
        lengths = batch["attention_mask"].sum(-1).tolist()
        rows = outputs.float().cpu()
        return [(rows[b, :n, 0].tolist(), rows[b, :n, 1].tolist()) for b, n in enumerate(lengths)]

    def decode(self, task, examples, features, raw) -> dict[str, str]:
        best: dict[int, tuple[float, str]] = {}
        for f, (start_logits, end_logits) in zip(features, raw):
            offsets, e = f["offsets"], examples[f["example"]]
            starts = sorted(range(len(start_logits)), key=lambda k: -start_logits[k])[:N_BEST]
            ends = sorted(range(len(end_logits)), key=lambda k: -end_logits[k])[:N_BEST]
            for s in starts:
                for t in ends:
                    if offsets[s][0] < 0 or offsets[t][0] < 0 or t < s or t - s + 1 > MAX_ANSWER_LENGTH:
                        continue
                    score = start_logits[s] + end_logits[t]
                    if f["example"] not in best or score > best[f["example"]][0]:
                        best[f["example"]] = (score, e.context[offsets[s][0]:offsets[t][1]])
        return {e.id: best[i][1] if i in best else "" for i, e in enumerate(examples)}

    def score(self, task, lang, examples, predictions) -> dict[str, float]:
        doc = squad_document(examples)["data"]
        if task.qa_normalization == "mlqa":
            return mlqa_em_f1(doc, predictions, lang)
        return squad_em_f1(doc, predictions)

    def write(self, task, lang, examples, predictions, pred_dir: Path, label_dir: Path) -> None:
        from trainables.scoring.files import write_json

        write_json(pred_dir / task.key / f"test-{lang}.json", predictions)
        write_json(label_dir / task.key / f"test-{lang}.json", squad_document(examples))


FAMILY = ExtractiveQA()
