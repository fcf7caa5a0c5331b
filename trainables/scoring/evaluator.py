"""Benchmark tables and the folder evaluator behind ``xlt-score`` (files: ``trainables.scoring.files``).

Layout, as google-research/xtreme's ``evaluate.py`` reads it::

    {dir}/{task}/test-{lang}.tsv     one label per line (classification, xcopa, tatoeba) or
                                     one tag per line with a blank line after each sentence
    {dir}/{task}/test-{lang}.json    QA: predictions {id: answer}, labels the SQuAD document;
                                     lareqa/mewslix: {query id: [candidate ids]} both sides

A task is scored when both folders have its sub-folder; then every language of the task
must be there (a missing file is an error naming it, all missing files at once), unless
``--partial`` asks to score just the languages present (no groups or overall score then). Per task:
the unweighted mean over languages of every metric; the task score is (avg EM + avg F1)/2
for QA, else the mean F1, accuracy or ``map@20``. A group is scored when all its tasks are
(groups as evaluate.py defines them: XTREME-R's retrieval group is Tatoeba and Mewsli-X, and
XCOPA is also the ``multi_choice`` group); the overall score only when every task of the
benchmark is (else ``null``). Everything is in percent.

Where the official tooling is not one script: Mewsli-X's ``map@20`` is the official MRR@20
(one gold entity); LAReQA, which evaluate.py lists without languages or a metric, is scored as
its own script scores it (mAP@20, ``third_party/evaluate_retrieval.py``) and reported as a
task, but it is not part of the overall score: the overall score is the mean of the task scores
evaluate.py can compute (XTREME-R: the nine other tasks; it needs all nine, LAReQA's folder is
optional). ``with_lareqa`` (``xlt-score --overall-with-lareqa``) is the documented option of the
XTREME-R paper's ten-task mean, which then needs LAReQA too.
``--benchmark xtreme`` uses the XTREME (v1) task and language
lists and groups (with PAWS-X and BUCC); ``xtreme-r`` the XTREME-R ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from trainables.scoring import metrics as M
from trainables.scoring.files import ScoreError, read_json, read_label, read_tag, read_xcopa

# ------------------------------------------------------------------------------------ metrics


def _accuracy(labels, preds, lang):
    if len(labels) != len(preds):
        raise ScoreError(f"{len(preds)} predictions for {len(labels)} labels")
    return M.accuracy(labels, preds)


def _tags(labels, preds, lang):
    try:
        return M.seqeval_f1(labels, preds)
    except ValueError as e:
        raise ScoreError(str(e)) from None


def _bucc(labels, preds, lang):
    gold, pred = {tuple(x.split("\t")) for x in labels}, {tuple(x.split("\t")) for x in preds}
    correct = len(gold & pred)
    if correct == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    p, r = correct / len(pred), correct / len(gold)
    return {"f1": 100 * 2 * p * r / (p + r), "precision": 100 * p, "recall": 100 * r}


def _ranked(obj, path: str) -> dict[str, list]:
    if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
        raise ScoreError(f"{path}expected a JSON object {{query id: [candidate ids, best first]}}")
    return obj


def _mewslix(labels, preds, lang):
    """The official Mewsli-X scorer: MRR@20 against the first gold id (stripped), reported
    under the key ``map@20`` as evaluate.py does; a query without predictions scores 0."""
    labels, preds = _ranked(labels, "labels: "), _ranked(preds, "predictions: ")
    gold = {qid: [ids[0].strip()] for qid, ids in labels.items()}
    return {"map@20": M.mrr_at_k(gold, preds, 20)}


def _lareqa(labels, preds, lang):
    """LAReQA mAP@20 (google-research/xtreme utils_lareqa): AP over the top 20 divided by
    min(|relevant|, 20). The official script pools all questions of all languages; XQuAD-R has
    the same 1190 questions in every language, so the per-language mean equals it."""
    return {"map@20": M.map_at_k(_ranked(labels, "labels: "), _ranked(preds, "predictions: "), 20)}


@dataclass(frozen=True)
class BenchTask:
    """One task of a benchmark: its languages, how its files are read and scored."""
    key: str
    languages: tuple[str, ...]
    reader: Callable
    metric: Callable
    suffix: str
    qa: bool = False


def _langs(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


_QA = dict(reader=read_json, suffix="json", qa=True)
_SQUAD = dict(metric=lambda labels, preds, lang: M.squad_em_f1(labels, preds), **_QA)
# Language lists in the official order (google-research/xtreme evaluate.py, XTREME-R version).
_XTREME_R = [
    BenchTask("xnli", _langs("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"), read_label, _accuracy, "tsv"),
    BenchTask("panx", _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,"
                             "bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro"),
              read_tag, _tags, "tsv"),
    BenchTask("udpos", _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,"
                              "ta,te,th,tl,tr,ur,vi,yo,zh,lt,pl,uk,wo,ro"), read_tag, _tags, "tsv"),
    BenchTask("tatoeba", _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,"
                                "ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro"), read_label, _accuracy, "tsv"),
    BenchTask("xcopa", _langs("et,ht,id,it,qu,sw,ta,th,tr,vi,zh"), read_xcopa, _accuracy, "jsonl"),
    BenchTask("lareqa", _langs("ar,de,el,en,es,hi,ru,th,tr,vi,zh"), read_json, _lareqa, "json"),
    BenchTask("mewslix", _langs("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk"), read_json, _mewslix, "json"),
    BenchTask("xquad", _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro"), **_SQUAD),
    BenchTask("mlqa", _langs("en,es,de,ar,hi,vi,zh"),
              metric=lambda labels, preds, lang: M.mlqa_em_f1(labels, preds, lang), **_QA),
    BenchTask("tydiqa", _langs("en,ar,bn,fi,id,ko,ru,sw,te"), **_SQUAD),
]
_R = {t.key: t for t in _XTREME_R}
_XTREME = [
    BenchTask("pawsx", _langs("de,en,es,fr,ja,ko,zh"), read_label, _accuracy, "tsv"),
    _R["xnli"],
    BenchTask("panx", _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,"
                             "pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu"), read_tag, _tags, "tsv"),
    BenchTask("udpos", _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,"
                              "ru,ta,te,th,tl,tr,ur,vi,yo,zh"), read_tag, _tags, "tsv"),
    BenchTask("bucc2018", _langs("de,fr,ru,zh"), read_label, _bucc, "tsv"),
    BenchTask("tatoeba", _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,"
                                "es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu"), read_label, _accuracy, "tsv"),
    BenchTask("xquad", _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi"), **_SQUAD),
    _R["mlqa"],
    _R["tydiqa"],
]

BENCHMARKS: dict[str, dict[str, BenchTask]] = {
    "xtreme-r": {t.key: t for t in _XTREME_R},
    "xtreme": {t.key: t for t in _XTREME},
}
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "xtreme-r": {"classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"),
                 "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("tatoeba", "mewslix"),
                 "multi_choice": ("xcopa",)},
    "xtreme": {"classification": ("pawsx", "xnli"), "tagging": ("udpos", "panx"),
               "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("bucc2018", "tatoeba")},
}


def task_summary(per_language: dict[str, dict[str, float]], qa: bool) -> tuple[dict[str, float], float]:
    """(mean over languages of every metric, the task score) as ``evaluate.py`` forms them."""
    metrics = list(next(iter(per_language.values())))
    avg = {m: sum(v[m] for v in per_language.values()) / len(per_language) for m in metrics}
    if qa:
        score = (avg["exact_match"] + avg["f1"]) / 2
    else:
        score = next(avg[m] for m in ("f1", "accuracy", "map@20") if m in avg)
    return avg, score


NOT_IN_OVERALL = frozenset({"lareqa"})
"""Tasks evaluate.py cannot score, so its overall score leaves them out."""


def overall_tasks(benchmark: str, with_lareqa: bool = False) -> list[str]:
    """The tasks whose scores the overall score averages (see the module docstring)."""
    return [k for k in BENCHMARKS[benchmark] if with_lareqa or k not in NOT_IN_OVERALL]


def evaluate_folders(predictions: str | Path, labels: str | Path, benchmark: str = "xtreme-r",
                     partial: bool = False, with_lareqa: bool = False) -> dict:
    """Score every task present in both folders; see the module docstring for the rules.

    ``partial``: score only the languages whose files are in both folders (a sweep that
    evaluated a subset of languages); groups and the overall score are then left out, as they
    would not be comparable with the benchmark's. ``with_lareqa``: the overall score is the
    XTREME-R paper's mean over all ten tasks, LAReQA included."""
    if benchmark not in BENCHMARKS:
        raise ScoreError(f"unknown benchmark '{benchmark}'; allowed: {', '.join(BENCHMARKS)}")
    predictions, labels = Path(predictions), Path(labels)
    for d in (predictions, labels):
        if not d.is_dir():
            raise ScoreError(f"{d}: not a directory")
    tasks = [t for k, t in BENCHMARKS[benchmark].items()
             if (predictions / k).is_dir() and (labels / k).is_dir()]
    if partial:
        tasks = [replace(t, languages=tuple(
            lang for lang in t.languages
            if all((d / t.key / f"test-{lang}.{t.suffix}").is_file() for d in (predictions, labels))))
            for t in tasks]
        tasks = [t for t in tasks if t.languages]
    missing = [str(d / t.key / f"test-{lang}.{t.suffix}") for t in tasks for lang in t.languages
               for d in (predictions, labels) if not (d / t.key / f"test-{lang}.{t.suffix}").is_file()]
    if missing:
        raise ScoreError("missing files:\n  " + "\n  ".join(missing))
    if not tasks:
        raise ScoreError(f"no task of {benchmark} has a sub-folder in both {predictions} and {labels}; "
                         f"tasks: {', '.join(BENCHMARKS[benchmark])}")
    out: dict = {"benchmark": benchmark, "partial": partial, "tasks": {}, "groups": {}, "overall": None}
    for t in tasks:
        per_language = {}
        for lang in t.languages:
            name = f"test-{lang}.{t.suffix}"
            try:
                per_language[lang] = t.metric(t.reader(labels / t.key / name),
                                              t.reader(predictions / t.key / name), lang)
            except (ScoreError, ValueError, KeyError, TypeError) as e:
                raise ScoreError(f"{t.key}/{name}: {e}") from None
        avg, score = task_summary(per_language, t.qa)
        out["tasks"][t.key] = {"per_language": per_language, "avg": avg, "score": score}
    done = set(out["tasks"]) if not partial else set()
    for group, members in GROUPS[benchmark].items():
        if set(members) <= done:
            out["groups"][group] = sum(out["tasks"][k]["score"] for k in members) / len(members)
    counted = overall_tasks(benchmark, with_lareqa)
    out["overall_tasks"] = counted
    if set(counted) <= done:
        out["overall"] = sum(out["tasks"][k]["score"] for k in counted) / len(counted)
    return out
