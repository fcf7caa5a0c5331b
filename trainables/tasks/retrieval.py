"""Retrieval (Tatoeba, LAReQA, Mewsli-X): sentence embeddings and cosine nearest neighbours.

Evaluation: queries and candidates are encoded separately (one sequence each, token type 0);
Tatoeba's embedding is the mean of layer ``target.retrieval_layer``'s hidden states over the
real tokens (by default run_tatoeba.sh's layer, ``evaluate_retrieval.py``'s default mean
pooling); LAReQA's and Mewsli-X's is ``BertForRetrieval``'s: the pooled output of the last
layer, L2-normalised (``trainables.tasks.heads.RetrievalHead``). Candidates are ranked by
cosine similarity and the top 20 are kept. Lengths: LAReQA queries ``max_query_length`` 96,
candidates ``max_length`` 256; Mewsli-X both 64; Tatoeba both ``max_length``.

- Tatoeba: as XTREME-R's ``evaluate_retrieval.py`` implements it, each English sentence is a
  query against that pair's sentences in X; accuracy of the top-1 index (gold: the same line). Trained as XTREME-R does:
  the encoder is fine-tuned on SQuAD (``train_from: xquad``), this family only evaluates it.
- LAReQA (XQuAD-R): questions in X against the answer sentences of all languages pooled;
  relevant: the sentences, in every language, that answer that question; mAP@20. A candidate
  is the sentence followed by its whole paragraph (``lareqa_candidate``), as the benchmark
  encodes it in training and at test.
- Mewsli-X: mentions in context in X against the candidate entity descriptions; relevant: the
  gold entity; MRR@20, reported as ``map@20`` like the official scorer (one relevant item).

Training (LAReQA, Mewsli-X): a dual encoder with in-batch negatives: each batch holds B
(query, positive) pairs, encoded in one forward pass as 2B sequences, and the loss is
cross-entropy over the cosine similarities times a learnable scale (100 at the start). B is the
global batch: with several workers each rank's queries meet the candidates of all ranks
(``gather_across_ranks``), so the loss does not depend on ``resources.workers``. The batch is
cut into pools of ``training.negatives_pool`` pairs (LAReQA 4 of 16, Mewsli-X 64 of 256, the
scripts' micro-batch under gradient accumulation) and a query meets its own pool's candidates. English training pairs:
SQuAD questions with the sentence holding their answer, found by the benchmark's sentence
breaker (``trainables.tasks.sentence_breaks``), and its paragraph (LAReQA); Wikipedia mention contexts
with their entity's description (Mewsli-X). The English dev score is the same retrieval
metric over the dev pairs' pool.

Mirror formats:
- Tatoeba: ``tatoeba.{xxx}-eng.{xxx}`` and ``tatoeba.{xxx}-eng.eng``, line-aligned, where
  ``xxx`` is the ISO 639-3 code of the LASER release (``task.iso3``);
- XQuAD-R: SQuAD-format JSON per language whose paragraphs also carry ``sentences`` and
  ``sentence_breaks`` (``[[start, end], ...]``); the question ids are shared across languages;
- Mewsli-X, as ``get-mewsli-x.sh`` writes it: ``candidate_set_entities.jsonl`` (``entity_id``,
  ``description``, ``sentence_spans``), ``wikinews_mentions-{dev,test}.jsonl`` (an article per
  line: ``context`` with ``text``/``language``/``sentence_spans`` and its ``mentions`` with
  ``example_id``, ``mention_span`` and ``entity_id``) and ``wikipedia_pairs-{train,dev}.jsonl``
  (``contextual_mention`` + ``entity``). Query and candidate text exactly as ``utils_mewslix.py``
  prepares them (``trainables.tasks.mewslix``: the mention's sentence with the mention marked
  ``{ ... }``; the description's sentence spans).
Official prediction layout: Tatoeba one predicted index per line (tsv); LAReQA and Mewsli-X
``{query id: [candidate ids, best first]}`` JSON.
"""

from __future__ import annotations

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
from trainables.tasks import mewslix
from trainables.tasks.base import Encoding, pad_inputs, roberta_format, tokenizer_inputs
from trainables.tasks.heads import RetrievalHead
from trainables.tasks.sentence_breaks import answer_sentence, sentence_breaks

TOP_K = 20


@dataclass
class RetrievalSet:
    """A retrieval test set: queries, candidates and each query's relevant candidates."""
    queries: list[tuple[str, str]]
    """(query id, text)"""
    candidates: list[tuple[str, str]]
    """(candidate id, text)"""
    gold: dict[str, set[str]] = field(default_factory=dict)
    dual_encoder: bool = False
    """A set of the dual-encoder tasks (LAReQA, Mewsli-X), encoded as their scripts encode them:
    queries at ``max_query_length`` and text lowercased for XLM-R (``lowercase_for``); else
    Tatoeba's: both sides at ``max_length``, as they are."""

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


