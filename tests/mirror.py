"""A small local mirror in the benchmark's raw formats, for loader and sweep tests.

Real data from ``tests/fixtures`` where it exists (XQuAD, XCOPA, UD, Tatoeba); formats
the fixtures lack are written synthetically in the exact raw layout: PAWS-X ``x-final`` tsv,
PAN-X ``lang:token<TAB>TAG``, SocialIQA jsonl + labels, English COPA jsonl, XQuAD-R (XQuAD
plus ``sentences``/``sentence_breaks``), MLQA and TyDiQA-GoldP file names, Mewsli-X jsonl.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from trainables.demo_data import write_demo_data
from trainables.miniature.data import write_miniature
from trainables.tasks import TYDIQA_NAMES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _with_sentences(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    for article in doc["data"]:
        for para in article["paragraphs"]:
            ctx, breaks, start = para["context"], [], 0
            for m in re.finditer(r"[.!?。।]\s*|$", ctx):
                if m.end() > start:
                    breaks.append([start, m.end()])
                    start = m.end()
            para["sentence_breaks"] = breaks
            para["sentences"] = [ctx[s:e] for s, e in breaks]
    return doc


def build_mirror(root: Path) -> Path:
    rng = random.Random(0)
    root = Path(root)
    write_demo_data(root)  # XNLI-format tsv and the intermediate tasks, as a mirror holds them
    write_miniature(root, {"pretrain": 10})  # the miniature world's role tagging (PAN-X format)
    # XQuAD (real), SQuAD-format English training data (the English XQuAD file)
    for lang in XQUAD_LANGS:
        _put(root / "xquad" / f"xquad.{lang}.json", (FIXTURES / "xquad" / f"xquad.{lang}.json").read_text())
    en = json.loads((FIXTURES / "xquad" / "xquad.en.json").read_text())
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        _put(root / "squad" / name, json.dumps(en))
    # MLQA and TyDiQA-GoldP file layouts, filled with XQuAD content
    for lang in ("en", "es", "de", "ar", "hi", "vi", "zh"):
        doc = json.loads((FIXTURES / "xquad" / f"xquad.{lang}.json").read_text())
        _put(root / "mlqa" / "MLQA_V1" / "test" / f"test-context-{lang}-question-{lang}.json", json.dumps(doc))
    train = {"version": "1.1", "data": []}
    for lang, name in TYDIQA_NAMES.items():
        src = lang if lang in XQUAD_LANGS else "en"
        doc = json.loads((FIXTURES / "xquad" / f"xquad.{src}.json").read_text())
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    qa["id"] = f"{name}-{qa['id']}"
        _put(root / "tydiqa" / "tydiqa-goldp-v1.1-dev" / f"tydiqa-goldp-dev-{name}.json", json.dumps(doc))
        train["data"] += doc["data"]
    _put(root / "tydiqa" / "tydiqa-goldp-v1.1-train.json", json.dumps(train))
    # XQuAD-R: XQuAD with sentence breaks
    for lang in ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"):
        doc = json.loads((FIXTURES / "xquad" / f"xquad.{lang}.json").read_text())
        _put(root / "lareqa" / "xquad-r" / f"{lang}.json", json.dumps(_with_sentences(doc)))
    # UD (real CoNLL-U); English train/dev are the English test cut
    for lang in ("en", "yo", "wo"):
        text = (FIXTURES / "udpos" / f"{lang}-test.conllu").read_text()
        _put(root / "udpos" / lang / f"{lang}_x-ud-test.conllu", text)
    for split in ("train", "dev"):
        _put(root / "udpos" / "en" / f"en_x-ud-{split}.conllu", (FIXTURES / "udpos" / "en-test.conllu").read_text())
    # XCOPA (real); English COPA and SocialIQA synthetic in their raw formats
    for p in sorted((FIXTURES / "xcopa").glob("val.*.jsonl")):
        lang = p.name.split(".")[1]
        _put(root / "xcopa" / lang / f"test.{lang}.jsonl", p.read_text())
    things = ["the glass", "the window", "the cup", "the vase", "the plate", "the lamp"]
    copa = []
    for i in range(60):
        t = rng.choice(things)
        right, wrong = f"{t} broke.", f"{t} was cleaned."
        label = i % 2
        choices = (wrong, right) if label else (right, wrong)
        copa.append({"premise": f"I dropped {t}.", "choice1": choices[0], "choice2": choices[1],
                     "question": "effect", "label": label, "idx": i})
    _put(root / "copa" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in copa[:40]))
    _put(root / "copa" / "val.jsonl", "".join(json.dumps(r) + "\n" for r in copa[40:]))
    siqa, labels = [], []
    for i in range(30):
        k = i % 3
        answers = ["happy", "sad", "tired"]
        siqa.append({"context": f"Alex won the game number {i}.", "question": "How does Alex feel?",
                     "answerA": answers[k], "answerB": answers[(k + 1) % 3], "answerC": answers[(k + 2) % 3]})
        labels.append("1")
    _put(root / "siqa" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in siqa))
    _put(root / "siqa" / "train-labels.lst", "\n".join(labels) + "\n")
    # Tatoeba (real)
    for p in sorted((FIXTURES / "tatoeba").glob("tatoeba.*")):
        _put(root / "tatoeba" / p.name, p.read_text())
    # PAN-X and PAWS-X: synthetic, raw formats
    names = ["Anna", "Berlin", "Kofi", "Paris", "Omar", "Lima"]
    kinds = {"Anna": "PER", "Kofi": "PER", "Omar": "PER", "Berlin": "LOC", "Paris": "LOC", "Lima": "LOC"}
    for lang in ("en", "de", "sw", "yo"):
        for split in ("train", "dev", "test"):
            lines = []
            for _ in range(30):
                a, b = rng.sample(names, 2)
                for tok, tag in ((a, f"B-{kinds[a]}"), ("met", "O"), ("in", "O"), (b, f"B-{kinds[b]}"),
                                 ("City", f"I-{kinds[b]}"), (".", "O")):
                    lines.append(f"{lang}:{tok}\t{tag}")
                lines.append("")
            _put(root / "panx" / lang / split, "\n".join(lines) + "\n")
    for lang in ("en", "de", "fr"):
        for split in ("train", "dev_2k", "test_2k"):
            rows = ["id\tsentence1\tsentence2\tlabel"]
            for i in range(40):
                a, b = rng.sample(names, 2)
                same = i % 2
                rows.append(f"{i}\t{a} visited {b}.\t{a + ' visited ' + b if same else b + ' visited ' + a}.\t{same}")
            _put(root / "pawsx" / lang / f"{split}.tsv", "\n".join(rows) + "\n")
    # Mewsli-X: synthetic jsonl in the released schema
    entities = []
    for i, n in enumerate(names):
        first, second = f"{n} is a {kinds[n].lower()} called {n}.", f"It is known as {n}."
        entities.append({"entity_id": f"Q{i}", "title": n, "description": f"{first} {second}",
                         "sentence_spans": [{"start": 0, "end": len(first)},
                                            {"start": len(first) + 1, "end": len(first) + 1 + len(second)}]})
    _put(root / "mewslix" / "candidate_set_entities.jsonl", "".join(json.dumps(e) + "\n" for e in entities))

    def mention(i, lang):
        e = entities[i % len(entities)]
        first = f"Yesterday {e['title']} was in the news."
        text = f"{first} Nothing else happened."
        start = text.index(e["title"])
        spans = [{"start": 0, "end": len(first)}, {"start": len(first) + 1, "end": len(text)}]
        return {"context": {"text": text, "language": lang, "sentence_spans": spans},
                "mention": {"example_id": f"{lang}{i:04d}", "entity_id": e["entity_id"],
                            "mention_span": {"start": start, "end": start + len(e["title"]), "text": e["title"]}}}

    for split, n in (("train", 60), ("dev", 12)):
        rows = [{"contextual_mention": mention(i, "en"), "entity": entities[i % len(entities)]} for i in range(n)]
        _put(root / "mewslix" / f"wikipedia_pairs-{split}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    articles = []
    for lang in ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk"):
        for i in range(6):
            m = mention(i, lang)
            articles.append({"context": m["context"], "mentions": [m["mention"]]})
    _put(root / "mewslix" / "wikinews_mentions-test.jsonl", "".join(json.dumps(a) + "\n" for a in articles))
    return root
