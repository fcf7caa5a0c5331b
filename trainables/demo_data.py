"""Built-in, deterministic demo data in the real formats, for the offline embedded default.

The target task is XNLI-style NLI in ten languages across six scripts (Latin, Cyrillic, Greek,
Arabic, Devanagari, Han); the intermediate tasks are English NLI in three domains (general,
legal, medical). All share one learnable structure:

    premise     "<name> bought <n> <objects> at the market yesterday."
    entailment  "<name> bought <n> <objects>."              same name, same number
    contradict  "<name> bought <m> <objects>."  (m != n)   or "<name> did not buy <n> ..."
    neutral     "<other name> bought <n|m> <objects>."     or the negation of that

Names and digits are written the same in every language, so an English-trained model can
transfer the name/number comparison across scripts; the negation word is language-specific,
so negated contradictions are learnable in English but not transferable from it. That gives
a real zero-shot gap that differs by language (word order and tokenisation differ too),
which is what a smoke sweep should be able to show. The intermediate tasks teach the same
comparison with domain vocabulary, so intermediate training has a measurable effect.

The miniature world's files (``trainables.miniature.data``) go under ``{root}/miniature/``, written
only for a sweep that uses them. Files are written in the XTREME layout the loaders read for real data:
``{root}/xnli/{train,dev}-en.tsv``, ``{root}/xnli/test-{lang}.tsv`` and
``{root}/intermediate/{key}/train.tsv``, each ``premise<TAB>hypothesis<TAB>label`` (MedNLI: its
release's ``mli_train_v1.jsonl`` with ``sentence1``, ``sentence2``, ``gold_label``).
The test sets are parallel across languages (line i is the same example), as XNLI's are, so
generalized cross-lingual evaluation can pair a premise in one language with a hypothesis in
another. Generation depends only on the sizes and a fixed seed: the same bytes on every machine.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

NAMES = ["Anna", "Boris", "Carlos", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines",
         "Jamal", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya"]

# language -> (premise, hypothesis, negated hypothesis, objects)
LEXICON: dict[str, tuple[str, str, str, list[str]]] = {
    "en": ("{name} bought {n} {obj} at the market yesterday.", "{name} bought {n} {obj}.",
           "{name} did not buy {n} {obj}.",
           ["apples", "books", "chairs", "lamps", "shirts", "cups"]),
    "de": ("{name} hat gestern auf dem Markt {n} {obj} gekauft.", "{name} hat {n} {obj} gekauft.",
           "{name} hat keine {n} {obj} gekauft.",
           ["Äpfel", "Bücher", "Stühle", "Lampen", "Hemden", "Tassen"]),
    "fr": ("Hier, {name} a acheté {n} {obj} au marché.", "{name} a acheté {n} {obj}.",
           "{name} n'a pas acheté {n} {obj}.",
           ["pommes", "livres", "chaises", "lampes", "chemises", "tasses"]),
    "es": ("Ayer {name} compró {n} {obj} en el mercado.", "{name} compró {n} {obj}.",
           "{name} no compró {n} {obj}.",
           ["manzanas", "libros", "sillas", "lámparas", "camisas", "tazas"]),
    "ru": ("Вчера {name} купил {n} {obj} на рынке.", "{name} купил {n} {obj}.",
           "{name} не купил {n} {obj}.",
           ["яблок", "книг", "стульев", "ламп", "рубашек", "чашек"]),
    "bg": ("Вчера {name} купи {n} {obj} на пазара.", "{name} купи {n} {obj}.",
           "{name} не купи {n} {obj}.",
           ["ябълки", "книги", "стола", "лампи", "ризи", "чаши"]),
    "el": ("Χθες ο {name} αγόρασε {n} {obj} στην αγορά.", "Ο {name} αγόρασε {n} {obj}.",
           "Ο {name} δεν αγόρασε {n} {obj}.",
           ["μήλα", "βιβλία", "καρέκλες", "λάμπες", "πουκάμισα", "φλιτζάνια"]),
    "ar": ("اشترى {name} أمس {n} {obj} من السوق.", "اشترى {name} {n} {obj}.",
           "لم يشتر {name} {n} {obj}.",
           ["تفاحات", "كتب", "كراسي", "مصابيح", "قمصان", "أكواب"]),
    "hi": ("{name} ने कल बाज़ार से {n} {obj} खरीदे।", "{name} ने {n} {obj} खरीदे।",
           "{name} ने {n} {obj} नहीं खरीदे।",
           ["सेब", "किताबें", "कुर्सियाँ", "लैंप", "कमीज़ें", "कप"]),
    "zh": ("{name}昨天在市场买了{n}个{obj}。", "{name}买了{n}个{obj}。", "{name}没有买{n}个{obj}。",
           ["苹果", "书", "椅子", "灯", "衬衫", "杯子"]),
}

# intermediate task key -> (premise, hypothesis, negated, objects, labels as (ent, neu, con))
DOMAIN_LEXICON: dict[str, tuple[str, str, str, list[str], tuple[str, str, str]]] = {
    "mnli": ("{name} saw {n} {obj} in the park this morning.", "{name} saw {n} {obj}.",
             "{name} did not see {n} {obj}.", ["birds", "dogs", "trees", "cars", "kites", "boats"],
             ("entailment", "neutral", "contradiction")),
    "contract_nli": ("Pursuant to this Agreement, {name} shall deliver {n} {obj} to the Buyer.",
                     "{name} shall deliver {n} {obj}.", "{name} shall not deliver {n} {obj}.",
                     ["shipments", "invoices", "licenses", "copies", "reports", "notices"],
                     ("entailment", "neutral", "contradiction")),
    "mednli": ("On admission, patient {name} received {n} {obj} of the prescribed drug.",
               "{name} received {n} {obj}.", "{name} did not receive {n} {obj}.",
               ["doses", "tablets", "injections", "units", "capsules", "infusions"],
               ("entailment", "neutral", "contradiction")),
}

XNLI_LABELS = ("entailment", "neutral", "contradiction")
SIZES = {"intermediate": 1200, "train": 600, "dev": 200, "test": 200}


def _examples(frames, labels, n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    premise_f, hyp_f, neg_f, objects = frames
    ent, neu, con = labels
    rows = []
    for i in range(n):
        name, other = rng.sample(NAMES, 2)
        num, wrong = rng.sample(range(2, 20), 2)
        obj = rng.choice(objects)
        premise = premise_f.format(name=name, n=num, obj=obj)
        kind = i % 3  # balanced labels; order shuffled below
        negated = rng.random() < 0.25
        if kind == 0:
            hyp, label = hyp_f.format(name=name, n=num, obj=obj), ent
        elif kind == 1:
            f = neg_f if negated else hyp_f
            hyp, label = f.format(name=other, n=rng.choice([num, wrong]), obj=obj), neu
        else:
            hyp = (neg_f.format(name=name, n=num, obj=obj) if negated
                   else hyp_f.format(name=name, n=wrong, obj=obj))
            label = con
        rows.append((premise, hyp, label))
    rng.shuffle(rows)
    return rows


def _write(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")
    os.replace(tmp, path)  # atomic: concurrent trials may materialise the same file


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def write_demo_data(root: str | os.PathLike, sizes: dict[str, int] | None = None) -> Path:
    """Write all demo files under ``root`` (idempotent and deterministic); return ``root``."""
    root = Path(root)
    sizes = {**SIZES, **(sizes or {})}
    for k, (lang, frames) in enumerate(sorted(LEXICON.items())):
        rng = random.Random(1000 + k)
        if lang == "en":
            _write(root / "xnli" / "train-en.tsv", _examples(frames, XNLI_LABELS, sizes["train"], rng))
            _write(root / "xnli" / "dev-en.tsv", _examples(frames, XNLI_LABELS, sizes["dev"], rng))
        # test sets are parallel (line i is the same example in every language), as XNLI's are:
        # the structure comes from one shared seed, only the words differ
        _write(root / "xnli" / f"test-{lang}.tsv",
               _examples(frames, XNLI_LABELS, sizes["test"], random.Random(4242)))
    for k, (key, (*frames, labels)) in enumerate(sorted(DOMAIN_LEXICON.items())):
        rng = random.Random(2000 + k)
        rows = _examples(frames, labels, sizes["intermediate"], rng)
        if key == "mednli":  # the PhysioNet release's JSONL layout
            _write_jsonl(root / "intermediate" / key / "mli_train_v1.jsonl",
                         [{"sentence1": a, "sentence2": b, "gold_label": c} for a, b, c in rows])
        else:
            _write(root / "intermediate" / key / "train.tsv", rows)
    return root


def corpus(root: str | os.PathLike) -> list[str]:
    """Every sentence of the XNLI-style demo data (not the miniature world's), for training the demo tokenizer."""
    import json

    lines = []
    for path in sorted([*Path(root).rglob("*.tsv"), *Path(root).rglob("*.jsonl")]):
        for line in path.read_text(encoding="utf-8").splitlines():
            if path.suffix == ".jsonl":
                row = json.loads(line)
                lines.extend([row["sentence1"], row["sentence2"]])
            else:
                lines.extend(line.split("\t")[:2])
    return lines