def lareqa_candidate(sentence: str, paragraph: str) -> str:
    """A LAReQA candidate as the benchmark encodes it, in training (``processors/lareqa.py``)
    and at test (``evaluate_retrieval.py``): the sentence, then its whole paragraph, no
    separator, newlines removed (one sequence, truncated to ``max_length``)."""
    return (sentence + paragraph).replace("\n", "")


@lru_cache(maxsize=64)
def _xquad_r(path: Path) -> tuple[list[tuple[str, str, frozenset[str]]], list[tuple[str, str]]]:
    """(questions (qid, text, answer candidate ids), candidates (cid, text)) of one XQuAD-R
    file, as ``utils_lareqa.load_data`` reads it: every sentence ``context[start:end]`` of a
    paragraph's ``sentence_breaks`` is a candidate; a question's answers are the sentences of
    its paragraph equal to the one holding its answer start; a question whose answer start is
    in no sentence is left out (the benchmark warns and skips it)."""
    doc = read_json_file(path)
    lang = path.stem
    questions, candidates = [], []
    for a, article in enumerate(doc.get("data", [])):
        for p, para in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context, breaks = para.get("context"), para.get("sentence_breaks")
            if not isinstance(context, str) or not isinstance(breaks, list):
                raise DataError(f"{where}: needs 'context' and 'sentence_breaks'")
            try:
                sentences = [context[int(s):int(e)] for s, e in breaks]
            except (TypeError, ValueError):
                raise DataError(f"{where}: 'sentence_breaks' must be [start, end] pairs") from None
            ids = [f"{lang}:{a}:{p}:{k}" for k in range(len(sentences))]
            candidates += [(cid, lareqa_candidate(sent, context)) for cid, sent in zip(ids, sentences)]
            for q, qa in enumerate(para.get("qas", [])):
                if not qa.get("answers"):
                    raise DataError(f"{where}.qas[{q}]: no answer")
                start = qa["answers"][0]["answer_start"]
                k = next((k for k, (s, e) in enumerate(breaks) if s <= start < e), None)
                if k is not None:
                    answer = sentences[k]
                    questions.append((str(qa["id"]), qa["question"],
                                      frozenset(c for c, sent in zip(ids, sentences) if sent == answer)))
    if not questions:
        raise DataError(f"{path}: no questions")
    return questions, candidates


def read_lareqa(folder: str | Path, lang: str, languages: tuple[str, ...]) -> RetrievalSet:
    """Queries in ``lang``; candidates: the sentences of every language in ``languages``, each
    with its paragraph (``lareqa_candidate``); relevant: the answer sentences of the question
    with the same id in every language."""
    folder = Path(folder)
    answers_of: dict[str, set[str]] = {}
    candidates = []
    for other in languages:
        questions, sentences = _xquad_r(folder / f"{other}.json")
        candidates += sentences
        for qid, _, sids in questions:
            answers_of.setdefault(qid, set()).update(sids)
    questions, _ = _xquad_r(folder / f"{lang}.json")
    return RetrievalSet([(qid, text) for qid, text, _ in questions], candidates,
                        {qid: answers_of[qid] for qid, _, _ in questions}, dual_encoder=True)


def read_mewslix_test(path: str | Path, lang: str) -> RetrievalSet:
    """``wikinews_mentions-{split}.jsonl``: the mentions of the articles in ``lang`` against
    every entity of ``candidate_set_entities.jsonl`` beside it, text as
    ``trainables.tasks.mewslix`` (``utils_mewslix.py``) prepares it."""
    path = Path(path)
    entities = mewslix.read_entities(Path(path).parent / "candidate_set_entities.jsonl")
    queries, gold = mewslix.read_mentions(path, {e for e, _ in entities}, lang)
    return RetrievalSet(queries, entities, gold, dual_encoder=True)


def read_mewslix_pairs(path: str | Path) -> list[PairForRetrieval]:
    """``wikipedia_pairs-{split}.jsonl``: English (mention query, entity description) pairs,
    text as ``trainables.tasks.mewslix`` (``utils_mewslix.py``) prepares it."""
    return [PairForRetrieval(q, d) for q, d in mewslix.read_wikipedia_pairs(path)]


def lowercase_for(tokenizer, texts: list[str]) -> list[str]:
    """LAReQA's and Mewsli-X's texts as their scripts feed them to the tokenizer:
    ``train_lareqa.sh``, ``run_eval_lareqa.sh``, ``train_mewslix.sh`` and
    ``run_eval_mewslix.sh`` pass ``--do_lower_case`` for XLM-R (not for mBERT), and the
    transformers the benchmark pins (2.x) then lowercases the text in ``tokenize``, leaving the
    tokenizer's special tokens as they are. So: lowercased where the tokenizer is XLM-R-format
    (``roberta_format``), else unchanged. Training pairs and ``dual_encoder`` sets only."""
    if not roberta_format(tokenizer):
        return texts
    special = re.compile("(" + "|".join(re.escape(t) for t in tokenizer.all_special_tokens) + ")|(.+?)")
    return [special.sub(lambda m: m.group(1) or m.group(2).lower(), t) for t in texts]


