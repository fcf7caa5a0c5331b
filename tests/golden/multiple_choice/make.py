"""Regenerate ``xcopa-<tokenizer>.json``: run_xcopa.py's model inputs for the XCOPA fixture.

    python tests/golden/multiple_choice/make.py XTREME_DIR

The nested ``preprocess_function`` of XTREME_DIR's ``third_party/run_xcopa.py`` (google-research/
xtreme) is executed as written on the first ``ROWS`` of every ``tests/fixtures/xcopa/val.*.jsonl`` (and on a SocialIQA
sample, ``siqa_sample.jsonl`` here, for its other branch), with max_seq_length 128 and no padding
(train_xcopa.sh), with the repository's two fixture tokenizers loaded by
``AutoTokenizer.from_pretrained`` (run_xcopa.py's default fast tokenizers; it was run with
transformers 4.9.2, this with the version pyproject.toml pins: the tokenizers library does the
work in both). Kept: the first and second sequences of every choice and their input ids. This
script is ours; the outputs are the benchmark's.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
TOKENIZERS = ("wordpiece-cased", "sentencepiece-xlmr")
ROWS = 12
"""The first rows of each file (the golden files stay small)."""


def official_preprocess(run_xcopa: str, task: str, tokenizer):
    """run_xcopa.py's task-field setup and ``preprocess_function``, bound to ``task``."""
    setup = re.search(r"^    if data_args\.task == 'xcopa':\n      context_name.*?(?=^    # premise)", run_xcopa,
                      re.S | re.M).group(0)
    fn = re.search(r"^    def preprocess_function\(examples\):\n.*?return unflattened\n", run_xcopa,
                   re.S | re.M).group(0)
    args = type("DataArgs", (), {"task": task, "max_seq_length": 128, "pad_to_max_length": False})()
    scope = {"data_args": args, "tokenizer": tokenizer}
    exec(textwrap.dedent(setup) + textwrap.dedent(fn), scope)
    return scope["preprocess_function"], scope


def columns(rows: list[dict]) -> dict[str, list]:
    """``datasets``' batched layout: field -> values."""
    return {k: [r[k] for r in rows] for k in rows[0]}


def main(xtreme: str) -> None:
    from transformers import AutoTokenizer

    source = (Path(xtreme) / "third_party" / "run_xcopa.py").read_text()
    for name in TOKENIZERS:
        tok = AutoTokenizer.from_pretrained(str(ROOT / "tests" / "fixtures" / "tokenizers" / name))
        out = {}
        inputs = {p.name[len("val."):-len(".jsonl")]: ("xcopa", p) for p in
                  sorted((ROOT / "tests" / "fixtures" / "xcopa").glob("val.*.jsonl"))}
        inputs["siqa"] = ("siqa", HERE / "siqa_sample.jsonl")
        for key, (task, path) in inputs.items():
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:ROWS] if line.strip()]
            fn, scope = official_preprocess(source, task, tok)
            # the pairs preprocess_function builds, recorded by wrapping the tokenizer it calls
            seen = {}

            def record(first, second, **kw):
                seen["pairs"] = list(zip(first, second))
                return tok(first, second, **kw)
            scope["tokenizer"] = record
            enc = fn(columns(rows))
            n = scope["num_answers"]
            out[key] = [{"pairs": seen["pairs"][i * n:(i + 1) * n], "input_ids": enc["input_ids"][i]}
                        for i in range(len(rows))]
        (HERE / f"xcopa-{name}.json").write_text(json.dumps(out, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
