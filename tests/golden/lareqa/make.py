"""Write ``sentence_breaks.json`` and ``pairs.json`` with XTREME-R's own LAReQA preprocessing.

    /tmp/xv/bin/python tests/golden/lareqa/make.py /tmp/xtreme

The argument is an export of google-research/xtreme. From its ``third_party/processors``,
``sb_sed.py`` (``infer_sentence_breaks``) and ``lareqa.py`` (``RetrievalSquadProcessor``) are
imported as they are (``sys.path`` at ``third_party``, ``from processors import lareqa,
sb_sed``); ``lareqa.py`` imports transformers 2.x names (``transformers.tokenization_bert``,
``transformers.file_utils``), so this runs in the throwaway transformers 2.5.1 venv of
``tests/golden/qa/README.md``, not in the project's venv. Nothing is stubbed or wrapped: the
script calls ``infer_sentence_breaks`` and ``RetrievalSquadProcessor()._create_examples`` and
writes down what they return.

- ``sentence_breaks.json``: ``rules``, the benchmark's (pattern, replacement) list as
  ``_sed_do_sentence_breaks`` applies it, read from its source with ``ast`` (the replacement's
  ``\\N`` written ``\\g<N>``); ``fixtures``: for each ``tests/fixtures/xquad/xquad.<lang>.json``,
  the break list of every paragraph context, in file order; ``synthetic``: ``SYNTHETIC`` below
  (texts that make every rule group fire, and edge cases) with their breaks and sentences.
- ``pairs.json``: ``_create_examples`` on the English fixture and on ``SYNTHETIC_SQUAD`` (small
  SQuAD paragraphs for the two skip rules): for every question in file order, ``[id, sentence]``,
  the sentence being ``sentence_text`` of the example it made, or ``null`` where it made none.

Running it twice gives byte-identical files. This script is ours; the values are the benchmark's.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
XQUAD = ROOT / "tests" / "fixtures" / "xquad"

SYNTHETIC = {
    # split
    "sentence_end": 'He left. "Why?" she asked! (See below.) 1990 was a year. \u201cNo.\u201d \u201cYes.\u201d '
                    "[Then] more. It ended.",
    "footnote_marks": "It was built in 1900.[1] The tower fell.[citation needed][n 8] Later it rose.\"[c] (Then) "
                      "more.[note 1]  Again.",
    "bracket_ellipsis": 'He said "we need such things [...] But not now [...] [And] more." Then left.',
    # abbreviations
    "titles": "Dr. Smith met Mrs. Jones and Mr. Brown. Prof. Adams and Fr. Paul came. St. Louis and Sta. Maria "
              "are far. Rev. King spoke to Msgr. Ryan and Ms. Lee.",
    "ranks": "Gen. Lee and Lt. Dan met Col. Sanders, Maj. Payne, Adm. Nelson, Capt. Cook and Sgt. Pepper. "
             "Rep. Smith, Gov. Brown, Sen. Obama and Pres. Lincoln agreed.",
    "literary": "Some cities, e.g. Paris, are old. Others, i.e. Lima, ie. Tokyo, are not. Smith vs. Jones and "
                "Roe v. Wade, pp. 5 and p. 7, cf. Smith, a.k.a. John, approx. 5 km, app. 3, esp. Rome, est. "
                "1990, tr. Jones.",
    "months": "It opened on Jan. 5, Aug. 6, Oct. 7, Nov. 8 and Dec. 9. Sept. 1 is not in the list.",
    "places": "They climbed Mt. Everest and drove to Ft. Worth.",
    "time_zone": "The show airs at 9 p.m. Eastern and 8 a.m. EST daily. It ends at 10 p.m. Then news.",
    # initials
    "initials": 'J. R. R. Tolkien wrote it. C. S. Lewis read it. J.R. Smith and F. Scott Fitzgerald agreed. '
                'G. "Gus" Grissom flew. A. B. C. D. are letters.',
    # starts
    "starts": "He lived in Washington, D.C. The city was calm. Born in the U.S. However, he left. He moved to "
              "the U.S. In 1990 he came back. He met J. K. This was new. It was Dr. As  usual, late. "
              "See Mr. According to him, no.",
    # references
    "references": "See Art. 5 and No. 3 and Op. 9 and Vol. II and ch. 4. He was b. 1900 and d. 1980, c. 1500, "
                  "fl. 1200, ca. 1800. Smith et al. (2005) and Jones et al. 2006 agree. The bill H.R. 2000 "
                  "passed. No. Nothing.",
    # squad joins
    "squad_joins": "She released I Am... Sasha Fierce in 2008. The I Am... World Tour followed. She signed with "
                   "Warner Bros. Records and Warner Bros. Entertainment. The U.S. 1990 census and the U.S. "
                   "(2000) count agree. It cost Rs. 500.",
    # squad splits
    "squad_splits": "She married Jay Z. He was famous. They moved to Washington, D.C. Many followed. He scored "
                    "for 4.) Then left. The Wii U. Nintendo made it. Buy it on the. iPod and the. iTunes store. "
                    "They said [...] Then ended. She got a B.Sc. Degree and an M.Sc. Later. A list \u2022 First "
                    "item \u2022 Second item.",
    # edge cases
    "empty": "",
    "whitespace_only": "   ",
    "newlines": "First line.\nSecond line.\n\nThird.\n",
    "leading_bullet": " \u2022 First item. Second.",
    "two_spaces_bullet": "  \u2022 First item",
    "other_whitespace": "It ended.\u00a0Then\tit began.\t\tAgain. 10\u00a0km away.\u202fNext. Last.\u3000Done.",
    "lowercase_after": "It is approx. the same. e.g. this one. Ends with space. ",
    "non_latin": "Это было в 1990 г. Потом всё. \u0627\u0644\u0646\u0635. \u0906\u0917\u0947\u0964 \u7ed3\u675f\u3002"
                 "Then 2.",
}
"""Synthetic contexts: one per rule group (named after it), then edge cases."""

_P1 = ("Dr. Smith was born in 1900. He moved to Washington, D.C. Many followed him. It was 10\u00a0km away, "
       "near the river.")
SYNTHETIC_SQUAD = [
    {"context": _P1, "qas": [
        ("syn-kept", "1900", _P1.index("1900")),
        ("syn-across-break", "1900. He moved", _P1.index("1900")),
        ("syn-start-in-gap", " He", _P1.index(" He")),
        ("syn-nbsp", "10\u00a0km", _P1.index("10")),
        ("syn-wrong-offset", "Smith", _P1.index("Washington")),
        ("syn-inside-word", "ashing", _P1.index("ashing")),
        ("syn-title", "Dr. Smith", 0),
        ("syn-first-of-two", [("Washington, D.C.", _P1.index("Washington")), ("1900", _P1.index("1900"))]),
    ]},
    {"context": "Le prix\u202fest 5\u202f\u20ac. Fin  du  texte.", "qas": [
        ("syn-narrow-nbsp", "5\u202f\u20ac", 13),
        ("syn-double-space", "Fin du", 17),
    ]},
    {"context": " \u2022 Alpha one. Beta two.", "qas": [
        ("syn-leading-space", " \u2022", 0),
        ("syn-bullet", "\u2022 Alpha", 1),
        ("syn-after-bullet", "Beta", 15),
    ]},
]
"""Small SQuAD paragraphs: (id, answer text, answer start), or (id, [(text, start), ...]) for several answers."""


def squad_json(paragraphs) -> list[dict]:
    """``SYNTHETIC_SQUAD`` as SQuAD v1.1 ``data``."""
    out = []
    for p in paragraphs:
        qas = []
        for qa in p["qas"]:
            answers = qa[1] if len(qa) == 2 else [qa[1:]]
            qas.append({"id": qa[0], "question": f"question {qa[0]}?",
                        "answers": [{"text": t, "answer_start": s} for t, s in answers]})
        out.append({"context": p["context"], "qas": qas})
    return [{"title": "synthetic", "paragraphs": out}]


def benchmark_rules(sb_sed_path: Path) -> list[list[str]]:
    """The (pattern, replacement) of every ``re.sub`` in ``_sed_do_sentence_breaks``, in order."""
    tree = ast.parse(sb_sed_path.read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_sed_do_sentence_breaks")
    rules = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "re.sub":
            pattern, repl = (eval(compile(ast.Expression(a), "sb_sed", "eval"), {}) for a in node.args[:2])
            rules.append((node.lineno, pattern, re.sub(r"\\(\d)", r"\\g<\1>", repl)))
    return [[p, r] for _, p, r in sorted(rules)]


XQUAD_R_LANGS = ("de", "en", "zh")
"""The fixture languages made into XQuAD-R files for ``candidates.json``."""


def xquad_r_doc(lang: str, breaks: dict) -> dict:
    """The XQuAD fixture of ``lang`` as an XQuAD-R file: each paragraph with the
    ``sentence_breaks`` the benchmark's breaker gives it (from ``sentence_breaks.json``)."""
    doc = json.loads((XQUAD / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in doc["data"] for p in a["paragraphs"]]
    for p, b in zip(paragraphs, breaks[f"xquad.{lang}.json"]):
        p["sentence_breaks"] = [list(x) for x in b]
    return doc


class RecordingTokenizer:
    """Takes the place of the tokenizer in ``retrieval_squad_convert_example_to_features`` only
    to write down the (text, max_length) it is asked to encode."""

    def __init__(self):
        self.calls = []

    def encode_plus(self, text, max_length=None, pad_to_max_length=False):
        self.calls.append([text, max_length])
        return {"input_ids": [0], "attention_mask": [1], "token_type_ids": [0]}


def lareqa_candidates(xtreme: Path, breaks: dict, lareqa, max_seq: int, max_query: int, max_answer: int) -> dict:
    """``utils_lareqa.load_data`` on XQuAD-R files of ``XQUAD_R_LANGS`` (sorted, as the pooled
    candidate order): every candidate as ``evaluate_retrieval.py`` writes it for encoding
    (``(candidate.sentence + candidate.context).replace("\\n", "")``, that script's expression,
    which its ``main`` does not expose as a function) and every question's relevant candidates
    (``by_xling_id``), as indices into the pooled list; and, for the English training fixture,
    what ``retrieval_squad_convert_example_to_features`` asks the tokenizer to encode (query
    and candidate text with their max lengths, ``train_lareqa.sh``'s 96 and 256)."""
    import utils_lareqa

    squad_per_lang = {lang: xquad_r_doc(lang, breaks) for lang in XQUAD_R_LANGS}
    questions, candidates = utils_lareqa.load_data(squad_per_lang)
    pooled = candidates.as_list()
    pos = {c.uid: i for i, c in enumerate(pooled)}
    texts = [(c.sentence + c.context).replace("\n", "") for c in pooled]
    relevant = {lang: [[q.xling_id, sorted(pos[c.uid] for c in candidates.by_xling_id[q.xling_id])]
                       for q in questions.by_lang[lang]] for lang in XQUAD_R_LANGS}
    english = json.loads((XQUAD / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    tok, features = RecordingTokenizer(), []
    for e in lareqa.RetrievalSquadProcessor()._create_examples(english, "train", "en"):
        tok.calls.clear()
        lareqa.retrieval_squad_convert_example_to_features(e, tok, max_seq, max_query, max_answer)
        features.append([e.qas_id, *tok.calls])
    return {"languages": list(XQUAD_R_LANGS), "candidates": texts, "relevant": relevant,
            "train_features": features}


def _one_line(obj) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(obj, list) and (all(isinstance(x, scalar) for x in obj) or all(
        isinstance(x, list) and all(isinstance(y, int) for y in x) for x in obj))


def dump(obj, indent: str = "") -> str:
    """JSON with every flat list (a pair, a rule, a paragraph's break list) on one line."""
    if _one_line(obj) or not isinstance(obj, (list, dict)) or not obj:
        return json.dumps(obj, ensure_ascii=False)
    inner = indent + " "
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + dump(v, inner) for v in obj) + "\n" + indent + "]"


def main(xtreme: Path) -> None:
    sys.path.insert(0, str(xtreme / "third_party"))
    import transformers
    from processors import lareqa, sb_sed

    sources = {f"third_party/processors/{name}": hashlib.sha256(
        (xtreme / "third_party" / "processors" / name).read_bytes()).hexdigest() for name in ("sb_sed.py", "lareqa.py")}
    about = {"made_by": "tests/golden/lareqa/make.py", "sha256": sources,
             "transformers_version": transformers.__version__}

    fixtures = {}
    for path in sorted(XQUAD.glob("xquad.*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        fixtures[path.name] = [list(sb_sed.infer_sentence_breaks(p["context"]))
                               for article in data for p in article["paragraphs"]]
    synthetic = {}
    for name, text in SYNTHETIC.items():
        breaks = list(sb_sed.infer_sentence_breaks(text))
        synthetic[name] = {"text": text, "breaks": breaks, "sentences": [text[s:e] for s, e in breaks]}
    breaks_doc = {"about": about, "rules": benchmark_rules(Path(sb_sed.__file__)), "fixtures": fixtures,
                  "synthetic": synthetic}

    processor = lareqa.RetrievalSquadProcessor()

    def pairs(data):
        made = {e.qas_id: e.sentence_text for e in processor._create_examples(data, "train", "en")}
        return [[qa["id"], made.get(qa["id"])] for a in data for p in a["paragraphs"] for qa in p["qas"]]

    english = json.loads((XQUAD / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    synthetic_data = squad_json(SYNTHETIC_SQUAD)
    pairs_doc = {"about": about, "fixture": "xquad.en.json", "pairs": pairs(english),
                 "synthetic_data": synthetic_data, "synthetic_pairs": pairs(synthetic_data)}

    candidates_doc = {"about": about, **lareqa_candidates(xtreme, fixtures, lareqa, 352, 96, 256)}

    (HERE / "sentence_breaks.json").write_text(dump(breaks_doc) + "\n", encoding="utf-8")
    (HERE / "candidates.json").write_text(dump(candidates_doc) + "\n", encoding="utf-8")  # then gzip -9 -n
    (HERE / "pairs.json").write_text(dump(pairs_doc) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
