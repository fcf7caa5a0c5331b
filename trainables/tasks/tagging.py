"""Token tagging (UD-POS, WikiANN/PAN-X): a tag per word from its first sub-token.

Inputs: the words of a sentence, sub-word tokenised (``is_split_into_words``); the label of a
word sits on its first sub-token, every other position is ignored (-100). A sentence longer
than ``max_length`` sub-tokens is cut at word boundaries into consecutive windows, so every
word gets a prediction (nothing is truncated away before scoring). A word the tokenizer maps
to no token at all is read as the tokenizer's unknown token, so the model tags it (XTREME-R's
``utils_tag.py``); only a tokenizer without an unknown token leaves such a word the task's
first label (``O`` / ``NOUN``). XLM-R-format tokenizers (``roberta_format``) end every window
with a second ``</s>``, as ``run_tag.py --model_type xlmr`` does (``sep_token_extra``):
``<s> words </s></s>``; BERT format: ``[CLS] words [SEP]``.

Head: dropout + linear per token; loss: cross-entropy over first sub-tokens; metric: seqeval
chunk F1 (also for POS, as the official evaluator does).

Mirror formats:
- CoNLL-U (UD), read as XTREME-R prepares it (``trainables.tasks.ud``): multiword tokens fused
  into their surface form with the span head's UPOS, empty nodes and comments dropped, text-less
  sentences dropped, U+200C and spaces inside forms removed; the UPOS column must be one of the
  17 UPOS tags; a blank line ends a sentence.
- PAN-X (``lang:token<TAB>TAG``), as the WikiANN split XTREME uses ships it; the ``lang:``
  prefix is dropped; a blank line ends a sentence.
Official prediction layout: one tag per line, a blank line after each sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trainables.data import DataError, hub_rows
from trainables.scoring.metrics import seqeval_f1
from trainables.tasks.base import Encoding, pad_inputs, pad_sequences, roberta_format
from trainables.tasks.heads import head_dropout, new_linear
from trainables.tasks.ud import read_ud_sentences

IGNORE = -100


@dataclass(frozen=True)
class TagExample:
    """A sentence's words and their tag ids."""
    tokens: tuple[str, ...]
    tags: tuple[int, ...]


def _check_tag(tag: str, index: dict, where: str) -> int:
    if tag not in index:
        raise DataError(f"{where}: tag '{tag}' is not one of {', '.join(index)}")
    return index[tag]


def _read_sentences(path: str | Path, labels: tuple[str, ...], word) -> list[TagExample]:
    """Blank-line separated sentences; ``word(line, where)`` gives (token, tag) or None to skip."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    index = {t: i for i, t in enumerate(labels)}
    out, tokens, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                if tokens:
                    out.append(TagExample(tuple(tokens), tuple(tags)))
                tokens, tags = [], []
                continue
            parsed = word(line, f"{path}:{n}")
            if parsed is not None:
                tokens.append(parsed[0])
                tags.append(_check_tag(parsed[1], index, f"{path}:{n}"))
    if tokens:
        out.append(TagExample(tuple(tokens), tuple(tags)))
    if not out:
        raise DataError(f"{path}: no sentences")
    return out


def _panx_word(line: str, where: str):
    cols = line.split("\t")
    if len(cols) != 2:
        raise DataError(f"{where}: expected 'lang:token<TAB>TAG', found {len(cols)} columns")
    return (cols[0].split(":", 1)[1] if ":" in cols[0] else cols[0]), cols[1]


def read_conllu(path: str | Path, labels: tuple[str, ...], lang: str = "default") -> list[TagExample]:
    """The sentences of a CoNLL-U file with their UPOS tags, as the benchmark prepares them
    (``trainables.tasks.ud``; ``lang`` picks the converter's POS precedence list); errors name the
    file and line."""
    index = {t: i for i, t in enumerate(labels)}
    out = [TagExample(tuple(f for f, _, _ in s), tuple(_check_tag(t, index, where) for _, t, where in s))
           for s in read_ud_sentences(path, lang)]
    if not out:
        raise DataError(f"{path}: no sentences")
    return out


def read_panx(path: str | Path, labels: tuple[str, ...]) -> list[TagExample]:
    """The sentences of a PAN-X file with their IOB2 tags; errors name the file and line."""
    return _read_sentences(path, labels, _panx_word)


def tags_from_hub(source: tuple, token_col: str, tag_col: str, labels, data_dir: str = "hub") -> list[TagExample]:
    """Tagged sentences of a hub dataset (``token_col``, ``tag_col``)."""
    index = {t: i for i, t in enumerate(labels)}
    out = []
    for where, row, names in hub_rows(*source, data_dir):
        if not index and tag_col in names:  # labels=(): the data's own tag names
            index = {t: i for i, t in enumerate(names[tag_col])}
        raw = row[tag_col]
        tags = [names[tag_col][t] if tag_col in names else str(t) for t in raw]
        out.append(TagExample(tuple(row[token_col]), tuple(_check_tag(t, index, where) for t in tags)))
    return out


class TokenHead(nn.Module):
    """``BertForTokenClassification``'s head: dropout and a linear layer per token (each word
    is tagged on its first sub-token)."""
    def __init__(self, config, num_labels: int):
        super().__init__()
        self.dropout = nn.Dropout(head_dropout(config))
        self.linear = new_linear(config, config.hidden_size, num_labels)

    def forward(self, hidden, attention_mask):
        return self.linear(self.dropout(hidden))


def _windows(counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Split words (with ``counts`` sub-tokens each) into [start, end) windows within budget."""
    spans, start, used = [], 0, 0
    for i, c in enumerate(counts):
        if i > start and used + c > budget:
            spans.append((start, i))
            start, used = i, 0
        used += c
    spans.append((start, len(counts)))
    return spans


