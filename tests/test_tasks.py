"""Every task family against real fixture data: loaders, encoding, decoding and scoring.

Decoding is checked with *oracle* outputs built from the gold annotations (the right class,
the right tag on each first sub-token, a logit peak on the gold span, one embedding per
gold pair): whatever the tokenizer does, decode+score must then give a perfect score, and a
deliberately wrong output must not.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from trainables.data import DataError
from trainables.models import load_tokenizer
from trainables.tasks import ALL_TASKS, ISO3, TASKS, family, target_task
from trainables.tasks.base import ArrowFeatures, Encoding, cached_features
from trainables.tasks.multiple_choice import read_copa_jsonl
from trainables.tasks.qa import read_squad_json
from trainables.tasks.retrieval import read_tatoeba
from trainables.tasks.tagging import IGNORE, read_conllu, read_panx

ENC = Encoding(max_length=64, doc_stride=16, max_query_length=16)


def test_registry_has_the_eleven_targets_with_official_language_counts():
    sizes = {k: len(t.languages) for k, t in TASKS.items() if t.benchmark != "miniature"}
    assert sizes == {"xnli": 15, "pawsx": 7, "xcopa": 11, "udpos": 38, "panx": 48, "xquad": 12,
                     "mlqa": 7, "tydiqa": 9, "tatoeba": 41, "lareqa": 11, "mewslix": 11}
    assert [k for k, t in TASKS.items() if t.benchmark == "miniature"] == ["roles"]  # the built-in miniature world
    assert {t.family for t in TASKS.values()} == {"classification", "multiple_choice", "tagging", "qa",
                                                  "retrieval"}
    assert set(target_task("tatoeba").languages) == set(ISO3)
    assert target_task("tatoeba").trainer.key == "squad" and target_task("xcopa").recipe == ("siqa",)


def _every_split(task):
    return [(s, lang) for s in task.mirror for lang in (task.languages if s == "test" else ("en",))]


@pytest.mark.parametrize("key", sorted(ALL_TASKS))
def test_every_task_loads_from_the_mirror(key, mirror_dir):
    task = ALL_TASKS[key]
    fam = family(task.family)
    present = [(s, lg) for s, lg in _every_split(task) if _exists(task, mirror_dir, s, lg)]
    assert present, f"the test mirror has no file for {key}"
    for split, lang in present:
        assert len(fam.load(task, split, lang, str(mirror_dir))) > 0


def _exists(task, root, split, lang):
    try:
        return all(p.is_file() for p in task.mirror_paths(str(root), split, lang))
    except DataError:
        return False


def test_conllu_fuses_multiword_tokens_and_skips_empty_nodes(tmp_path):
    en = read_conllu(mirror_fixture("udpos/en-test.conllu"), target_task("udpos").labels)
    assert len(en) == 40
    p = tmp_path / "x.conllu"
    p.write_text("# text = I'm here\n1-2\tI'm\t_\t_\t_\t_\t_\t_\t_\t_\n1\tI\tI\tPRON\t_\t_\t0\t_\t_\t_\n"
                 "2\t'm\tbe\tAUX\t_\t_\t0\t_\t_\t_\n2.1\there\there\tADV\t_\t_\t_\t_\t_\t_\n"
                 "3\there\there\tADV\t_\t_\t0\t_\t_\t_\n\n")
    (ex,) = read_conllu(p, target_task("udpos").labels)
    labels = target_task("udpos").labels
    assert ex.tokens == ("I'm", "here")  # the surface token, as XTREME-R's conversion writes it
    assert [labels[t] for t in ex.tags] == ["PRON", "ADV"]  # tie at the root: PRON precedes AUX
    p.write_text("1\tI\tI\tPRONOUN\t_\t_\t0\t_\t_\t_\n")
    with pytest.raises(DataError, match=r"x.conllu:1: tag 'PRONOUN' is not one of NOUN, ADJ"):
        read_conllu(p, target_task("udpos").labels)


def mirror_fixture(rel):
    from conftest import FIXTURES

    return FIXTURES / rel


def test_format_errors_name_file_and_line(tmp_path):
    p = tmp_path / "test"
    p.write_text("en:Obama\tB-PER\nen:visited\tO\tX\n")
    with pytest.raises(DataError, match=r"test:2: expected 'lang:token<TAB>TAG'"):
        read_panx(p, target_task("panx").labels)
    p.write_text("en:Obama\tB-PRESIDENT\n")
    with pytest.raises(DataError, match=r"test:1: tag 'B-PRESIDENT'"):
        read_panx(p, target_task("panx").labels)
    c = tmp_path / "test.it.jsonl"
    c.write_text('{"premise": "a", "choice1": "b", "choice2": "c", "question": "effect", "label": 0}\n'
                 '{"premise": "a", "choice1": "b", "choice2": "c", "question": "why", "label": 0}\n')
    with pytest.raises(DataError, match=r"test.it.jsonl:2: question 'why'"):
        read_copa_jsonl(c)
    t = tmp_path / "tatoeba.deu-eng.deu"
    t.write_text("a\nb\n")
    (tmp_path / "tatoeba.deu-eng.eng").write_text("a\n")
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.eng: 1 lines, but tatoeba.deu-eng.deu has 2"):
        read_tatoeba(t)
    s = tmp_path / "squad.json"
    s.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [
        {"id": "q", "question": "?", "answers": [{"text": "zz", "answer_start": 1}]}]}]}]}))
    with pytest.raises(DataError, match=r"squad.json: data\[0\].paragraphs\[0\].qas\[0\] \(id q\): answer 'zz'"):
        read_squad_json(s)
    s.write_text('{"data": [\n  {"title": }\n]}')
    with pytest.raises(DataError, match=r"squad.json:2: not valid JSON"):
        read_squad_json(s)
    with pytest.raises(DataError, match="file not found"):
        family("qa").load(target_task("xquad"), "test", "de", str(tmp_path))


def _oracle_and_score(key, mirror_dir, tok, lang):
    task = target_task(key)
    fam = family(task.family)
    examples = fam.load(task, "test", lang, str(mirror_dir))
    feats = fam.encode(tok, examples, ENC, train=False)
    raw = [_oracle(task, fam, examples, f) for f in feats]
    preds = fam.decode(task, examples, feats, raw)
    return fam, task, examples, feats, preds, fam.score(task, lang, examples, preds)


def _oracle(task, fam, examples, f):
    e = examples[f["example"]] if not hasattr(examples, "queries") else None
    if fam.name == "classification":
        return e.label
    if fam.name == "multiple_choice":
        return e.label
    if fam.name == "tagging":
        out = [0] * len(f["input_ids"])
        for w, pos in enumerate(f["first"]):
            if pos >= 0:
                out[pos] = e.tags[f["word_start"] + w]
        return out
    if fam.name == "qa":
        start, end = [0.0] * len(f["input_ids"]), [0.0] * len(f["input_ids"])
        text, s = e.answers[0]
        offs = f["offsets"]
        toks = [k for k, o in enumerate(offs) if o[0] >= 0 and o[0] < s + len(text) and o[1] > s]
        unknown = any(f["pieces"][k] in ("[UNK]", "<unk>") for k in toks)  # the benchmark's decoding
        # then answers the span's whole words (get_final_text cannot align an unknown token)
        # and only in the window where the answer's start has its most context (the decoding rule)
        if toks and not unknown and f["max_context"][toks[0]] and offs[toks[0]][0] == s and \
                offs[toks[-1]][1] == s + len(text):
            start[toks[0]], end[toks[-1]] = 10.0, 10.0
        return start, end
    # retrieval: a basis vector per relevant candidate; a query is the sum of its relevant ones
    relevant = sorted({c for g in examples.gold.values() for c in g})
    slot = {c: i for i, c in enumerate(relevant)}
    vec = [0.0] * (len(relevant) + 1)
    qid_or_cid = (examples.queries if f["side"] == 0 else examples.candidates)[f["example"]][0]
    for c in (examples.gold[qid_or_cid] if f["side"] == 0 else [qid_or_cid]):
        vec[slot.get(c, len(relevant))] = 1.0
    return vec


@pytest.mark.parametrize("key,lang", [("xnli", "de"), ("pawsx", "de"), ("xcopa", "it"), ("udpos", "yo"),
                                      ("udpos", "en"), ("panx", "sw"), ("xquad", "de"), ("mlqa", "zh"),
                                      ("tydiqa", "ru"), ("tatoeba", "de"), ("mewslix", "ja")])
def test_oracle_outputs_decode_to_a_perfect_score(key, lang, mirror_dir, demo_dir, tiny_model, tmp_path):
    tok = load_tokenizer(tiny_model)
    root = demo_dir if key == "xnli" else mirror_dir
    fam, task, examples, feats, preds, score = _oracle_and_score(key, root, tok, lang)
    main = {"classification": "accuracy", "multiple_choice": "accuracy", "tagging": "f1", "qa": "f1",
            "retrieval": "accuracy" if key == "tatoeba" else "map@20"}[fam.name]
    if fam.name == "qa":  # answers the tokenizer cannot isolate exactly are skipped by the oracle
        marked = {f["example"] for f in feats if max(_oracle(task, fam, examples, f)[0]) > 0}
        # the tiny model's 2,000-piece vocabulary lacks many Chinese and Cyrillic pieces: such answers
        # hold an unknown token, which the benchmark's decoding answers with whole words
        assert len(marked) > (0.8 if lang == "de" else 0.1) * len(examples)
        assert all(preds[examples[i].id] == examples[i].answers[0][0] for i in marked)
    else:
        assert score[main] == pytest.approx(100.0)
    fam.write(task, lang, examples, preds, tmp_path / "p", tmp_path / "l")
    from trainables.scoring.evaluator import BENCHMARKS

    bench = BENCHMARKS["xtreme-r" if key != "pawsx" else "xtreme"][key]
    reread = bench.metric(bench.reader(tmp_path / "l" / key / f"test-{lang}.{bench.suffix}"),
                          bench.reader(tmp_path / "p" / key / f"test-{lang}.{bench.suffix}"), lang)
    assert reread == pytest.approx(score)  # the written files re-score to the logged numbers


def test_lareqa_pools_every_language_and_scores_map(mirror_dir, tiny_model):
    tok = load_tokenizer(tiny_model)
    fam, task, examples, feats, preds, score = _oracle_and_score("lareqa", mirror_dir, tok, "de")
    assert len({c.split(":")[0] for c, _ in examples.candidates}) == 11
    assert all(len(g) == 11 for g in examples.gold.values())  # the answer in every language
    assert score["map@20"] == pytest.approx(100.0)  # all 11 relevant sentences ranked first


def test_long_inputs_are_windowed_not_truncated(mirror_dir, tiny_model):
    tok = load_tokenizer(tiny_model)
    task = target_task("udpos")
    examples = family("tagging").load(task, "test", "en", str(mirror_dir))
    feats = family("tagging").encode(tok, examples, Encoding(12, 128, 64), train=True)
    assert all(len(f["input_ids"]) <= 12 for f in feats) and len(feats) > len(examples)
    covered = sum(sum(1 for p in f["first"] if p >= 0) for f in feats)
    assert covered == sum(len(e.tokens) for e in examples)
    assert all(sum(1 for x in f["labels"] if x != IGNORE) == sum(1 for p in f["first"] if p >= 0)
               for f in feats)
    qa = family("qa").encode(tok, family("qa").load(target_task("xquad"), "test", "en", str(mirror_dir)),
                             Encoding(max_length=64, doc_stride=16, max_query_length=16), train=True)
    assert max(f["example"] for f in qa) + 1 < len(qa)  # several windows per question
    assert all(len(f["input_ids"]) <= 64 for f in qa)


def test_feature_cache_reuses_and_invalidates(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return [{"input_ids": [1, 2, 3], "offsets": [[-1, -1], [0, 2]], "example": 0}]

    key = {"task": "x", "source": [["f", 10, 1]]}
    first = cached_features(str(tmp_path), key, build)
    again = cached_features(str(tmp_path), key, build)
    assert list(first) == list(again) == build() and len(calls) == 2  # the build above is the 2nd call
    assert isinstance(again, ArrowFeatures) and again.lengths() == [3] and again[-1]["offsets"] == [[-1, -1], [0, 2]]
    calls.pop()
    cached_features(str(tmp_path), {**key, "source": [["f", 11, 2]]}, build)
    assert len(calls) == 2


def test_siqa_reads_both_releases(tmp_path):
    from trainables.tasks.multiple_choice import read_siqa

    row = {"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c"}
    v14 = tmp_path / "socialIQa_v1.4_trn.jsonl"
    v14.write_text(json.dumps({**row, "correct": "C"}) + "\n" + json.dumps({**row, "correct": "D"}) + "\n")
    with pytest.raises(DataError, match=r"socialIQa_v1.4_trn.jsonl:2: label 'D' is not one of 1, 2, 3"):
        read_siqa(v14)
    board = tmp_path / "train.jsonl"
    board.write_text(json.dumps(row) + "\n")
    (tmp_path / "train-labels.lst").write_text("2\n")
    assert read_siqa(board)[0].label == 1


def test_generalized_pairs_combine_parallel_test_sets(demo_dir, tiny_model, tmp_path):
    import shutil

    from configs import finetune

    from trainables.stage_data import StageData

    space = {"target": {"task": "xnli", "languages": ["en", "de", "zh"], "generalized": True},
             "training": {"max_length": 64, "max_examples": 50}}
    cfg = finetune(tiny_model, demo_dir, tmp_path / "s", space, seed=0)
    data = StageData(cfg, load_tokenizer(tiny_model))
    assert sorted(s.lang for s in data.pairs) == ["de-en", "de-zh", "en-de", "en-zh", "zh-de", "zh-en"]
    en, zh = (next(s for s in data.final if s.lang == lg) for lg in ("en", "zh"))
    pair = next(s for s in data.pairs if s.lang == "en-zh")
    assert all(p.premise == a.premise and p.hypothesis == b.hypothesis and p.label == a.label == b.label
               for p, a, b in zip(pair.examples, en.examples, zh.examples))
    broken = tmp_path / "demo"
    shutil.copytree(demo_dir, broken)
    lines = (broken / "xnli" / "test-zh.tsv").read_text(encoding="utf-8").splitlines()
    (broken / "xnli" / "test-zh.tsv").write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="test sets of en and zh are not parallel"):
        StageData(replace(cfg, data_dir=str(broken)), load_tokenizer(tiny_model))


def test_qa_span_logits_are_fp32_under_bf16_autocast():
    from transformers import BertConfig

    from trainables.tasks.qa import SpanHead

    torch.manual_seed(0)
    head, hidden = SpanHead(BertConfig(hidden_size=16)), torch.randn(2, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(hidden.bfloat16(), torch.ones(2, 5))
        assert head.linear(hidden).dtype == torch.bfloat16  # what autocast would give without the guard
    assert logits.dtype == torch.float32
    assert torch.allclose(logits, head.linear(hidden.bfloat16().float()), atol=1e-6)


def test_tatoeba_pools_run_tatoeba_sh_layer_and_the_trained_retrievers_their_last():
    from trainables.evaluation import retrieval_layer

    assert [retrieval_layer("tatoeba", None, n) for n in (12, 24, 2)] == [8, 14, None]
    assert retrieval_layer("tatoeba", 3, 12) == 3
    assert retrieval_layer("lareqa", None, 12) is None and retrieval_layer("mewslix", None, 24) is None


def test_a_retrieval_stage_hands_its_negative_pool_to_every_batch(mirror_dir, tiny_model, tmp_path):
    """training.negatives_pool (Mewsli-X's default 64, here 4) travels from the space file to the
    batches the loss reads; a retrieval target without it trains on one pool per batch."""
    from configs import finetune

    from trainables.batching import collate
    from trainables.stage_data import StageData

    space = {"target": {"task": "mewslix", "languages": ["en"]},
             "training": {"batch_size": 8, "negatives_pool": 4, "max_examples": 16}}
    cfg = finetune(tiny_model, mirror_dir, tmp_path / "s", space, seed=0)
    assert cfg.training.negatives_pool == 4
    (part,) = StageData(cfg, load_tokenizer(tiny_model)).parts
    batch = collate(part, list(range(8)), 0)
    assert int(batch["negatives_pool"]) == 4 and int(batch["pairs"]) == 8
    space["training"]["negatives_pool"] = None
    (part,) = StageData(finetune(tiny_model, mirror_dir, tmp_path / "s", space, seed=0),
                        load_tokenizer(tiny_model)).parts
    assert "negatives_pool" not in collate(part, list(range(8)), 0)
