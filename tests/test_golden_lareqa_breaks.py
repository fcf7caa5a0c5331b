"""LAReQA's SQuAD sentences and answer sentences against XTREME-R's own code.

``tests/golden/lareqa/`` holds what the benchmark's ``sb_sed.infer_sentence_breaks`` and
``RetrievalSquadProcessor._create_examples`` give on the XQuAD fixture and on synthetic texts
(``make.py`` there says how it was run); ``trainables.tasks.sentence_breaks`` must give exactly
the same. No model, no Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.tasks.qa import read_squad_json
from trainables.tasks.sentence_breaks import RULES, answer_sentence, mark_breaks, sentence_breaks

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "lareqa"
XQUAD = ROOT / "tests" / "fixtures" / "xquad"

BREAKS = json.loads((GOLDEN / "sentence_breaks.json").read_text(encoding="utf-8"))
PAIRS = json.loads((GOLDEN / "pairs.json").read_text(encoding="utf-8"))

NEVER_FIRES = {"for_four"}
"""Rules no text can trigger: the main split always breaks ``for 4.) X`` first and no join undoes it."""


def _listed(breaks):
    return [list(b) for b in breaks]


def test_the_rule_table_is_the_benchmarks_rule_list_in_its_order():
    ours = [[rule.pattern.pattern, rule.template] for group in RULES for rule in group.rules]
    assert ours == BREAKS["rules"]
    names = [rule.name for group in RULES for rule in group.rules]
    assert len(set(names)) == len(names)
    assert all(group.purpose and group.rules for group in RULES)


@pytest.mark.parametrize("name", sorted(BREAKS["fixtures"]))
def test_breaks_of_every_xquad_fixture_paragraph(name):
    data = json.loads((XQUAD / name).read_text(encoding="utf-8"))["data"]
    contexts = [p["context"] for article in data for p in article["paragraphs"]]
    assert len(contexts) == len(BREAKS["fixtures"][name])
    assert [_listed(sentence_breaks(c)) for c in contexts] == BREAKS["fixtures"][name]


@pytest.mark.parametrize("name", list(BREAKS["synthetic"]))
def test_breaks_of_synthetic_rule_cases(name):
    case = BREAKS["synthetic"][name]
    breaks = sentence_breaks(case["text"])
    assert _listed(breaks) == case["breaks"]
    assert [case["text"][s:e] for s, e in breaks] == case["sentences"]
    assert len(mark_breaks(case["text"])) == len(case["text"])


def _fired(text: str) -> set[str]:
    fired, marked = set(), text.replace("\n", " ")
    for group in RULES:
        for rule in group.rules:
            after = rule.apply(marked)
            if after != marked:
                fired.add(rule.name)
            marked = after
    return fired


def test_the_synthetic_cases_make_every_rule_fire():
    fired = set().union(*(_fired(case["text"]) for case in BREAKS["synthetic"].values()))
    names = {rule.name for group in RULES for rule in group.rules}
    assert fired == names - NEVER_FIRES
    for group in RULES:  # each group's own case makes that group fire
        if group.name in BREAKS["synthetic"]:
            assert _fired(BREAKS["synthetic"][group.name]["text"]) & {r.name for r in group.rules}


def test_a_whitespace_only_piece_takes_the_next_start_as_in_the_benchmark():
    # the bullet rule turns the leading space into a newline: an empty first piece, placed at 1, not 0
    assert sentence_breaks(" \u2022 First item. Second.") == [(1, 1), (1, 14), (15, 22)]
    assert sentence_breaks("  \u2022 First item") == [(2, 2), (2, 14)]
    assert sentence_breaks("   ") == [(3, 3)]
    assert sentence_breaks("") == [(0, 0)]


def _pairs(data):
    out = []
    for article in data:
        for p in article["paragraphs"]:
            breaks = sentence_breaks(p["context"])
            for qa in p["qas"]:
                answer = qa["answers"][0]
                out.append([qa["id"], answer_sentence(p["context"], breaks, answer["answer_start"], answer["text"])])
    return out


def test_answer_sentences_of_the_english_fixture():
    data = json.loads((XQUAD / PAIRS["fixture"]).read_text(encoding="utf-8"))["data"]
    assert _pairs(data) == PAIRS["pairs"]


def test_answer_sentences_from_read_squad_json_examples():
    """The path the LAReQA training pairs take: ``QAExample``s, first answer, breaks per context."""
    breaks = {}
    got = []
    for e in read_squad_json(XQUAD / PAIRS["fixture"]):
        text, start = e.answers[0]
        if e.context not in breaks:
            breaks[e.context] = sentence_breaks(e.context)
        got.append([e.id, answer_sentence(e.context, breaks[e.context], start, text)])
    assert got == PAIRS["pairs"]


def test_answer_sentences_and_skip_rules_on_synthetic_paragraphs():
    got = _pairs(PAIRS["synthetic_data"])
    assert got == PAIRS["synthetic_pairs"]
    skipped = {qid for qid, sentence in got if sentence is None}
    assert {"syn-start-in-gap", "syn-leading-space"} <= skipped  # answer start in no sentence
    assert {"syn-nbsp", "syn-wrong-offset"} <= skipped  # answer text not recoverable from the words
