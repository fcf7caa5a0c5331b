"""Mewsli-X query and candidate strings against XTREME-R's own ``utils_mewslix.py``.

``tests/golden/mewslix/`` holds synthetic files in the released layout and schema, and
``expected.json``: what the benchmark's ``preprocess_mention`` / ``preprocess_entity_description``
give on them, plus the bad rows its loader or its asserts reject (``make.py`` there says how it was
run). ``trainables.tasks.mewslix`` must give exactly the same strings and refuse the same rows with
a ``DataError`` that names the file and line. No model, no Ray.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from trainables.data import DataError
from trainables.tasks import mewslix
from trainables.tasks.mewslix import (
    MAX_LENGTH,
    description_text,
    mention_text,
    read_entities,
    read_mentions,
    read_wikipedia_pairs,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "mewslix"
ENTITIES = GOLDEN / "candidate_set_entities.jsonl"
MENTIONS = GOLDEN / "wikinews_mentions-test.jsonl"
PAIRS = GOLDEN / "wikipedia_pairs-train.jsonl"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text(encoding="utf-8"))
LANGS = list(dict.fromkeys(lang for _, lang, _, _ in EXPECTED["mentions"]))
KNOWN = {qid for qid, _ in EXPECTED["entities"]}


def _rows(path: Path) -> list[dict]:
    # split on "\n" only, as file iteration does: the rows hold a raw U+2028 (ensure_ascii=False)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").rstrip("\n").split("\n")]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------- the benchmark's strings


def test_every_entity_description():
    assert read_entities(ENTITIES) == [tuple(e) for e in EXPECTED["entities"]]


@pytest.mark.parametrize("lang", LANGS)
def test_every_mention_query_of_each_language(lang):
    queries, gold = read_mentions(MENTIONS, KNOWN, lang)
    expected = [m for m in EXPECTED["mentions"] if m[1] == lang]
    assert queries == [(example_id, text) for example_id, _, _, text in expected]
    assert gold == {example_id: {qid} for example_id, _, qid, _ in expected}


def test_the_languages_cover_every_mention_in_file_order():
    read = [q for lang in LANGS for q in read_mentions(MENTIONS, KNOWN, lang)[0]]
    assert sorted(read) == sorted((m[0], m[3]) for m in EXPECTED["mentions"])
    assert len(LANGS) >= 5 and len(EXPECTED["mentions"]) == sum(len(r["mentions"]) for r in _rows(MENTIONS))


def test_every_training_pair():
    assert read_wikipedia_pairs(PAIRS) == [tuple(p) for p in EXPECTED["pairs"]]


def test_the_string_functions_on_single_rows():
    article = _rows(MENTIONS)[1]
    texts = [mention_text(article["context"], m, "here") for m in article["mentions"]]
    assert texts == [m[3] for m in EXPECTED["mentions"] if m[0].startswith("N1002-")]
    entity = _rows(ENTITIES)[4]
    assert description_text(entity, "here") == EXPECTED["entities"][4][1]


def test_the_inputs_are_what_make_py_builds():
    spec = importlib.util.spec_from_file_location("mewslix_golden_make", GOLDEN / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    entities = make.entity_rows()
    assert _rows(ENTITIES) == entities
    assert _rows(MENTIONS) == make.article_rows()
    assert _rows(PAIRS) == make.pair_rows(entities)
    assert {name: case["row"] for name, case in EXPECTED["rejected"].items()} == make.rejected_rows(
        make.pair_rows(entities)[0])


def test_max_length_and_pooling_are_the_scripts():
    assert MAX_LENGTH == EXPECTED["about"]["max_seq_len"] == 64
    assert EXPECTED["about"]["eval_pool_type"] == ["cls"]
    assert "pool_type" in mewslix.__doc__ and "MAX_SEQ_LEN=64" in mewslix.__doc__


# ---------------------------------------------------------- rows the benchmark refuses


REASONS = {
    "crossing_mention": "crosses a sentence boundary",
    "no_sentence_spans": "no sentence spans",
    "sentence_span_past_end": "runs past the end",
    "mention_text_mismatch": "is not the context text",
    "missing_mention_span": "has no 'mention_span'",
    "missing_entity_sentence_spans": "has no 'sentence_spans'",
    "empty_entity_span": "negative or empty",
}


def test_every_rejected_case_has_a_reason():
    assert set(REASONS) == set(EXPECTED["rejected"])


@pytest.mark.parametrize("case", sorted(EXPECTED["rejected"]))
def test_a_pair_the_benchmark_refuses_is_a_data_error_at_its_line(tmp_path, case):
    good = _rows(PAIRS)[0]
    path = _write(tmp_path / "wikipedia_pairs-train.jsonl", [good, EXPECTED["rejected"][case]["row"]])
    with pytest.raises(DataError, match=REASONS[case]) as raised:
        read_wikipedia_pairs(path)
    assert f"{path}:2: " in str(raised.value)


def test_a_crossing_test_mention_names_file_line_and_mention(tmp_path):
    rows = _rows(MENTIONS)
    context, mention = rows[0]["context"], rows[0]["mentions"][1]
    end = context["sentence_spans"][2]["start"] + 3  # from "Annan" in sentence 1 into sentence 2
    mention["mention_span"] = {"start": mention["mention_span"]["start"], "end": end,
                               "text": context["text"][mention["mention_span"]["start"]:end]}
    path = _write(tmp_path / "wikinews_mentions-test.jsonl", rows)
    with pytest.raises(DataError, match=r"mention 'N1001-en-1' \[\d+, \d+\) crosses a sentence boundary") as raised:
        read_mentions(path, KNOWN, "en")
    assert str(raised.value).startswith(f"{path}:1: ")
    read_mentions(path, KNOWN, "de")  # other languages' articles are not read


@pytest.mark.parametrize("field", ["text", "sentence_spans", "language"])
def test_a_context_missing_a_field_names_file_and_line(tmp_path, field):
    rows = _rows(MENTIONS)
    del rows[2]["context"][field]
    path = _write(tmp_path / "wikinews_mentions-test.jsonl", rows)
    with pytest.raises(DataError, match=f"has no '{field}'") as raised:
        read_mentions(path, KNOWN, "ja")
    assert str(raised.value).startswith(f"{path}:3: ")


@pytest.mark.parametrize("field", ["entity_id", "description", "sentence_spans"])
def test_an_entity_missing_a_field_names_file_and_line(tmp_path, field):
    rows = _rows(ENTITIES)
    del rows[1][field]
    path = _write(tmp_path / "candidate_set_entities.jsonl", rows)
    with pytest.raises(DataError, match=field) as raised:
        read_entities(path)
    assert str(raised.value).startswith(f"{path}:2: ")


def test_the_other_checks_of_the_readers(tmp_path):
    rows = _rows(MENTIONS)
    unknown = copy.deepcopy(rows)
    unknown[0]["mentions"][0]["entity_id"] = "Q999"
    with pytest.raises(DataError, match=r":1: entity 'Q999' is not among the candidates"):
        read_mentions(_write(tmp_path / "a.jsonl", unknown), KNOWN, "en")
    repeated = copy.deepcopy(rows)
    repeated[0]["mentions"][1]["example_id"] = repeated[0]["mentions"][0]["example_id"]
    with pytest.raises(DataError, match=r":1: example id 'N1001-en-0' repeats \(first on line 1\)"):
        read_mentions(_write(tmp_path / "b.jsonl", repeated), KNOWN, "en")
    no_id = copy.deepcopy(rows)
    del no_id[5]["mentions"][0]["example_id"]
    with pytest.raises(DataError, match=r":6: mentions\[0\]: a mention needs 'example_id'"):
        read_mentions(_write(tmp_path / "c.jsonl", no_id), KNOWN, "es")
    with pytest.raises(DataError, match="no mentions in language 'fr'"):
        read_mentions(MENTIONS, KNOWN, "fr")
    (tmp_path / "bad.jsonl").write_text('{"context": {}}\n{not json\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:1: an article has no 'mentions'"):
        read_mentions(tmp_path / "bad.jsonl", KNOWN, "en")
    (tmp_path / "syntax.jsonl").write_text(json.dumps(_rows(ENTITIES)[0]) + '\n{"entity_id": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"syntax.jsonl:2: not valid JSON"):
        read_entities(tmp_path / "syntax.jsonl")
    with pytest.raises(DataError, match=r"bad.jsonl:1: expected contextual_mention"):
        read_wikipedia_pairs(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    for reader in (read_entities, read_wikipedia_pairs):
        with pytest.raises(DataError, match="empty.jsonl: no "):
            reader(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="file not found"):
        read_entities(tmp_path / "missing.jsonl")


# ------------------------------------------- the family's model inputs, as the scripts build them
# ids-<tokenizer>.json (make_ids.py): the token ids of every query and candidate as XTREME-R's
# Mewsli-X code encodes them for mBERT (cased) and XLM-R (train_mewslix.sh / run_eval_mewslix.sh:
# --do_lower_case), with the fixture tokenizers standing in for the two models.

TOKENIZERS = ROOT / "tests" / "fixtures" / "tokenizers"


@pytest.mark.parametrize("kind,folder", [("wordpiece", "wordpiece-cased"), ("sentencepiece", "sentencepiece-xlmr")])
def test_the_retrieval_family_encodes_mewslix_as_the_benchmark(kind, folder):
    from transformers import AutoTokenizer

    from trainables.tasks import family, target_task
    from trainables.tasks.base import Encoding, roberta_format
    from trainables.tasks.retrieval import read_mewslix_pairs, read_mewslix_test

    golden = json.loads((GOLDEN / f"ids-{kind}.json").read_text(encoding="utf-8"))
    assert golden["about"]["do_lower_case"] == (kind == "sentencepiece")  # the scripts' choice by model
    tok = AutoTokenizer.from_pretrained(str(TOKENIZERS / folder))
    assert roberta_format(tok) == golden["about"]["do_lower_case"]
    fam, task = family("retrieval"), target_task("mewslix")
    enc = Encoding(task.protocol["max_length"], 128, task.protocol["max_query_length"])
    assert enc.max_length == enc.max_query_length == golden["about"]["max_seq_len"]

    # training pairs: the benchmark's own conversion where it runs (mBERT); for XLM-R it raises
    # under its transformers, and its evaluation's encoding of the same texts is the reference
    train = fam.encode(tok, read_mewslix_pairs(PAIRS), enc, train=True)
    expected_train = golden["train"] or [list(p) for p in zip(golden["test"]["pair_queries"],
                                                               golden["test"]["pair_candidates"])]
    assert golden["train"] is not None or golden["train_raises"].startswith("KeyError")
    assert [[f["query"]["input_ids"], f["positive"]["input_ids"]] for f in train] == expected_train

    # test: every language's mentions against every candidate entity
    query_ids = dict(zip([m[0] for m in EXPECTED["mentions"]], golden["test"]["queries"]))
    for lang in LANGS:
        rs = read_mewslix_test(MENTIONS, lang)
        feats = fam.encode(tok, rs, enc, train=False)
        queries = {rs.queries[f["example"]][0]: f["input_ids"] for f in feats if f["side"] == 0}
        candidates = [f["input_ids"] for f in feats if f["side"] == 1]
        assert queries == {qid: query_ids[qid] for qid, _ in rs.queries}
        assert candidates == golden["test"]["candidates"]
    # the lower-casing is what tells the formats apart on these texts (upper-case letters in most)
    cased = tok([p.query for p in read_mewslix_pairs(PAIRS)], truncation=True, max_length=enc.max_query_length)
    assert (cased["input_ids"] == [q for q, _ in expected_train]) == (kind == "wordpiece")
