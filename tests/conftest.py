"""Shared fixtures. Tiers: unit tests by default; ``integration`` starts real Ray + MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_OUTCOME: dict[str, int] = {}
FIXTURES = ROOT / "tests" / "fixtures"  # real-data cuts, in the repository (see its README)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from trainables.demo_data import write_demo_data
    from trainables.miniature.data import write_miniature

    root = write_demo_data(tmp_path_factory.mktemp("demo"))
    write_miniature(root)  # as a sweep that uses the miniature world has it
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The built-in tiny model, built and saved once, loaded via from_pretrained(path)."""
    from trainables.models import resolve_model

    return resolve_model("builtin:tiny-bert", str(tmp_path_factory.mktemp("assets")))


@pytest.fixture(scope="session")
def mirror_dir(tmp_path_factory) -> Path:
    """A local mirror in the raw benchmark formats (real fixtures + synthetic files)."""
    from mirror import build_mirror

    return build_mirror(tmp_path_factory.mktemp("mirror"))


def build_checkpoint(kind: str, out: Path) -> str:
    """A tiny checkpoint in a real model's format, saved and loaded as one: ``mbert`` (BERT, cased
    WordPiece, token type ids) or ``xlmr`` (XLM-R, SentencePiece, no token type ids), with the
    fixture tokenizers of ``tests/fixtures/tokenizers``; random weights."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    tok = AutoTokenizer.from_pretrained(str(FIXTURES / "tokenizers" / (
        "wordpiece-cased" if kind == "mbert" else "sentencepiece-xlmr")))
    small = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64)
    torch.manual_seed(0)
    if kind == "mbert":
        model = BertModel(BertConfig(**small, max_position_embeddings=256))  # pooler kept, as in mBERT
    else:
        model = XLMRobertaModel(XLMRobertaConfig(**small, max_position_embeddings=258, type_vocab_size=1,
                                                 pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                                 eos_token_id=tok.eos_token_id))  # pooler kept, as in XLM-R
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session", params=["builtin", "mbert", "xlmr"])
def checkpoint(request, tiny_model, tmp_path_factory) -> str:
    """The built-in tiny model, and tiny mBERT- and XLM-R-format checkpoints built on the spot."""
    if request.param == "builtin":
        return tiny_model
    return build_checkpoint(request.param, tmp_path_factory.mktemp(request.param))


def pytest_sessionfinish(session, exitstatus):
    _OUTCOME["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process with the session's outcome, without interpreter finalization.

    Native libraries the tests load into this process (Ray's core worker and gRPC threads from
    the tests that ``ray.init`` here, torch's thread pools) can crash CPython's teardown after
    the last test: the CI run at stop 31 passed all 495 tests, then the process died of
    SIGSEGV at exit (139), which would fail CI with every test green. The outcome is decided
    by now and every report is written (this hook runs last), so the process ends with it."""
    import os
    import sys

    if "status" in _OUTCOME and not os.environ.get("XLT_TESTS_FINALIZE"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_OUTCOME["status"])
