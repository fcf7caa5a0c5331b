"""Retrieval (Tatoeba, LAReQA, Mewsli-X): mean-pooled embeddings and cosine nearest neighbours.

Evaluation: queries and candidates are encoded separately, each embedding is the mean of the
chosen layer's hidden states over the sequence's real tokens (Tatoeba: ``target.retrieval_layer``,
by default run_tatoeba.sh's layer; LAReQA and Mewsli-X: the last layer, which their dual encoder
trains; ``trainables.evaluation.retrieval_layer``), candidates are ranked by cosine similarity,
and the top 20 are kept.

- Tatoeba: as XTREME-R's ``evaluate_retrieval.py`` implements it, each English sentence is a
  query against that pair's sentences in X; accuracy of the top-1 index (gold: the same line). Trained as XTREME-R does:
  the encoder is fine-tuned on SQuAD (``train_from: xquad``), this family only evaluates it.
- LAReQA (XQuAD-R): questions in X against the answer sentences of all languages pooled;
  relevant: the sentences, in every language, that answer that question; mAP@20.
- Mewsli-X: mentions in context in X against the candidate entity descriptions; relevant: the
  gold entity; MRR@20, reported as ``map@20`` like the official scorer (one relevant item).

Training (LAReQA, Mewsli-X): a dual encoder with in-batch negatives: each batch holds B
(query, positive) pairs, encoded in one forward pass as 2B sequences, and the loss is
cross-entropy over the B x B cosine similarities scaled by ``SCALE``. B is the global batch:
with several workers each rank's queries meet the candidates of all ranks
(``gather_across_ranks``), so the loss does not depend on ``resources.workers``. English training pairs:
SQuAD questions with the sentence holding their answer (LAReQA); Wikipedia mention contexts
with their entity's description (Mewsli-X). The English dev score is the same retrieval
metric over the dev pairs' pool.

Mirror formats:
- Tatoeba: ``tatoeba.{xxx}-eng.{xxx}`` and ``tatoeba.{xxx}-eng.eng``, line-aligned, where
  ``xxx`` is the ISO 639-3 code of the LASER release (``task.iso3``);
- XQuAD-R: SQuAD-format JSON per language whose paragraphs also carry ``sentences`` and
  ``sentence_breaks`` (``[[start, end], ...]``); the question ids are shared across languages;
- Mewsli-X, as ``get-mewsli-x.sh`` writes it: ``candidate_set_entities.jsonl`` (``entity_id``,
  ``description``), ``wikinews_mentions-{dev,test}.jsonl`` (an article per line: ``context``
  with ``text``/``language``/``sentence_spans`` and its ``mentions`` with ``example_id``,
  ``mention_span`` and ``entity_id``) and ``wikipedia_pairs-{train,dev}.jsonl``
  (``contextual_mention`` + ``entity``). Query text as the baseline builds it: the mention,
  a colon, and the sentence holding it with the mention marked ``{ ... }``.
Official prediction layout: Tatoeba one predicted index per line (tsv); LAReQA and Mewsli-X
``{query id: [candidate ids, best first]}`` JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainables.collectives import gather_across_ranks
from trainables.data import DataError, read_json_file
from trainables.scoring.metrics import accuracy, map_at_k, mrr_at_k
from trainables.tasks.base import Encoding, pad_inputs, tokenizer_inputs

TOP_K = 20
SCALE = 20.0


@dataclass
class RetrievalSet:
    """A retrieval test set: queries, candidates and each query's relevant candidates."""
    queries: list[tuple[str, str]]
    """(query id, text)"""
    candidates: list[tuple[str, str]]
    """(candidate id, text)"""
    gold: dict[str, set[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.queries)


@dataclass(frozen=True)
class PairForRetrieval:
    """A training pair: a query and its positive candidate (the other pairs of the batch are negatives)."""
    query: str
    positive: str


# ------------------------------------------------------------------------------------ readers


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def read_tatoeba(src: str | Path) -> RetrievalSet:
    """``tatoeba.xxx-eng.xxx`` with its line-aligned ``tatoeba.xxx-eng.eng``. As XTREME-R's
    ``evaluate_retrieval.py`` does it, the English sentences are the queries and the other
    language's sentences the candidates; the gold candidate of line i is line i."""
    src = Path(src)
    eng = src.with_suffix(".eng")
    xs, es = _lines(src), _lines(eng)
    if len(xs) != len(es):
        raise DataError(f"{eng}: {len(es)} lines, but {src.name} has {len(xs)}; the two sides "
                        f"of a Tatoeba pair must be line-aligned")
    for n, (x, e) in enumerate(zip(xs, es), start=1):
        if not x.strip() or not e.strip():
            raise DataError(f"{src if not x.strip() else eng}:{n}: empty sentence")
    return RetrievalSet([(str(i), e) for i, e in enumerate(es)], [(str(i), x) for i, x in enumerate(xs)],
                        {str(i): {str(i)} for i in range(len(xs))})


@lru_cache(maxsize=64)
def _xquad_r(path: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(questions (qid, text, answer sentence id), sentences (sid, text)) of one XQuAD-R file."""
    doc = read_json_file(path)
    lang = path.stem
    questions, sentences = [], []
    for a, article in enumerate(doc.get("data", [])):
        for p, para in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            breaks, sents = para.get("sentence_breaks"), para.get("sentences")
            if not isinstance(breaks, list) or not isinstance(sents, list) or len(breaks) != len(sents):
                raise DataError(f"{where}: needs 'sentences' and 'sentence_breaks' of equal length")
            base = len(sentences)
            sentences += [(f"{lang}:{a}:{p}:{k}", s) for k, s in enumerate(sents)]
            for q, qa in enumerate(para.get("qas", [])):
                if not qa.get("answers"):
                    raise DataError(f"{where}.qas[{q}]: no answer")
                start = qa["answers"][0]["answer_start"]
                k = next((k for k, (s, e) in enumerate(breaks) if s <= start < e), None)
                if k is None:
                    raise DataError(f"{where}.qas[{q}] (id {qa.get('id')}): answer start {start} "
                                    f"is in no sentence break")
                questions.append((str(qa["id"]), qa["question"], sentences[base + k][0]))
    if not questions:
        raise DataError(f"{path}: no questions")
    return questions, sentences


def read_lareqa(folder: str | Path, lang: str, languages: tuple[str, ...]) -> RetrievalSet:
    """Queries in ``lang``; candidates: the sentences of every language in ``languages``."""
    folder = Path(folder)
    answers_of: dict[str, set[str]] = {}
    candidates = []
    for other in languages:
        questions, sentences = _xquad_r(folder / f"{other}.json")
        candidates += sentences
        for qid, _, sid in questions:
            answers_of.setdefault(qid, set()).add(sid)
    questions, _ = _xquad_r(folder / f"{lang}.json")
    return RetrievalSet([(qid, text) for qid, text, _ in questions], candidates,
                        {qid: answers_of[qid] for qid, _, _ in questions})


def _jsonl_rows(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None


def mention_query(context: dict, mention: dict, where: str) -> str:
    """The Mewsli-X baseline's query text: ``mention: sentence`` with the mention in the
    sentence that holds it marked as `` { mention } `` (braces already there become parens)."""
    try:
        text, span = context["text"], mention["mention_span"]
        start, end = int(span["start"]), int(span["end"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{where}: a mention needs context.text and mention_span {{start, end}}") from None
    if not 0 <= start < end <= len(text):
        raise DataError(f"{where}: mention span [{start}, {end}) is outside the context text")
    lo, hi = 0, len(text)
    for s in context.get("sentence_spans") or []:
        if s["start"] <= start < s["end"]:
            lo, hi = s["start"], max(s["end"], end)
            break

    def esc(t: str) -> str:
        return t.replace("{", "(").replace("}", ")")

    name = text[start:end]
    return f"{esc(name)}: {esc(text[lo:start])} {{ {esc(name)} }} {esc(text[end:hi])}".strip()


def read_entities(path: str | Path) -> list[tuple[str, str]]:
    """``candidate_set_entities.jsonl``: (entity id, description) of every candidate."""
    path = Path(path)
    out = []
    for n, row in _jsonl_rows(path):
        if "entity_id" not in row or "description" not in row:
            raise DataError(f"{path}:{n}: an entity needs 'entity_id' and 'description'")
        out.append((str(row["entity_id"]), row["description"]))
    return out


def read_mewslix_mentions(path: str | Path, entities: list[tuple[str, str]], lang: str) -> RetrievalSet:
    """``wikinews_mentions-{split}.jsonl`` (one article per line: ``{"context", "mentions"}``),
    the mentions of articles in ``lang`` against every candidate entity."""
    path = Path(path)
    known = {e for e, _ in entities}
    queries, gold = [], {}
    for n, row in _jsonl_rows(path):
        context = row.get("context") or {}
        if context.get("language") != lang:
            continue
        for m in row.get("mentions", []):
            where = f"{path}:{n}"
            if "example_id" not in m or "entity_id" not in m:
                raise DataError(f"{where}: a mention needs 'example_id' and 'entity_id'")
            if str(m["entity_id"]) not in known:
                raise DataError(f"{where}: entity '{m['entity_id']}' is not among the candidates")
            queries.append((str(m["example_id"]), mention_query(context, m, where)))
            gold[str(m["example_id"])] = {str(m["entity_id"])}
    if not queries:
        raise DataError(f"{path}: no mentions in language '{lang}'")
    return RetrievalSet(queries, entities, gold)


def read_wikipedia_pairs(path: str | Path) -> list[PairForRetrieval]:
    """``wikipedia_pairs-{split}.jsonl``: ``{"contextual_mention": {"context", "mention"},
    "entity": {"entity_id", "description"}}`` per line (English fine-tuning pairs)."""
    path = Path(path)
    out = []
    for n, row in _jsonl_rows(path):
        try:
            cm, entity = row["contextual_mention"], row["entity"]
            out.append(PairForRetrieval(mention_query(cm["context"], cm["mention"], f"{path}:{n}"),
                                        entity["description"]))
        except (KeyError, TypeError):
            raise DataError(f"{path}:{n}: expected contextual_mention.{{context, mention}} and "
                            f"entity.description") from None
    if not out:
        raise DataError(f"{path}: no pairs")
    return out


_SENT_END = re.compile(r"(?<=[.!?])\s+")


def squad_retrieval_pairs(examples) -> list[PairForRetrieval]:
    """SQuAD questions with the sentence of the context that holds their first answer."""
    out = []
    for e in examples:
        if not e.answers:
            continue
        start = e.answers[0][1]
        pos = 0
        for sent in _SENT_END.split(e.context):
            begin = e.context.find(sent, pos)
            if begin <= start < begin + len(sent):
                out.append(PairForRetrieval(e.question, sent))
                break
            pos = begin + len(sent)
    return out


def pairs_as_set(pairs: list[PairForRetrieval]) -> RetrievalSet:
    """English dev pairs as a retrieval problem: each query against every distinct positive."""
    ids: dict[str, str] = {}
    for p in pairs:
        ids.setdefault(p.positive, str(len(ids)))
    return RetrievalSet([(str(i), p.query) for i, p in enumerate(pairs)],
                        [(cid, text) for text, cid in ids.items()],
                        {str(i): {ids[p.positive]} for i, p in enumerate(pairs)})


# ------------------------------------------------------------------------------------- family


def top_k_cosine(queries: torch.Tensor, candidates: torch.Tensor, k: int, chunk: int = 1024) -> list[list[int]]:
    """Indices of the k most similar candidates per query (rows are unit vectors), in query
    chunks so the similarity matrix never has to fit at once; on the GPU when there is one."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cand = candidates.to(device)
    out = []
    for i in range(0, len(queries), chunk):
        sims = queries[i:i + chunk].to(device) @ cand.T
        out += sims.topk(k, dim=-1).indices.cpu().tolist()
    return out


class MeanPool(nn.Module):
    """Mean of the hidden states over the non-padding tokens."""
    def forward(self, hidden, attention_mask):
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Retrieval:
    """The retrieval family (Tatoeba, LAReQA, Mewsli-X)."""
    name = "retrieval"

    def load(self, task, split: str, lang: str, data_dir: str):
        if data_dir == "hub":
            raise DataError(f"{task.key}: no hub source in a data-files format; use a local mirror "
                            f"({task.mirror_doc})")
        kind = task.mirror_format
        if kind == "tatoeba":
            return read_tatoeba(task.mirror_path(data_dir, split, lang))
        if kind == "xquad_r":
            if split == "train" or split == "dev":
                from trainables.tasks.qa import read_squad_json

                pairs = squad_retrieval_pairs(read_squad_json(task.mirror_path(data_dir, split, lang)))
                return pairs if split == "train" else pairs_as_set(pairs)
            return read_lareqa(task.mirror_path(data_dir, split, lang).parent, lang, task.languages)
        if kind == "mewslix":
            path = task.mirror_path(data_dir, split, lang)
            if split == "test":
                return read_mewslix_mentions(path, read_entities(path.parent / "candidate_set_entities.jsonl"),
                                             lang)
            pairs = read_wikipedia_pairs(path)
            return pairs if split == "train" else pairs_as_set(pairs)
        raise ValueError(f"{task.key}: unknown retrieval format '{kind}'")

    def augment(self, example, fn):
        """RS-DA: both sides of a training pair rewritten by ``fn`` (text -> text)."""
        return PairForRetrieval(fn(example.query), fn(example.positive))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        if isinstance(examples, list):  # training pairs
            q = tokenizer([p.query for p in examples], truncation=True, max_length=cfg.max_length)
            c = tokenizer([p.positive for p in examples], truncation=True, max_length=cfg.max_length)
            return [{"query": tokenizer_inputs(q, i), "positive": tokenizer_inputs(c, i), "example": i,
                     "input_ids": q["input_ids"][i] + c["input_ids"][i]}  # length for sorting
                    for i in range(len(examples))]
        feats = []
        for side, rows in ((0, examples.queries), (1, examples.candidates)):
            enc = tokenizer([t for _, t in rows], truncation=True, max_length=cfg.max_length)
            feats += [{**tokenizer_inputs(enc, i), "side": side, "example": i} for i in range(len(rows))]
        return feats

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        if "query" in features[0]:
            rows = [f["query"] for f in features] + [f["positive"] for f in features]
            return {**pad_inputs(rows, pad_id), "pairs": torch.tensor(len(features))}
        return pad_inputs(features, pad_id)

    def head(self, hidden_size: int, task) -> nn.Module:
        return MeanPool()

    def loss(self, outputs, batch) -> torch.Tensor:
        """In-batch negatives over the *global* batch: each rank's queries against the
        candidates of every rank (gathered with their gradients), so the loss and its gradient
        do not depend on ``resources.workers``; the benchmark trains on one process
        (DataParallel), where the batch is whole."""
        n = int(batch["pairs"])
        emb = nn.functional.normalize(outputs.float(), dim=-1)
        candidates, offset, valid = gather_across_ranks(emb[n:])
        logits = SCALE * emb[:n] @ candidates.T
        if valid is not None:
            logits = logits.masked_fill(~valid, float("-inf"))
        return nn.functional.cross_entropy(logits, offset + torch.arange(n, device=logits.device))

    def raw(self, outputs, batch) -> list:
        # one float32 array per sequence: compact to gather (Mewsli-X has 1M candidates)
        return list(nn.functional.normalize(outputs.float(), dim=-1).cpu().numpy())

    def decode(self, task, examples, features, raw):
        dim = len(raw[0])
        q = np.zeros((len(examples.queries), dim), dtype=np.float32)
        c = np.zeros((len(examples.candidates), dim), dtype=np.float32)
        for f, r in zip(features, raw):
            (q if f["side"] == 0 else c)[f["example"]] = r
        k = 1 if task.key == "tatoeba" else min(TOP_K, len(examples.candidates))
        top = top_k_cosine(torch.from_numpy(q), torch.from_numpy(c), k)
        ids = [cid for cid, _ in examples.candidates]
        ranked = {qid: [ids[j] for j in row] for (qid, _), row in zip(examples.queries, top)}
        if task.key == "tatoeba":
            return [ranked[qid][0] for qid, _ in examples.queries]
        return ranked

    def score(self, task, lang, examples, predictions) -> dict[str, float]:
        if task.key == "tatoeba":
            return accuracy([next(iter(examples.gold[qid])) for qid, _ in examples.queries], predictions)
        if task.key == "mewslix":
            return {"map@20": mrr_at_k(examples.gold, predictions, TOP_K)}
        return {"map@20": map_at_k(examples.gold, predictions, TOP_K)}

    def write(self, task, lang, examples, predictions, pred_dir: Path, label_dir: Path) -> None:
        from trainables.scoring.files import write_json, write_lines

        if task.key == "tatoeba":
            write_lines(pred_dir / task.key / f"test-{lang}.tsv", predictions)
            write_lines(label_dir / task.key / f"test-{lang}.tsv",
                        [next(iter(examples.gold[qid])) for qid, _ in examples.queries])
            return
        write_json(pred_dir / task.key / f"test-{lang}.json", predictions)
        write_json(label_dir / task.key / f"test-{lang}.json",
                   {qid: sorted(examples.gold[qid]) for qid, _ in examples.queries})


FAMILY = Retrieval()
