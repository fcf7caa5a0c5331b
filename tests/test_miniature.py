"""The miniature world's languages: switches, lexicons and linearisation (trainables.miniature)."""

from __future__ import annotations

import random
import unicodedata

import pytest

from trainables.miniature.languages import (
    ENGLISH,
    LANGUAGES,
    SWITCHES,
    Event,
    Language,
    concepts,
    lexicon,
    linearise,
    random_event,
)

EVENT = Event("farmer", "sees", "cat", "river", ("old",), (), ("quiet",), "near")


@pytest.mark.parametrize("switches, expected", [
    ((0, 0, 0, 0), "old farmer sees cat near quiet river"),
    ((1, 0, 0, 0), "farmer old sees cat near river quiet"),     # noun adjective
    ((0, 1, 0, 0), "old farmer sees cat quiet river near"),     # postposition
    ((0, 0, 1, 0), "old farmer near quiet river cat sees"),     # object verb: PP O V
    ((0, 0, 0, 1), "sees cat near quiet river old farmer"),     # VP subject
    ((1, 1, 1, 1), "river quiet near cat sees farmer old"),
])
def test_each_switch_reorders_one_constituent(switches, expected):
    lang = Language("t", switches)
    assert " ".join(linearise(EVENT, lang, lexicon(ENGLISH))) == expected
    assert lang.distance == sum(switches)


def test_lexicons_are_disjoint_and_written_in_their_scripts():
    words = {}
    for lang in LANGUAGES:
        lex = lexicon(lang)
        assert len(set(lex.words.values())) == len(concepts())  # one word per concept
        if lang is not ENGLISH:
            script = {"Latin": "LATIN", "Cyrillic": "CYRILLIC", "Greek": "GREEK"}[lang.script]
            assert all(unicodedata.name(ch).startswith(script) for w in lex.words.values() for ch in w)
        for w in lex.words.values():
            assert w not in words, f"{w} is in {words.get(w)} and {lang.code}"
            words[w] = lang.code
    assert lexicon(LANGUAGES[3]) == lexicon(LANGUAGES[3])  # deterministic


def test_the_languages_span_distances_zero_to_four():
    assert len(SWITCHES) == 4 and ENGLISH.switches == (0, 0, 0, 0)
    targets = [lg for lg in LANGUAGES if lg is not ENGLISH]
    assert len(targets) >= 6 and {lg.distance for lg in targets} == {0, 1, 2, 3, 4}
    assert len({lg.code for lg in LANGUAGES}) == len(LANGUAGES)


def test_random_events_vary_positions_and_keep_participants_distinct():
    rng = random.Random(0)
    events = [random_event(rng) for _ in range(200)]
    assert all(e.agent != e.patient for e in events)
    lengths = {len(linearise(e, ENGLISH, lexicon(ENGLISH))) for e in events}
    assert len(lengths) >= 5  # optional adjectives and place phrases: no fixed template
    assert any(e.place is None for e in events) and any(e.place for e in events)


def test_the_report_takes_the_switch_vectors_as_its_typology():
    from orchestrator.report.analysis import typology_for
    from orchestrator.report.typology import source_for, typology_table

    codes = [lg.code for lg in LANGUAGES]
    typo = typology_for(codes)
    assert typo.attrs["source"] == "switches" and typo.attrs["primary"] == "switches"
    for lg in LANGUAGES:
        assert typo.loc[lg.code, "dist_switches"] == lg.distance
        assert tuple(typo.loc[lg.code, [f"switch_{k}" for k in SWITCHES]]) == lg.switches
    near, far = typo.loc["xa", "tertile"], typo.loc["xg", "tertile"]
    assert (near, far) == ("near", "far")
    assert source_for(["en", "de", "sw"]) == "lang2vec" and source_for(["en"]) == "lang2vec"
    with pytest.raises(KeyError, match="no typology source knows all of"):
        typology_table(["de", "xa"])


def test_the_builtin_encoder_is_pretrained_on_every_language_with_one_token_per_word(tmp_path):
    """``builtin:mini-bert`` through the same ``from_pretrained(path)`` as a real checkpoint; a
    short pretraining here (the real one runs ``pretrain.STEPS`` steps)."""
    import json

    from transformers import AutoModel, AutoTokenizer

    from trainables.known_models import BUILTIN_MODELS
    from trainables.miniature.pretrain import build_mini_bert

    out = tmp_path / "mini-bert"
    record = build_mini_bert(out, tmp_path / "data", BUILTIN_MODELS["builtin:mini-bert"], steps=120)
    assert json.loads((out / "pretraining.json").read_text()) == record
    assert record["steps"] == 120 and record["sentences"] == 8 * 3000
    assert record["loss_last_50"] < record["loss_first_50"]  # it learns
    tok = AutoTokenizer.from_pretrained(out)
    for lang in LANGUAGES:
        words = list(lexicon(lang).words.values())
        ids = tok(words, add_special_tokens=False)["input_ids"]
        assert all(len(i) == 1 and i[0] != tok.unk_token_id for i in ids), lang.code
    model = AutoModel.from_pretrained(out)
    assert model.config.num_hidden_layers == 4 and model.pooler is not None


def test_rs_da_miniature_table_substitutes_within_a_word_class_and_keeps_the_roles(tmp_path):
    from trainables.miniature.data import role_sentences
    from trainables.miniature.languages import ADJECTIVES, NOUNS, PLACES, synonym_table
    from trainables.robust.augmentation import SynonymAugmenter, load_table

    table = load_table("miniature")
    assert table == synonym_table() and table["judge"] == [n for n in NOUNS["legal"] if n != "judge"]
    assert "farmer" not in table["judge"] and set(table["old"]) == set(ADJECTIVES) - {"old"}
    sentences = role_sentences(ENGLISH, 200, "augment-test")
    aug = SynonymAugmenter(table, 1.0, random.Random(0))
    for s in sentences:
        words = [w for w, _ in s]
        new = aug.text(" ".join(words)).split(" ")
        assert len(new) == len(words)
        for old, w in zip(words, new):  # a place stays a place, an adjective an adjective
            assert w == old or w in table[old]
            assert (w in PLACES) == (old in PLACES) and (w in ADJECTIVES) == (old in ADJECTIVES)
    # every token is in the table (k neighbours each): p = 1 changes a token with prob. k/(k+1)
    assert 0.8 < aug.rate < 0.95
