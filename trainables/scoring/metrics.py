"""Per-language metrics, numerically identical to the official XTREME(-R) evaluators.

Every function returns percentages (0-100), as ``evaluate.py`` does, under the official key
names (``accuracy``, ``f1``/``precision``/``recall``, ``exact_match``/``f1``, ``map@20`` ...).

The subtle cases, each covered by a golden test:

- Tagging F1 (UD-POS and PAN-X) is seqeval's chunk F1 in its default (conlleval) mode, also for
  bare UPOS tags. seqeval reads a bare tag's first character as the IOB prefix and the rest as
  the type, so runs of one tag merge into one chunk (gold NOUN NOUN VERB vs pred NOUN ADJ VERB
  is not 2/3 correct tokens but 1 of 2 gold chunks), ``CCONJ`` and ``SCONJ`` share the type
  ``CONJ``, and tags starting with ``S`` (SCONJ, SYM) are singleton chunks. We call seqeval
  itself (pinned) rather than re-deriving those rules.
- SQuAD EM/F1 (XQuAD, TyDiQA-GoldP): lower-case, drop ASCII punctuation, drop English
  articles, collapse whitespace; F1 over whitespace tokens with multiset overlap; the max over
  the gold answers; a question without a prediction counts 0 but stays in the denominator.
- MLQA EM/F1: the same, but punctuation is every Unicode ``P*`` character plus ASCII
  punctuation, articles are removed per language (es, de, vi, ar; none for hi and zh), and
  Chinese is segmented into single CJK characters and punctuation marks, with runs of other
  characters split on whitespace.
- Retrieval: accuracy of the top-1 index (Tatoeba); mAP@k over the gold set (LAReQA) and
  MRR@k (Mewsli-X); a query without a prediction counts 0.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

# ---------------------------------------------------------------------------- classification


def accuracy(labels: Sequence, predictions: Sequence) -> dict[str, float]:
    """Exact-match accuracy of aligned label/prediction lists (XNLI, PAWS-X, XCOPA, Tatoeba)."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("accuracy of an empty evaluation set")
    correct = sum(int(p == y) for p, y in zip(predictions, labels))
    return {"accuracy": 100.0 * correct / len(labels)}


# ----------------------------------------------------------------------------------- tagging


def seqeval_f1(labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> dict[str, float]:
    """Chunk precision/recall/F1 with seqeval's default mode (as ``evaluate.py`` calls it)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(labels)} gold sentences")
    for i, (g, p) in enumerate(zip(labels, predictions)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(g)} gold tags")
    labels, predictions = [list(s) for s in labels], [list(s) for s in predictions]
    with warnings.catch_warnings():  # "NOUN seems not to be NE tag": expected for UPOS
        warnings.simplefilter("ignore", UserWarning)
        return {"f1": 100.0 * f1_score(labels, predictions),
                "precision": 100.0 * precision_score(labels, predictions),
                "recall": 100.0 * recall_score(labels, predictions)}


# ---------------------------------------------------------------------------------------- QA

_SQUAD_PUNCT = set(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(s: str) -> str:
    """SQuAD v1.1's answer normalisation: lower case, no punctuation, no English articles, single spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _SQUAD_PUNCT)
    return " ".join(_EN_ARTICLES.sub(" ", s).split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _qa_scores(dataset: Iterable[Mapping], predictions: Mapping[str, str], normalize) -> dict[str, float]:
    """Shared loop of the SQuAD and MLQA scripts over SQuAD-format ``data`` articles."""
    em = f1 = 0.0
    total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue  # unanswered: 0, still counted
                pred = normalize(str(predictions[qa["id"]]))
                golds = [normalize(a["text"]) for a in qa["answers"]]
                em += max(float(pred == g) for g in golds)
                f1 += max(_token_f1(pred.split(), g.split()) for g in golds)
    if total == 0:
        raise ValueError("QA scoring of a dataset without questions")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def squad_em_f1(dataset: Iterable[Mapping], predictions: Mapping[str, str]) -> dict[str, float]:
    """SQuAD v1.1 EM/F1 over ``dataset`` (the ``data`` list) and ``{id: answer text}``."""
    return _qa_scores(dataset, predictions, squad_normalize)


_UNICODE_PUNCT = {chr(i) for i in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(i)).startswith("P")} | set(string.punctuation)
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
}
MLQA_LANGUAGES = ("en", "es", "hi", "vi", "de", "ar", "zh")
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _mixed_segmentation(text: str) -> list[str]:
    out, run = [], ""
    for ch in text:
        if _CJK.search(ch) or ch in _UNICODE_PUNCT:
            if run:
                out.extend(run.split())
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(run.split())
    return out


def mlqa_normalize(s: str, lang: str) -> str:
    """MLQA's answer normalisation for ``lang`` (its punctuation and articles)."""
    if lang not in MLQA_LANGUAGES:
        raise ValueError(f"MLQA normalisation has no rules for '{lang}'; "
                         f"allowed: {', '.join(MLQA_LANGUAGES)}")
    s = "".join(ch for ch in s.lower() if ch not in _UNICODE_PUNCT)
    if lang in _MLQA_ARTICLES:
        s = _MLQA_ARTICLES[lang].sub(" ", s)
    tokens = _mixed_segmentation(s) if lang == "zh" else s.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_em_f1(dataset: Iterable[Mapping], predictions: Mapping[str, str], lang: str) -> dict[str, float]:
    """MLQA EM/F1 with its language-aware normalisation (``lang``: the context language)."""
    return _qa_scores(dataset, predictions, lambda s: mlqa_normalize(s, lang))


# --------------------------------------------------------------------------------- retrieval


def map_at_k(gold: Mapping[str, Iterable], predictions: Mapping[str, Sequence], k: int = 20) -> float:
    """Mean average precision at k, in percent: for each query, the sum of precision@i at
    every rank i <= k holding a not-yet-seen relevant item, divided by min(k, |relevant|)."""
    if not gold:
        raise ValueError("retrieval scoring without queries")
    total = 0.0
    for qid, relevant in gold.items():
        relevant = set(relevant)
        hits, ap, seen = 0, 0.0, set()
        for i, item in enumerate(list(predictions.get(qid, []))[:k], start=1):
            if item in relevant and item not in seen:
                hits += 1
                ap += hits / i
            seen.add(item)
        total += ap / min(k, len(relevant)) if relevant else 0.0
    return 100.0 * total / len(gold)


def mrr_at_k(gold: Mapping[str, Iterable], predictions: Mapping[str, Sequence], k: int = 20) -> float:
    """Mean reciprocal rank of the first relevant item within the top k, in percent."""
    if not gold:
        raise ValueError("retrieval scoring without queries")
    total = 0.0
    for qid, relevant in gold.items():
        relevant = set(relevant)
        for i, item in enumerate(list(predictions.get(qid, []))[:k], start=1):
            if item in relevant:
                total += 1.0 / i
                break
    return 100.0 * total / len(gold)
