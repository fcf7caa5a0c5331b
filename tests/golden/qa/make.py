"""Write the QA golden files of this folder with XTREME-R's own code (see README.md).

Runs in a throwaway Python with transformers 2.x (the benchmark pins a commit of spring 2020; 2.5.0 to 2.9.0 give
the same files), not in the project's venv:

    /tmp/xv/bin/python tests/golden/qa/make.py --xtreme /tmp/xtreme [--out tests/golden/qa]

``--xtreme`` is an export of google-research/xtreme. Its ``third_party/processors/squad.py`` is imported as it
is (``squad_convert_examples_to_features``, ``SquadV1Processor``, ``SquadResult``), and the decoding is
``transformers.data.metrics.squad_metrics.compute_predictions_logits``, called as ``third_party/run_squad.py``
calls it. Nothing here changes what they compute: this script only calls them and writes down what they return.
The few values it derives itself (a window's ``start``, each context's ``all_doc_tokens``, the layout of
``input_ids``) are asserted against the features the official code made.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
XQUAD = ROOT / "tests" / "fixtures" / "xquad"
TOKENIZERS = ROOT / "tests" / "fixtures" / "tokenizers"

LANGS = ["en", "de", "ar", "hi", "zh"]
# name: (max_seq_length, doc_stride, max_query_length)
SETTINGS = {"benchmark": (384, 128, 64), "small": (96, 32, 24)}
KEEP = {("benchmark", "wordpiece"): LANGS, ("benchmark", "sentencepiece"): ["en", "hi", "zh"],
        ("small", "wordpiece"): ["en"], ("small", "sentencepiece"): ["en"]}
"""Which (setting, tokenizer) pairs are written for which languages (the golden files stay small)."""
# run_squad.py's argparse defaults (predict_qa.sh passes none of these)
N_BEST_SIZE = 20
MAX_ANSWER_LENGTH = 30
DO_LOWER_CASE = False
VERSION_2_WITH_NEGATIVE = False
NULL_SCORE_DIFF_THRESHOLD = 0.0
VERBOSE_LOGGING = False
LOGIT_SEED = 0
LAYOUT = (
    "contexts[c]: doc_tokens (SquadExample.doc_tokens: the context split on whitespace), all_doc_tokens, "
    "all_doc_ids and tok_to_orig_index (tokenizer.tokenize(word) for each word, as squad.py builds them), "
    "zero_subtoken_words (indexes of words that give no sub-token). "
    "examples[i]: example_index (as the features number them), qas_id, context, question_text, n_features, "
    "query_ids (squad.py's truncated_query) and their tokens. "
    "features[k], in the official order: unique_id, example_index, qas_id, window (its rank among its "
    "example's features), start (= window * doc_stride: the window's first index into all_doc_tokens, "
    "squad.py's span start), paragraph_len, doc_offset (the sequence index of the window's first token), "
    "attention_length, token_is_max_context (one digit for each window token j: the official dict's value at "
    "key doc_offset+j). The rest is implied, and was asserted for every feature when the file was written: "
    "input_ids = [CLS] query_ids [SEP] all_doc_ids[start:start+paragraph_len] [SEP] (XLM-R: <s> query_ids "
    "</s> </s> ... </s>), then pad_token_id up to max_seq_length; tokens = their tokens; attention_mask = "
    "attention_length 1s then 0s; token_type_ids = 0 before doc_offset, 1 from doc_offset to attention_length-1, "
    "0 after (WordPiece), all 0 (XLM-R); token_to_orig_map = {doc_offset+j: tok_to_orig_index[start+j] for j < "
    "paragraph_len} and token_is_max_context has the same keys; cls_index = 0. "
    "Training files add start_position/end_position (sequence indexes; cls_index 0 when the answer is not "
    "inside the window) and, per example, answer_text and word_start_position/word_end_position."
)
LOGIT_DECIMALS = 4


def load_tokenizers():
    from transformers import BertTokenizer, XLMRobertaTokenizer

    # run_squad.py: tokenizer_class.from_pretrained(path, do_lower_case=args.do_lower_case), the flag left unset
    return {
        "wordpiece": BertTokenizer.from_pretrained(str(TOKENIZERS / "wordpiece-cased"), do_lower_case=DO_LOWER_CASE),
        "sentencepiece": XLMRobertaTokenizer.from_pretrained(str(TOKENIZERS / "sentencepiece-xlmr"),
                                                              do_lower_case=DO_LOWER_CASE),
    }


def read_examples(processor, lang: str, mode: str):
    path = str(XQUAD / f"xquad.{lang}.json")
    # run_squad.py: processor.get_dev_examples(args.data_dir, filename=args.predict_file, language=lang); its
    # os.path.join(data_dir, filename) keeps an absolute filename as it is
    if mode == "eval":
        return processor.get_dev_examples(None, filename=path, language=lang)
    return processor.get_train_examples(None, filename=path, language=lang)


def surviving_examples(examples, is_training: bool):
    """The examples that get features, in order: squad_convert_example_to_features drops a training example whose
    answer text is not found in its words (the same test as the official code's, repeated here to name them)."""
    from transformers.tokenization_bert import whitespace_tokenize

    kept = []
    for ex in examples:
        if is_training and not ex.is_impossible:
            actual = " ".join(ex.doc_tokens[ex.start_position: ex.end_position + 1])
            if actual.find(" ".join(whitespace_tokenize(ex.answer_text))) == -1:
                continue
        kept.append(ex)
    return kept


def doc_subtokens(tokenizer, doc_tokens):
    """all_doc_tokens and tok_to_orig_index as squad.py builds them: tokenizer.tokenize(word) for each word."""
    all_doc_tokens, tok_to_orig = [], []
    for i, word in enumerate(doc_tokens):
        for sub in tokenizer.tokenize(word):
            all_doc_tokens.append(sub)
            tok_to_orig.append(i)
    return all_doc_tokens, tok_to_orig


def compact_map(mapping: dict, what: str):
    """(first key, values) of a dict whose int keys are consecutive."""
    keys = sorted(mapping)
    assert keys == list(range(keys[0], keys[0] + len(keys))), what
    return keys[0], [mapping[k] for k in keys]


def convert(tokenizer, tok_name, examples, setting, is_training):
    from processors.squad import squad_convert_examples_to_features

    max_seq_length, doc_stride, max_query_length = SETTINGS[setting]
    features = squad_convert_examples_to_features(
        examples=examples, tokenizer=tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
        max_query_length=max_query_length, is_training=is_training, return_dataset=False, threads=1,
        lang2id=None,
    )
    kept = surviving_examples(examples, is_training)
    assert len({f.example_index for f in features}) == len(kept)

    contexts, context_of = [], {}
    example_rows, feature_rows = [], []
    by_example = collections.defaultdict(list)
    for f in features:
        by_example[f.example_index].append(f)
    pad_id = tokenizer.pad_token_id
    for ex_index, ex in enumerate(kept):
        key = tuple(ex.doc_tokens)
        if key not in context_of:
            all_doc_tokens, tok_to_orig = doc_subtokens(tokenizer, ex.doc_tokens)
            context_of[key] = len(contexts)
            contexts.append({"context": len(contexts), "doc_tokens": ex.doc_tokens,
                             "n_all_doc_tokens": len(all_doc_tokens), "all_doc_tokens": all_doc_tokens,
                             "all_doc_ids": tokenizer.convert_tokens_to_ids(all_doc_tokens),
                             "tok_to_orig_index": tok_to_orig,
                             "zero_subtoken_words": [i for i, w in enumerate(ex.doc_tokens)
                                                     if not tokenizer.tokenize(w)]})
        ctx = contexts[context_of[key]]
        # squad.py's own call
        truncated_query = tokenizer.encode(ex.question_text, add_special_tokens=False, max_length=max_query_length)
        feats = by_example[ex_index]
        row = {"example_index": ex_index, "qas_id": ex.qas_id, "context": ctx["context"],
               "question_text": ex.question_text, "n_features": len(feats),
               "query_tokens": tokenizer.convert_ids_to_tokens(truncated_query), "query_ids": truncated_query}
        if is_training:
            row.update(answer_text=ex.answer_text, word_start_position=ex.start_position,
                       word_end_position=ex.end_position)
        example_rows.append(row)
        for window, f in enumerate(feats):
            n = sum(f.attention_mask)
            assert f.attention_mask == [1] * n + [0] * (max_seq_length - n)
            assert len(f.input_ids) == max_seq_length and f.input_ids[n:] == [pad_id] * (max_seq_length - n)
            assert len(f.tokens) == n and f.tokens == tokenizer.convert_ids_to_tokens(f.input_ids[:n])
            doc_offset, token_to_orig = compact_map(f.token_to_orig_map, "token_to_orig_map")
            max_offset, is_max = compact_map(f.token_is_max_context, "token_is_max_context")
            assert max_offset == doc_offset and len(is_max) == len(token_to_orig) == f.paragraph_len
            start = window * doc_stride  # squad.py: encoded_dict["start"] = len(spans) * doc_stride
            assert f.tokens[doc_offset: doc_offset + f.paragraph_len] == \
                ctx["all_doc_tokens"][start: start + f.paragraph_len]
            assert token_to_orig == ctx["tok_to_orig_index"][start: start + f.paragraph_len]
            # The sequence is [CLS] query [SEP] window [SEP] (XLM-R: <s> query </s></s> window </s>): the file
            # keeps its parts (query_ids, all_doc_ids, start, paragraph_len), not the whole (see LAYOUT).
            cls_sep = tokenizer.build_inputs_with_special_tokens([], [])
            query_ids = row["query_ids"]
            expected_ids = (cls_sep[:1] + query_ids + cls_sep[1:-1]
                            + ctx["all_doc_ids"][start: start + f.paragraph_len] + cls_sep[-1:])
            assert f.input_ids[:n] == expected_ids and doc_offset == len(query_ids) + len(cls_sep) - 1
            assert f.cls_index == 0
            if tok_name == "wordpiece":
                assert f.token_type_ids == [0] * doc_offset + [1] * (n - doc_offset) + [0] * (max_seq_length - n)
            else:
                assert f.token_type_ids == [0] * max_seq_length
            frow = {"unique_id": f.unique_id, "example_index": f.example_index, "qas_id": ex.qas_id,
                    "window": window, "start": start, "paragraph_len": f.paragraph_len, "doc_offset": doc_offset,
                    "attention_length": n,
                    "token_is_max_context": "".join("1" if v else "0" for v in is_max)}
            if is_training:
                frow["start_position"] = f.start_position
                frow["end_position"] = f.end_position
            feature_rows.append(frow)
    return features, kept, contexts, example_rows, feature_rows


def dump_lines(path: Path, header: dict, sections: dict) -> None:
    """Valid JSON, one record a line: the header's keys, then each section as a list, one item a line."""
    def enc(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    parts = [f"{enc(k)}:{enc(v)}" for k, v in header.items()]
    for name, rows in sections.items():
        body = ",\n".join(enc(r) for r in rows)
        parts.append(f"{enc(name)}:[\n{body}\n]" if rows else f"{enc(name)}:[]")
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")


def logits_for(n_features: int, max_seq_length: int) -> list[tuple[list[float], list[float]]]:
    """The decode files' logits: RandomState(LOGIT_SEED); per feature start = randn(L), then end =
    randn(L), each value rounded to LOGIT_DECIMALS."""
    import numpy as np

    rng = np.random.RandomState(LOGIT_SEED)
    return [([round(float(x), LOGIT_DECIMALS) for x in rng.randn(max_seq_length)],
             [round(float(x), LOGIT_DECIMALS) for x in rng.randn(max_seq_length)]) for _ in range(n_features)]


def decode(tokenizer, examples, features, setting, logits_rng):
    from processors.squad import SquadResult
    from transformers.data.metrics.squad_metrics import compute_predictions_logits

    max_seq_length = SETTINGS[setting][0]
    results, logit_rows = [], []
    for f in features:
        start = [round(float(x), LOGIT_DECIMALS) for x in logits_rng.randn(max_seq_length)]
        end = [round(float(x), LOGIT_DECIMALS) for x in logits_rng.randn(max_seq_length)]
        results.append(SquadResult(f.unique_id, start, end))
        logit_rows.append({"unique_id": f.unique_id, "start_logits": start, "end_logits": end})
    with tempfile.TemporaryDirectory() as tmp:
        pred_file, nbest_file = os.path.join(tmp, "predictions.json"), os.path.join(tmp, "nbest.json")
        predictions = compute_predictions_logits(
            examples, features, results, N_BEST_SIZE, MAX_ANSWER_LENGTH, DO_LOWER_CASE, pred_file, nbest_file,
            None, VERBOSE_LOGGING, VERSION_2_WITH_NEGATIVE, NULL_SCORE_DIFF_THRESHOLD, tokenizer)
        with open(pred_file, encoding="utf-8") as f:
            written = json.load(f)
        with open(nbest_file, encoding="utf-8") as f:
            nbest = json.load(f)
    assert written == dict(predictions)
    return logit_rows, dict(predictions), nbest


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xtreme", required=True, help="an export of google-research/xtreme (git archive)")
    ap.add_argument("--xtreme-commit", default="", help="the commit it was exported from, for the header")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.xtreme, "third_party"))

    import numpy as np
    import transformers
    from processors.squad import SquadV1Processor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizers = load_tokenizers()
    official = {
        "xtreme_repo": "google-research/xtreme", "xtreme_commit": args.xtreme_commit,
        "xtreme_files": ["third_party/processors/squad.py", "third_party/run_squad.py"],
        "transformers_version": transformers.__version__,
        "transformers_pinned_by_xtreme": "cefd51c50cc08be8146c1151544495968ce8f2ad",
    }
    summary = {}
    for setting, (max_seq_length, doc_stride, max_query_length) in SETTINGS.items():
        for tok_name, tokenizer in tokenizers.items():
            tok_dir = TOKENIZERS / ("wordpiece-cased" if tok_name == "wordpiece" else "sentencepiece-xlmr")
            tok_file = tok_dir / ("vocab.txt" if tok_name == "wordpiece" else "sentencepiece.bpe.model")
            for lang in KEEP[setting, tok_name]:
                for mode in (["eval", "train"] if lang == "en" else ["eval"]):
                    is_training = mode == "train"
                    examples = read_examples(SquadV1Processor(), lang, mode)
                    features, kept, contexts, ex_rows, f_rows = convert(
                        tokenizer, tok_name, examples, setting, is_training)
                    header = {
                        "what": "squad_convert_examples_to_features output, XTREME-R's own code",
                        **official,
                        "input": f"tests/fixtures/xquad/xquad.{lang}.json",
                        "reader": f"SquadV1Processor().{'get_train_examples' if is_training else 'get_dev_examples'}"
                                  f"(None, filename=..., language={lang!r})",
                        "tokenizer": f"{type(tokenizer).__name__}.from_pretrained("
                                     f"'tests/fixtures/tokenizers/{tok_dir.name}', do_lower_case=False)",
                        "tokenizer_file_md5": {tok_file.name: file_md5(tok_file)},
                        "max_seq_length": max_seq_length, "doc_stride": doc_stride,
                        "max_query_length": max_query_length, "is_training": is_training,
                        "pad_token_id": tokenizer.pad_token_id,
                        "layout": LAYOUT,
                        "counts": {"examples": len(examples), "examples_with_features": len(kept),
                                   "features": len(features),
                                   "windows_per_example": dict(sorted(collections.Counter(
                                       r["n_features"] for r in ex_rows).items()))},
                    }
                    name = f"features-{tok_name}-{setting}-{lang}-{mode}.json"
                    dump_lines(out / name, header, {"contexts": contexts, "examples": ex_rows, "features": f_rows})
                    summary[name] = header["counts"]
                    if tok_name == "wordpiece" and lang == "en" and mode == "eval":
                        rng = np.random.RandomState(LOGIT_SEED)
                        logit_rows, predictions, nbest = decode(tokenizer, kept, features, setting, rng)
                        dheader = {
                            "what": "compute_predictions_logits output on the features of "
                                    f"{name}, with the logits below",
                            **official,
                            "features_file": name,
                            "logits": f"numpy.random.RandomState({LOGIT_SEED}); for each feature in order: "
                                      f"start = randn({max_seq_length}), then end = randn({max_seq_length}); "
                                      f"each rounded to {LOGIT_DECIMALS} decimals, and the rounded values used",
                            "call": "compute_predictions_logits(examples, features, results, n_best_size="
                                    f"{N_BEST_SIZE}, max_answer_length={MAX_ANSWER_LENGTH}, do_lower_case="
                                    f"{DO_LOWER_CASE}, ..., verbose_logging={VERBOSE_LOGGING}, "
                                    f"version_2_with_negative={VERSION_2_WITH_NEGATIVE}, null_score_diff_threshold="
                                    f"{NULL_SCORE_DIFF_THRESHOLD}, tokenizer)",
                            "counts": {"examples": len(kept), "features": len(features)},
                            "predictions": predictions,
                        }
                        # the logits are not stored: numpy's RandomState stream is fixed, so a test
                        # regenerates them with ``logits_for`` below; nbest: the texts only
                        dump_lines(out / f"decode-wordpiece-{setting}-en.json", dheader,
                                   {"nbest": [{"qas_id": k, "texts": [e["text"] for e in v]}
                                              for k, v in nbest.items()]})
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