class TokenTagging:
    """The tagging family (UD-POS, PAN-X)."""
    name = "tagging"

    def load(self, task, split: str, lang: str, data_dir: str) -> list[TagExample]:
        if task.from_hub(data_dir, split, lang):
            return tags_from_hub(task.hub_source(split, lang), *task.hub_fields[:2], task.labels, data_dir)
        paths = task.mirror_paths(data_dir, split, lang)
        if task.mirror_format == "conllu":
            return [e for path in paths for e in read_conllu(path, task.labels, lang)]
        return [e for path in paths for e in read_panx(path, task.labels)]

    def augment(self, example, fn):
        """RS-DA: every word, one for one (tags stay aligned) rewritten by ``fn`` (text -> text)."""
        return replace(example, tokens=tuple(fn(t) for t in example.tokens))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        # XLM-R format: run_tag.py's sep_token_extra, a second </s> (label ignored) after the words
        extra = [tokenizer.sep_token_id] if roberta_format(tokenizer) else []
        budget = cfg.max_length - tokenizer.num_special_tokens_to_add(pair=False) - len(extra)
        # sub-token count of every word, from one batched call over all words
        words = [w for e in examples for w in e.tokens]
        counts = [len(ids) for ids in tokenizer(words, add_special_tokens=False)["input_ids"]] if words else []
        unk = tokenizer.unk_token
        feats, k = [], 0
        for i, e in enumerate(examples):
            c = counts[k:k + len(e.tokens)]
            k += len(e.tokens)
            # a word the tokenizer maps to nothing (a lone combining mark, a zero-width character)
            # is read as the unknown token and tagged by the model, as utils_tag.py does
            words = [w if n or unk is None else unk for w, n in zip(e.tokens, c)]
            c = [n or 1 for n in c]
            for start, end in _windows(c, budget):
                enc = tokenizer(words[start:end], is_split_into_words=True,
                                truncation=True, max_length=cfg.max_length - len(extra))
                first, labels, seen = [-1] * (end - start), [], set()
                for pos, w in enumerate(enc.word_ids()):
                    if w is None or w in seen:
                        labels.append(IGNORE)
                        continue
                    seen.add(w)
                    first[w] = pos
                    labels.append(e.tags[start + w])
                inputs = {k2: list(v) for k2, v in enc.items() if k2 != "offset_mapping"}
                if extra:
                    inputs["input_ids"] += extra
                    for k2 in ("attention_mask", "token_type_ids"):
                        if k2 in inputs:
                            inputs[k2].append(inputs[k2][-1])
                    labels.append(IGNORE)
                feats.append({**inputs, "labels": labels, "example": i, "word_start": start, "first": first})
        return feats

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        return {**pad_inputs(features, pad_id), "labels": pad_sequences([f["labels"] for f in features], IGNORE)}

    def head(self, encoder, task) -> nn.Module:
        return TokenHead(encoder.config, len(task.labels))

    def loss(self, outputs, batch) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs.flatten(0, 1), batch["labels"].flatten(),
                                           ignore_index=IGNORE)

    def raw(self, outputs, batch) -> list:
        lengths = batch["attention_mask"].sum(-1).tolist()
        return [row[:n] for row, n in zip(outputs.argmax(-1).tolist(), lengths)]

    def decode(self, task, examples, features, raw) -> list[list[str]]:
        preds = [[task.labels[0]] * len(e.tokens) for e in examples]
        for f, r in zip(features, raw):
            for w, pos in enumerate(f["first"]):
                if pos >= 0:
                    preds[f["example"]][f["word_start"] + w] = task.labels[r[pos]]
        return preds

    def gold(self, task, examples) -> list[list[str]]:
        return [[task.labels[t] for t in e.tags] for e in examples]

    def score(self, task, lang, examples, predictions) -> dict[str, float]:
        return seqeval_f1(self.gold(task, examples), predictions)

    def write(self, task, lang, examples, predictions, pred_dir: Path, label_dir: Path) -> None:
        from trainables.scoring.files import write_tag_file

        write_tag_file(pred_dir / task.key / f"test-{lang}.tsv", predictions)
        write_tag_file(label_dir / task.key / f"test-{lang}.tsv", self.gold(task, examples))


FAMILY = TokenTagging()
