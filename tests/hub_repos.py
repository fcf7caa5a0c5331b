"""Hugging Face dataset repos built on the spot, one for every hub dataset the project reads, in
the hub's own layout (``{config}/{split}-00000-of-00001.parquet`` plus a README whose YAML lists
the configs), so ``datasets.load_dataset(<dir>/<id>, config)`` loads them exactly as it loads a
clone of the real repo (``XLT_HUB_DIR`` / ``--hub-dir``).

Each repo has the real dataset's configs, split names, columns and feature types as its card's
``dataset_info`` lists them on the hub today (checked against the cards and the conversion
commits; Dec 2026), ClassLabel names in their order included, and the real oddities:

- MedMCQA ``cop`` is a ClassLabel ``a``-``d``, -1 on the hidden test split;
- SocialIQA (``lighteval/siqa``, the parquet copy) has its label as the string ``"1"``-``"3"``;
- HellaSwag's label is a string, ``""`` on test; CaseHOLD's a ClassLabel ``"0"``-``"4"``;
- GLUE MNLI and SuperGLUE COPA hide test labels as -1; COPA's label is a ClassLabel
  ``choice1``/``choice2``, XCOPA's a plain int32 (with a ``changed`` column);
- PAWS-X in ``google/xtreme`` has a string label; its udpos ``pos_tags`` are a ClassLabel in
  alphabetical order (not the project's UPOS order); its configs are only XTREME's 33 UD 2.5
  languages (none for lt, pl, uk, wo, ro);
- SciTail ``tsv_format`` and PubMedQA ``final_decision`` are strings; PubMedQA's ``context``
  is a sequence of a dict (a dict of lists);
- XQuAD's ``answers`` list ``text`` before ``answer_start``, MLQA's (``google/xtreme``) the
  other way round; TyDiQA's secondary task ids start with the language's English name.

``HUB_LANGUAGES`` says which languages each multilingual repo is built for here.
"""

from __future__ import annotations

import random
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, List, Value

S = Value("string")
I32 = Value("int32")
QA_ANSWERS = {"answer_start": List(I32), "text": List(S)}  # google/xtreme MLQA order
QA_ANSWERS_TEXT_FIRST = {"text": List(S), "answer_start": List(I32)}  # squad, xquad, tydiqa

UD_TAGS_ALPHABETICAL = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
                        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]
WIKIANN_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]

HUB_LANGUAGES = {"xnli": ("en", "de"), "pawsx": ("en", "de"), "udpos": ("en", "de"), "mlqa": ("en", "de"),
                 "xcopa": ("et", "it"), "panx": ("en", "de"), "xquad": ("en", "de"), "tydiqa": ("en", "fi")}
"""The languages each multilingual repo is built for (the hub has them all)."""


def _write_repo(root: Path, hub_id: str, configs: dict[str | None, dict[str, Dataset]]) -> None:
    repo = root / hub_id
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        name = config or "default"
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, ds in splits.items():
            (repo / name).mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(repo / name / f"{split}-00000-of-00001.parquet"))
            lines += [f"  - split: {split}", f"    path: {name}/{split}-*"]
    lines.append("---")
    (repo / "README.md").write_text("\n".join(lines) + "\n")


class _Text:
    """Seeded filler text."""

    WORDS = ["court", "contract", "party", "shall", "deliver", "goods", "cell", "drug", "market", "price",
             "river", "city", "house", "green", "small", "runs", "sees", "the", "a", "of"]

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def words(self, k: int) -> list[str]:
        return [self.rng.choice(self.WORDS) for _ in range(k)]

    def sent(self, k: int = 6) -> str:
        return " ".join(self.words(k)).capitalize() + "."


def _qa_rows(t: _Text, n: int, ids, answers_first_text: bool) -> dict:
    """SQuAD-style rows whose answer is the context's fourth word, at its character offset."""
    contexts = [t.sent(12) for _ in range(n)]
    answers = [{"text": [c.split()[3]], "answer_start": [len(" ".join(c.split()[:3])) + 1]} for c in contexts]
    if not answers_first_text:
        answers = [{"answer_start": a["answer_start"], "text": a["text"]} for a in answers]
    return {"id": list(ids), "title": ["t"] * n, "context": contexts,
            "question": [t.sent(4)[:-1] + "?" for _ in range(n)], "answers": answers}


