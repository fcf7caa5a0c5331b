"""Encoders, classification heads, and the built-in tiny model.

Real checkpoints (``xlm-roberta-base``, a local mirror path) and the built-in tiny model go
through the same ``AutoTokenizer/AutoModel.from_pretrained(path)`` code. ``builtin:tiny-bert``
is materialised once per storage root: a WordPiece tokenizer trained on the demo corpus with
``tokenizers`` and a 2-layer BERT built from a config with a fixed init seed, both written
with ``save_pretrained``. Concurrent trials serialise on a file lock; the result is
bit-identical whichever trial builds it.

Stages hand on only the encoder, pooler included (``save_pretrained`` into ``encoder/``); every
stage puts a fresh task head on it (``trainables.tasks.base.TaskModel``, ``trainables.tasks.heads``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from trainables.known_models import BUILTIN_MODELS

BUILTIN_PREFIX = "builtin:"
TINY = BUILTIN_MODELS["builtin:tiny-bert"]
BUILTIN_BUILD = 2
"""Bumped when the built-in model's files change (2: with BERT's pooler), so storage roots
built before get the new model rather than the old files."""
MINI_BUILD = 1
"""The same for ``builtin:mini-bert`` (its data or pretraining recipe)."""


def _build_mini_bert(out: Path, data_root: Path) -> None:
    from trainables.miniature.pretrain import build_mini_bert

    build_mini_bert(out, data_root, BUILTIN_MODELS["builtin:mini-bert"])


def resolve_model(name: str, assets_dir: str) -> str:
    """A path or hub id for ``from_pretrained``; builds ``builtin:*`` models on first use."""
    if not name.startswith(BUILTIN_PREFIX):
        return name
    if name not in BUILDERS:
        raise ValueError(f"unknown built-in model '{name}'; allowed: {', '.join(BUILTIN_MODELS)}")
    version, build = BUILDERS[name]
    out = Path(assets_dir) / "models" / f"{name[len(BUILTIN_PREFIX):]}-v{version}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").is_file():
            build(out, Path(assets_dir) / "demo_data")
    return str(out)


def train_wordpiece(texts, vocab_size: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer (lower-cased, CJK split) trained on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=special, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length)


def _build_tiny_bert(out: Path, demo_dir: Path) -> None:
    from trainables.demo_data import corpus, write_demo_data

    if not (demo_dir / "xnli").is_dir():  # caller holds the model lock; demo data is atomic
        write_demo_data(demo_dir)
    fast = train_wordpiece(corpus(demo_dir), 2000, TINY["max_position_embeddings"])
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    fast.save_pretrained(tmp)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(fast), **TINY)
    BertModel(config).save_pretrained(tmp)  # with its pooler, as a real BERT checkpoint
    os.replace(tmp, out)


BUILDERS = {"builtin:tiny-bert": (BUILTIN_BUILD, _build_tiny_bert), "builtin:mini-bert": (MINI_BUILD, _build_mini_bert)}
"""Built-in model -> (build version, builder(out, built-in data directory))."""


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer at ``path`` (a hub id or a local directory)."""
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_encoder(path: str, trust_remote_code: bool = False, attention: str = "sdpa") -> nn.Module:
    """``AutoModel.from_pretrained``, with the pooler where the architecture has one: the
    classification and multiple-choice heads of BERT-format models and the retrieval heads
    read it, and it is saved with the encoder so later stages get it
    (``trainables.tasks.heads``; a checkpoint without pooler weights gets a new pooler, as
    transformers' task classes do). ``attention``: ``sdpa`` (PyTorch's fused attention;
    architectures without it fall back to ``eager``) or ``eager``."""
    kwargs = {"trust_remote_code": trust_remote_code, "attn_implementation": attention}
    try:
        return AutoModel.from_pretrained(path, **kwargs)
    except ValueError as e:  # this architecture has no SDPA implementation
        if attention == "eager" or "attn_implementation" not in str(e) and "sdpa" not in str(e).lower():
            raise
        return load_encoder(path, trust_remote_code, "eager")
