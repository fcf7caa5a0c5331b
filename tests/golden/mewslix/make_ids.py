"""Write ``ids-{wordpiece,sentencepiece}.json``: the token ids XTREME-R feeds its Mewsli-X models.

    /tmp/xv28/bin/python tests/golden/mewslix/make_ids.py /tmp/xtreme

Run after ``make.py`` (it reads the files that script writes here). The argument is an export of
google-research/xtreme; ``/tmp/xv28`` is the transformers 2.8.0 venv of
``tests/golden/tagging/make.py``, with ``pip install torch==2.13.0 faiss-cpu`` added, because
``evaluate_retrieval.py`` imports both at the top.

The scripts choose the tokenizer settings by model: ``train_mewslix.sh`` and
``run_eval_mewslix.sh`` pass ``--do_lower_case`` for ``xlm-roberta-large`` and not for
``bert-base-multilingual-cased`` (read from the scripts here, and checked to agree). Each fixture
tokenizer (``tests/fixtures/tokenizers``) stands in for its model family and is loaded the way
the scripts load theirs: ``BertTokenizer.from_pretrained(DIR, do_lower_case=False)`` and
``XLMRobertaTokenizer.from_pretrained(DIR, do_lower_case=True)``.

- Training (``run_retrieval_el.py``): ``WikiELProcessor().get_train_examples`` on
  ``wikipedia_pairs-train.jsonl``, then ``processors/mewslix.py``'s
  ``wikipedia_el_convert_example_to_features`` at ``MAX_SEQ_LEN``: each pair's query and
  candidate ids (padding cut off with the attention mask).
- Test (``evaluate_retrieval.py``'s Mewsli-X branch): the texts it writes to its text files,
  ``preprocess_mention`` of every mention and ``preprocess_entity_description`` of every entity
  (taken from ``expected.json``); each is tokenized with ``tokenize_text`` and batched with
  ``prepare_batch`` at ``MAX_SEQ_LEN``, as ``extract_encodings`` does. The rows are the
  unpadded ``input_ids`` (cut off with the attention mask). The same is done for the pairs'
  query and candidate texts (``pair_queries``, ``pair_candidates``).

Under transformers 2.8.0 the training conversion raises for XLM-R: its ``encode_plus`` returns
no ``token_type_ids`` (``model_input_names``), which ``wikipedia_el_convert_example_to_features``
reads. ``ids-sentencepiece.json`` then records ``train: null`` and the exception
(``train_raises``); for WordPiece, where it runs, the script checks that the training ids equal
the evaluation's encoding of the same texts (both are ``[CLS] tokens[:62] [SEP]``), so
``pair_queries`` / ``pair_candidates`` are the reference for XLM-R's training inputs.

Nothing is stubbed or wrapped. ``processors/mewslix.py`` is imported as it is.
``evaluate_retrieval.py`` calls ``main()`` at the end of the module, with no ``__main__`` guard, so
it is compiled from its own source without that one top-level statement (``import_without_main``)
and run as a module. Every function in it is left as it is. This script is ours; the ids are the
benchmark's.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
TOKENIZERS = ROOT / "tests" / "fixtures" / "tokenizers"


MODEL_BRANCH = r'(bert-base-multilingual-cased|xlm-roberta-large)[^\n]*then(.*?)(?=\belif\b|\belse\b|\bfi\b)'
"""A script's ``if``/``elif`` branch for one of the two models: (model, body)."""
MODELS = (  # (file suffix, slow tokenizer class, fixture folder, the model it stands in for, model_type)
    ("wordpiece", "BertTokenizer", "wordpiece-cased", "bert-base-multilingual-cased", "bert-retrieval"),
    ("sentencepiece", "XLMRobertaTokenizer", "sentencepiece-xlmr", "xlm-roberta-large", "xlmr-retrieval"))


def model_branches(text: str) -> dict[str, str]:
    """{model: the body of its branch} of a script."""
    return dict(re.findall(MODEL_BRANCH, text, re.S))