def build_hub(root: Path, n: int = 48) -> Path:
    """Every hub repo the project reads, ``n`` rows per split, under ``root`` (``<root>/<owner>/<name>``)."""
    t = _Text(0)

    # --- intermediate tasks ---
    nli = Features({"premise": S, "hypothesis": S,
                    "label": ClassLabel(names=["entailment", "neutral", "contradiction"]), "idx": I32})
    _write_repo(root, "nyu-mll/glue", {"mnli": {split: Dataset.from_dict(
        {"premise": [t.sent() for _ in range(n)], "hypothesis": [t.sent(4) for _ in range(n)],
         "label": [i % 3 if split == "train" else -1 for i in range(n)], "idx": list(range(n))}, features=nli)
        for split in ("train", "validation_matched", "test_matched")}})

    squad = Features({"id": S, "title": S, "context": S, "question": S, "answers": QA_ANSWERS_TEXT_FIRST})
    _write_repo(root, "rajpurkar/squad", {"plain_text": {
        split: Dataset.from_dict(_qa_rows(t, n, (f"{split}{i}" for i in range(n)), True), features=squad)
        for split in ("train", "validation")}})

    hella = Features({"ind": I32, "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S, "endings": List(S),
                      "source_id": S, "split": S, "split_type": S, "label": S})
    ctx = [t.sent() for _ in range(n)]
    _write_repo(root, "Rowan/hellaswag", {None: {split: Dataset.from_dict(
        {"ind": list(range(n)), "activity_label": ["x"] * n, "ctx_a": ctx, "ctx_b": [""] * n, "ctx": ctx,
         "endings": [[t.sent(3) for _ in range(4)] for _ in range(n)], "source_id": ["s"] * n,
         "split": [split] * n, "split_type": ["indomain"] * n,
         "label": [str(i % 4) if split != "test" else "" for i in range(n)]}, features=hella)
        for split in ("train", "validation", "test")}})

    ledgar = Features({"text": S, "label": ClassLabel(names=LEDGAR_LABELS)})
    case = Features({"context": S, "endings": List(S), "label": ClassLabel(names=[str(i) for i in range(5)])})
    _write_repo(root, "coastalcph/lex_glue", {
        "ledgar": {"train": Dataset.from_dict({"text": [t.sent(10) for _ in range(n)],
                                               "label": [(7 * i) % 100 for i in range(n)]}, features=ledgar)},
        "case_hold": {"train": Dataset.from_dict(
            {"context": [t.sent(10) + " <HOLDING>" for _ in range(n)],
             "endings": [[t.sent(5) for _ in range(5)] for _ in range(n)], "label": [i % 5 for i in range(n)]},
            features=case)}})

    pubmed = Features({"pubid": I32, "question": S,
                       "context": {"contexts": List(S), "labels": List(S), "meshes": List(S),
                                   "reasoning_required_pred": List(S), "reasoning_free_pred": List(S)},
                       "long_answer": S, "final_decision": S})
    _write_repo(root, "qiaojin/PubMedQA", {"pqa_labeled": {"train": Dataset.from_dict(
        {"pubid": list(range(1000, 1000 + n)), "question": [t.sent(5)[:-1] + "?" for _ in range(n)],
         "context": [{"contexts": [t.sent(8), t.sent(8)], "labels": ["BACKGROUND", "RESULTS"], "meshes": ["Humans"],
                      "reasoning_required_pred": list("yes"), "reasoning_free_pred": list("no")} for _ in range(n)],
         "long_answer": [t.sent(6) for _ in range(n)],
         "final_decision": [("yes", "no", "maybe")[i % 3] for i in range(n)]}, features=pubmed)}})

    medmcqa = Features({"id": S, "question": S, "opa": S, "opb": S, "opc": S, "opd": S,
                        "cop": ClassLabel(names=["a", "b", "c", "d"]), "choice_type": S, "exp": S,
                        "subject_name": S, "topic_name": S})
    _write_repo(root, "openlifescienceai/medmcqa", {None: {split: Dataset.from_dict(
        {"id": [f"{split}-{i}" for i in range(n)], "question": [t.sent(6)[:-1] + "?" for _ in range(n)],
         **{f"op{c}": [f"{c} " + t.sent(2) for _ in range(n)] for c in "abcd"},
         "cop": [i % 4 if split != "test" else -1 for i in range(n)], "choice_type": ["single"] * n,
         "exp": [t.sent(5) if split != "test" else "" for _ in range(n)], "subject_name": ["Anatomy"] * n,
         "topic_name": ["Bones"] * n}, features=medmcqa) for split in ("train", "test", "validation")}})

    scitail = Features({"premise": S, "hypothesis": S, "label": S})
    _write_repo(root, "allenai/scitail", {"tsv_format": {split: Dataset.from_dict(
        {"premise": [t.sent() for _ in range(n)], "hypothesis": [t.sent(4) for _ in range(n)],
         "label": [("entails", "neutral")[i % 2] for i in range(n)]}, features=scitail)
        for split in ("train", "test", "validation")}})

    sciq = Features({"question": S, "distractor3": S, "distractor1": S, "distractor2": S, "correct_answer": S,
                     "support": S})
    _write_repo(root, "allenai/sciq", {None: {split: Dataset.from_dict(
        {"question": [t.sent(5)[:-1] + "?" for _ in range(n)], **{f"distractor{k}": [t.sent(2) for _ in range(n)]
                                                                    for k in (3, 1, 2)},
         "correct_answer": [t.sent(2) for _ in range(n)], "support": [t.sent(9) for _ in range(n)]}, features=sciq)
        for split in ("train", "validation", "test")}})

    # --- target tasks and their training data ---
    xnli = Features({"premise": S, "hypothesis": S,
                     "label": ClassLabel(names=["entailment", "neutral", "contradiction"])})
    _write_repo(root, "facebook/xnli", {lang: {split: Dataset.from_dict(
        {"premise": [t.sent() for _ in range(n)], "hypothesis": [t.sent(4) for _ in range(n)],
         "label": [i % 3 for i in range(n)]}, features=xnli) for split in ("train", "test", "validation")}
        for lang in HUB_LANGUAGES["xnli"]})

    paws = Features({"sentence1": S, "sentence2": S, "label": S})
    udpos = Features({"tokens": List(S), "pos_tags": List(ClassLabel(names=UD_TAGS_ALPHABETICAL))})
    mlqa = Features({"id": S, "title": S, "context": S, "question": S, "answers": QA_ANSWERS})
    ud_names = {"en": "English", "de": "German"}
    xtreme = {f"PAWS-X.{lang}": {split: Dataset.from_dict(
        {"sentence1": [t.sent() for _ in range(n)], "sentence2": [t.sent() for _ in range(n)],
         "label": [str(i % 2) for i in range(n)]}, features=paws) for split in ("train", "validation", "test")}
        for lang in HUB_LANGUAGES["pawsx"]}
    for lang in HUB_LANGUAGES["udpos"]:
        rows = [UD_SENTENCES[i % len(UD_SENTENCES)] for i in range(n)]
        xtreme[f"udpos.{ud_names[lang]}"] = {split: Dataset.from_dict(
            {"tokens": [[w for w, _ in r] for r in rows],
             "pos_tags": [[UD_TAGS_ALPHABETICAL.index(p) for _, p in r] for r in rows]}, features=udpos)
            for split in ("train", "validation", "test")}
    for lang in HUB_LANGUAGES["mlqa"]:
        xtreme[f"MLQA.{lang}.{lang}"] = {split: Dataset.from_dict(
            _qa_rows(t, n, (f"mlqa-{lang}-{split}-{i}" for i in range(n)), False), features=mlqa)
            for split in ("test", "validation")}
    _write_repo(root, "google/xtreme", xtreme)

    copa = Features({"premise": S, "choice1": S, "choice2": S, "question": S, "idx": I32,
                     "label": ClassLabel(names=["choice1", "choice2"])})
    _write_repo(root, "aps/super_glue", {"copa": {split: Dataset.from_dict(
        {"premise": [t.sent() for _ in range(n)], "choice1": [t.sent(3) for _ in range(n)],
         "choice2": [t.sent(3) for _ in range(n)], "question": [("cause", "effect")[i % 2] for i in range(n)],
         "idx": list(range(n)), "label": [i % 2 if split != "test" else -1 for i in range(n)]}, features=copa)
        for split in ("train", "validation", "test")}})
    xcopa = Features({"premise": S, "choice1": S, "choice2": S, "question": S, "label": I32, "idx": I32,
                      "changed": Value("bool")})
    _write_repo(root, "cambridgeltl/xcopa", {lang: {split: Dataset.from_dict(
        {"premise": [t.sent() for _ in range(n)], "choice1": [t.sent(3) for _ in range(n)],
         "choice2": [t.sent(3) for _ in range(n)], "question": [("cause", "effect")[i % 2] for i in range(n)],
         "label": [(i // 2) % 2 for i in range(n)], "idx": list(range(n)), "changed": [False] * n},
        features=xcopa) for split in ("validation", "test")} for lang in HUB_LANGUAGES["xcopa"]})

    siqa = Features({"context": S, "question": S, "answerA": S, "answerB": S, "answerC": S, "label": S})
    _write_repo(root, "lighteval/siqa", {None: {split: Dataset.from_dict(
        {"context": [t.sent() for _ in range(n)], "question": [t.sent(4)[:-1] + "?" for _ in range(n)],
         **{f"answer{c}": [t.sent(2) for _ in range(n)] for c in "ABC"},
         "label": [str(1 + i % 3) for i in range(n)]}, features=siqa) for split in ("train", "validation")}})

    wikiann = Features({"tokens": List(S), "ner_tags": List(ClassLabel(names=WIKIANN_TAGS)), "langs": List(S),
                        "spans": List(S)})
    _write_repo(root, "unimelb-nlp/wikiann", {lang: {split: Dataset.from_dict(
        {"tokens": [["Anna", "lives", "in", "Berlin", "."]] * n, "ner_tags": [[1, 0, 0, 5, 0]] * n,
         "langs": [[lang] * 5] * n, "spans": [["PER: Anna", "LOC: Berlin"]] * n}, features=wikiann)
        for split in ("validation", "test", "train")} for lang in HUB_LANGUAGES["panx"]})

    xquad = Features({"id": S, "context": S, "question": S, "answers": QA_ANSWERS_TEXT_FIRST})
    _write_repo(root, "google/xquad", {f"xquad.{lang}": {"validation": Dataset.from_dict(
        {k: v for k, v in _qa_rows(t, n, (f"xquad-{lang}-{i}" for i in range(n)), True).items() if k != "title"},
        features=xquad)} for lang in HUB_LANGUAGES["xquad"]})

    tydi = Features({"id": S, "title": S, "context": S, "question": S, "answers": QA_ANSWERS_TEXT_FIRST})
    names = {"en": "english", "fi": "finnish"}
    _write_repo(root, "google-research-datasets/tydiqa", {"secondary_task": {split: Dataset.from_dict(
        _qa_rows(t, n, (f"{names[HUB_LANGUAGES['tydiqa'][i % 2]]}-{1000 + i}-{i % 3}" for i in range(n)), True),
        features=tydi) for split in ("train", "validation")}})
    return root


UD_SENTENCES = [
    [("The", "DET"), ("river", "NOUN"), ("runs", "VERB"), ("fast", "ADV"), (".", "PUNCT")],
    [("Anna", "PROPN"), ("sees", "VERB"), ("a", "DET"), ("green", "ADJ"), ("house", "NOUN"), ("!", "PUNCT")],
    [("zu", "ADP"), ("dem", "DET"), ("Haus", "NOUN"), ("und", "CCONJ"), ("zurück", "ADV")],
]
"""Tagged sentences for the udpos configs; "zu dem" is how the hub's udpos rows carry a
multiword token ("zum"): its syntactic words, each with its own tag."""

LEDGAR_LABELS = [
    "Adjustments", "Agreements", "Amendments", "Anti-Corruption Laws", "Applicable Laws", "Approvals", "Arbitration",
    "Assignments", "Assigns", "Authority", "Authorizations", "Base Salary", "Benefits", "Binding Effects", "Books",
    "Brokers", "Capitalization", "Change In Control", "Closings", "Compliance With Laws", "Confidentiality",
    "Consent To Jurisdiction", "Consents", "Construction", "Cooperation", "Costs", "Counterparts", "Death",
    "Defined Terms", "Definitions", "Disability", "Disclosures", "Duties", "Effective Dates", "Effectiveness",
    "Employment", "Enforceability", "Enforcements", "Entire Agreements", "Erisa", "Existence", "Expenses", "Fees",
    "Financial Statements", "Forfeitures", "Further Assurances", "General", "Governing Laws", "Headings",
    "Indemnifications", "Indemnity", "Insurances", "Integration", "Intellectual Property", "Interests",
    "Interpretations", "Jurisdictions", "Liens", "Litigations", "Miscellaneous", "Modifications", "No Conflicts",
    "No Defaults", "No Waivers", "Non-Disparagement", "Notices", "Organizations", "Participations", "Payments",
    "Positions", "Powers", "Publicity", "Qualifications", "Records", "Releases", "Remedies", "Representations",
    "Sales", "Sanctions", "Severability", "Solvency", "Specific Performance", "Submission To Jurisdiction",
    "Subsidiaries", "Successors", "Survival", "Tax Withholdings", "Taxes", "Terminations", "Terms", "Titles",
    "Transactions With Affiliates", "Use Of Proceeds", "Vacations", "Venues", "Vesting", "Waiver Of Jury Trials",
    "Waivers", "Warranties", "Withholdings"]
"""LEDGAR's 100 provision types, in the order of ``LEDGAR_CATEGORIES`` in the lex_glue loading
script (the parquet conversion kept its features)."""