def squad_retrieval_pairs(examples) -> list[PairForRetrieval]:
    """LAReQA's English training pairs (``processors/lareqa.py``): each SQuAD question with the
    sentence holding its first answer's start (``sentence_breaks``: the benchmark's sentence
    breaker and skip rules) followed by its paragraph (``lareqa_candidate``)."""
    out, breaks = [], {}
    for e in examples:
        if not e.answers:
            continue
        text, start = e.answers[0]
        if e.context not in breaks:
            breaks[e.context] = sentence_breaks(e.context)
        sentence = answer_sentence(e.context, breaks[e.context], start, text)
        if sentence is not None:
            out.append(PairForRetrieval(e.question, lareqa_candidate(sentence, e.context)))
    return out


def pairs_as_set(pairs: list[PairForRetrieval]) -> RetrievalSet:
    """English dev pairs as a retrieval problem: each query against every distinct positive."""
    ids: dict[str, str] = {}
    for p in pairs:
        ids.setdefault(p.positive, str(len(ids)))
    return RetrievalSet([(str(i), p.query) for i, p in enumerate(pairs)],
                        [(cid, text) for text, cid in ids.items()],
                        {str(i): {ids[p.positive]} for i, p in enumerate(pairs)}, dual_encoder=True)


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
                return read_mewslix_test(path, lang)
            pairs = read_mewslix_pairs(path)
            return pairs if split == "train" else pairs_as_set(pairs)
        raise ValueError(f"{task.key}: unknown retrieval format '{kind}'")

    def augment(self, example, fn):
        """RS-DA: both sides of a training pair rewritten by ``fn`` (text -> text)."""
        return PairForRetrieval(fn(example.query), fn(example.positive))

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        if isinstance(examples, list):  # training pairs (LAReQA, Mewsli-X)
            q = tokenizer(lowercase_for(tokenizer, [p.query for p in examples]),
                          truncation=True, max_length=cfg.max_query_length)
            c = tokenizer(lowercase_for(tokenizer, [p.positive for p in examples]),
                          truncation=True, max_length=cfg.max_length)
            return [{"query": tokenizer_inputs(q, i), "positive": tokenizer_inputs(c, i), "example": i,
                     "input_ids": q["input_ids"][i] + c["input_ids"][i]}  # length for sorting
                    for i in range(len(examples))]
        feats = []
        dual = examples.dual_encoder
        query_length = cfg.max_query_length if dual else cfg.max_length
        for side, rows, length in ((0, examples.queries, query_length), (1, examples.candidates, cfg.max_length)):
            texts = [t for _, t in rows]
            enc = tokenizer(lowercase_for(tokenizer, texts) if dual else texts, truncation=True, max_length=length)
            feats += [{**tokenizer_inputs(enc, i), "side": side, "example": i} for i in range(len(rows))]
        return feats

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        if "query" in features[0]:
            rows = [f["query"] for f in features] + [f["positive"] for f in features]
            return {**pad_inputs(rows, pad_id), "pairs": torch.tensor(len(features))}
        return pad_inputs(features, pad_id)

    def head(self, encoder, task) -> nn.Module:
        """Tatoeba: mean pooling (``evaluate_retrieval.py``'s default ``pool_type``); LAReQA and
        Mewsli-X: ``BertForRetrieval``'s scaled, L2-normalised pooled output."""
        return MeanPool() if task.key == "tatoeba" else RetrievalHead(encoder)

    def loss(self, outputs, batch) -> torch.Tensor:
        """In-batch negatives over the *global* batch: each rank's queries against the
        candidates of every rank (gathered with their gradients), so the loss and its gradient
        do not depend on ``resources.workers``; the benchmark trains on one process
        (DataParallel), where the batch is whole.

        With ``negatives_pool`` k in the batch (``training.negatives_pool``), the global batch
        is cut into consecutive pools of k pairs and a query meets only its own pool's
        candidates. That is the benchmark's gradient accumulation: each forward pass of k pairs
        (``per_gpu_train_batch_size``) computes its in-batch loss, and the step averages them,
        so the loss here, the mean over all queries, is the mean of the pools' losses."""
        n = int(batch["pairs"])
        emb = outputs.float()  # unit vectors x sqrt(logit_scale): q . c = logit_scale x cosine
        candidates, offset, valid = gather_across_ranks(emb[n:])
        logits = emb[:n] @ candidates.T
        keep = valid
        if "negatives_pool" in batch:
            # each gathered row's place in the global batch (the gathered layout pads every rank)
            place = torch.arange(len(candidates), device=logits.device) if valid is None else valid[0].cumsum(0) - 1
            own = place[offset:offset + n]
            pool = int(batch["negatives_pool"])
            same = (own // pool)[:, None] == (place // pool)[None, :]
            keep = same if valid is None else same & valid
        if keep is not None:
            logits = logits.masked_fill(~keep, float("-inf"))
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