def lower_case_by_model(xtreme: Path, scripts: tuple[str, str]) -> dict[str, bool]:
    """{model: --do_lower_case?} from the model branches of both ``scripts`` (they must agree)."""
    found = [{model: '"--do_lower_case"' in body
              for model, body in model_branches((xtreme / "scripts" / name).read_text()).items()} for name in scripts]
    if found[0] != found[1] or len(found[0]) != 2:
        raise SystemExit(f"{scripts}: the lower-casing by model: {found}")
    return found[0]


def fixture_tokenizer(cls_name: str, folder: str, do_lower_case: bool):
    """A fixture tokenizer loaded as the scripts load their model's: the 2.x slow class."""
    import transformers

    return getattr(transformers, cls_name).from_pretrained(str(TOKENIZERS / folder), do_lower_case=do_lower_case)


def import_without_main(path: Path) -> types.ModuleType:
    """The module at ``path``, run without its top-level ``main()`` call (the only statement dropped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
             and isinstance(n.value.func, ast.Name) and n.value.func.id == "main"]
    if len(calls) != 1:
        raise SystemExit(f"{path}: expected one top-level main() call, found {len(calls)}")
    tree.body.remove(calls[0])
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module


def unpadded(ids, mask) -> list[int]:
    return [int(i) for i, m in zip(ids, mask) if m]


def eval_ids(er, tok, model_type: str, rows: list[str], length: int) -> list[list[int]]:
    """``evaluate_retrieval.py``'s encoding of ``rows`` (``er``: that module), as
    ``extract_encodings`` does it: one text per line of a file, ``tokenize_text``, then
    ``prepare_batch`` at ``length``; the unpadded ``input_ids``."""
    with tempfile.TemporaryDirectory() as tmp:
        text_file, tok_file = Path(tmp) / "text.txt", Path(tmp) / "text.tok"
        text_file.write_text("".join(t + "\n" for t in rows), encoding="utf-8")
        toks = er.tokenize_text(str(text_file), str(tok_file), tok)
        batch, _ = er.prepare_batch(toks, tok, model_type, "cpu", length, pool_skip_special_token=False)
    return [unpadded(i, m) for i, m in zip(batch["q_input_ids"].tolist(), batch["q_attention_mask"].tolist())]


def main(xtreme: Path) -> None:
    sys.path.insert(0, str(xtreme / "third_party"))
    er = import_without_main(xtreme / "third_party" / "evaluate_retrieval.py")
    from processors.mewslix import WikiELProcessor, wikipedia_el_convert_example_to_features

    expected = json.loads((HERE / "expected.json").read_text(encoding="utf-8"))
    max_len = expected["about"]["max_seq_len"]
    lower = lower_case_by_model(xtreme, ("train_mewslix.sh", "run_eval_mewslix.sh"))
    pairs = WikiELProcessor().get_train_examples(str(HERE), "wikipedia_pairs-train.jsonl")
    texts = {"queries": [m[3] for m in expected["mentions"]], "candidates": [e[1] for e in expected["entities"]]}
    for name, cls, folder, model, model_type in MODELS:
        tok = fixture_tokenizer(cls, folder, lower[model])
        train, train_raises = [], None
        try:
            for pair in pairs:
                feat = wikipedia_el_convert_example_to_features(pair, tok, max_len)[0]
                train.append([unpadded(feat.q_input_ids, feat.q_attention_mask),
                              unpadded(feat.a_input_ids, feat.a_attention_mask)])
        except KeyError as e:  # XLM-R under 2.8.0: encode_plus returns no token_type_ids
            train, train_raises = None, f"{type(e).__name__}: {e}"
        sides = {**texts, "pair_queries": [q for q, _ in expected["pairs"]],
                 "pair_candidates": [c for _, c in expected["pairs"]]}
        test = {side: eval_ids(er, tok, model_type, rows, max_len) for side, rows in sides.items()}
        if train is not None and train != [list(p) for p in zip(test["pair_queries"], test["pair_candidates"])]:
            raise SystemExit(f"{name}: the training conversion and the evaluation's encoding of the pairs differ")
        doc = {"about": {"made_by": "tests/golden/mewslix/make_ids.py", "model": model, "do_lower_case": lower[model],
                         "max_seq_len": max_len},
               "train": train, "train_raises": train_raises, "test": test}
        (HERE / f"ids-{name}.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
