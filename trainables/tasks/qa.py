"""Extractive QA (XQuAD, MLQA, TyDiQA-GoldP; SQuAD v1.1 as English training data).

Inputs, as XTREME-R's ``third_party/processors/squad.py`` builds them (``qa_text``): the
context is split into whitespace words, each word tokenized on its own; the question is
tokenized whole and cut to ``max_query_length`` sub-tokens; window k holds the context
sub-tokens from ``k x doc_stride`` (``doc_stride`` is the step between windows), as many as fit
in ``max_length`` after the question and the special tokens, and windows are added until one
reaches the end. Each window records, per position, its word (``word``, -1 outside the
context), whether the position has its most context in this window (``max_context``), its
sub-token string and character span. Training: the first answer is located in words, then in
sub-tokens (the tightest span equal to the answer tokenized alone); a question whose answer
text is not in its words is left out, and a window without the whole answer points at the
first token. Head: a linear layer giving start and end logits, in fp32.

Decoding, as ``compute_predictions_logits`` (SQuAD v1) does: over every window of a question,
the ``N_BEST`` highest start and end logits; a pair is valid when both ends are context
positions, the start has its most context in that window, end >= start and the span is at most
``MAX_ANSWER_LENGTH`` sub-tokens; the best start + end sum wins; its text is the sub-tokens
detokenized and aligned with the span's whole words (``qa_text.final_text``; the whole words
where an unknown token or a normalised character prevents alignment). No valid pair: the
answer ``"empty"``. ``tests/test_protocol_golden.py`` compares windows and answers with the
benchmark's own on the XQuAD fixture, for a WordPiece and a SentencePiece tokenizer.

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
from trainables.tasks.heads import new_linear
from trainables.tasks.qa_text import (
    Pieces,
    Words,
    answer_subtokens,
    build_pair,
    detokenize,
    detokenize_style,
    final_text,
    is_max_context,
    lower_cases,
    pair_template,
    split_words,
    word_pieces,
)

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
    def __init__(self, config):
        super().__init__()
        self.linear = new_linear(config, config.hidden_size, 2)  # BertForQuestionAnswering: no dropout

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
        specials = tokenizer.num_special_tokens_to_add(pair=True)
        room = cfg.max_length - cfg.max_query_length - specials
        if cfg.doc_stride > room or room < 1:
            raise ValueError(f"QA windows: doc_stride {cfg.doc_stride} exceeds the {room} context tokens a window "
                             f"holds at max_length {cfg.max_length} after a question of max_query_length "
                             f"{cfg.max_query_length} (windows would skip context)")
        style, lower = detokenize_style(tokenizer), lower_cases(tokenizer)
        template, with_types = pair_template(tokenizer), "token_type_ids" in tokenizer.model_input_names
        contexts: dict[str, tuple[Words, Pieces]] = {}
        queries = tokenizer([e.question for e in examples], add_special_tokens=False)["input_ids"]
        feats = []
        for i, e in enumerate(examples):
            if e.context not in contexts:
                words = split_words(e.context)
                contexts[e.context] = (words, word_pieces(tokenizer, e.context, words))
            words, pieces = contexts[e.context]
            answer = None
            if train:
                if not e.answers:
                    continue
                answer = answer_subtokens(tokenizer, words, pieces, *e.answers[0])
                if answer is None:  # squad.py: "Could not find answer", the example is left out
                    continue
            feats.extend(self._windows(template, specials, with_types, i, queries[i][:cfg.max_query_length], pieces,
                                       cfg, answer, style, lower))
        return feats

    @staticmethod
    def _windows(template, specials: int, with_types: bool, example: int, query: list[int], pieces: Pieces,
                 cfg: Encoding, answer: tuple[int, int] | None, style: str, lower: bool) -> list[dict]:
        """squad.py's windows: window k holds the sub-tokens from k x doc_stride, as many as fit;
        a new one starts while the last one did not reach the end. ``template`` is the
        tokenizer's ``pair_template``, ``specials`` how many special tokens a pair adds."""
        n = len(pieces.ids)
        room = cfg.max_length - len(query) - specials
        starts = [0]
        while starts[-1] + room < n:
            starts.append(starts[-1] + cfg.doc_stride)
        lengths = [min(room, n - s) for s in starts]
        out = []
        for k, (s, length) in enumerate(zip(starts, lengths)):
            doc = list(pieces.ids[s:s + length])
            ids, types, doc_offset = build_pair(template, query, doc)
            f = {"input_ids": ids, "attention_mask": [1] * len(ids), "example": example}
            if with_types:
                f["token_type_ids"] = types
            pad = [-1] * doc_offset, [-1] * (len(ids) - doc_offset - length)
            f["word"] = pad[0] + list(pieces.word[s:s + length]) + pad[1]
            f["offsets"] = [[-1, -1]] * doc_offset + [list(x) for x in pieces.spans[s:s + length]] + \
                [[-1, -1]] * len(pad[1])
            f["max_context"] = [0] * doc_offset + [int(is_max_context(starts, lengths, k, s + j))
                                                   for j in range(length)] + [0] * len(pad[1])
            f["pieces"] = [""] * doc_offset + list(pieces.tokens[s:s + length]) + [""] * len(pad[1])
            f["detokenize"], f["lower_case"] = style, lower
            if answer is not None:  # a window without the whole answer points at the first token
                inside = s <= answer[0] and answer[1] <= s + length - 1
                f["start_positions"] = answer[0] - s + doc_offset if inside else 0
                f["end_positions"] = answer[1] - s + doc_offset if inside else 0
            out.append(f)
        return out

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        batch = pad_inputs(features, pad_id)
        if "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
        return batch

    def head(self, encoder, task) -> nn.Module:
        return SpanHead(encoder.config)

    def loss(self, outputs, batch) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        return (ce(outputs[..., 0], batch["start_positions"]) + ce(outputs[..., 1], batch["end_positions"])) / 2

    def raw(self, outputs, batch) -> list:
        lengths = batch["attention_mask"].sum(-1).tolist()
        rows = outputs.float().cpu()
        return [(rows[b, :n, 0].tolist(), rows[b, :n, 1].tolist()) for b, n in enumerate(lengths)]

    def decode(self, task, examples, features, raw) -> dict[str, str]:
        """compute_predictions_logits (SQuAD v1): per question, over all its windows, the
        ``N_BEST`` highest start and end logits; a pair is kept when both ends are context
        sub-tokens of the window, the start is there in its best context (``max_context``),
        end >= start and it spans at most ``MAX_ANSWER_LENGTH`` sub-tokens; the best start +
        end sum wins (the first on ties) and becomes text as ``qa_text.final_text`` says. No
        valid pair: ``"empty"``, as the benchmark writes it."""
        best: dict[int, tuple[float, dict, int, int]] = {}
        for f, (start_logits, end_logits) in zip(features, raw):
            n, word, ctx = len(f["input_ids"]), f["word"], f["max_context"]
            starts = sorted(range(len(start_logits)), key=lambda k: -start_logits[k])[:N_BEST]
            ends = sorted(range(len(end_logits)), key=lambda k: -end_logits[k])[:N_BEST]
            for s in starts:
                for t in ends:
                    if s >= n or t >= n or word[s] < 0 or word[t] < 0 or not ctx[s] or t < s \
                            or t - s + 1 > MAX_ANSWER_LENGTH:
                        continue
                    score = start_logits[s] + end_logits[t]
                    if f["example"] not in best or score > best[f["example"]][0]:
                        best[f["example"]] = (score, f, s, t)
        return {e.id: self._text(e, *best[i][1:]) if i in best else "empty" for i, e in enumerate(examples)}

    @staticmethod
    def _text(example: QAExample, f: dict, s: int, t: int) -> str:
        words = split_words(example.context).words
        pred = " ".join(detokenize(list(f["pieces"][s:t + 1]), f["detokenize"]).split())
        return final_text(pred, " ".join(words[f["word"][s]:f["word"][t] + 1]), bool(f["lower_case"]))

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
