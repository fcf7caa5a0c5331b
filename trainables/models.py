"""Encoders, classification heads, and the built-in tiny model.

Real checkpoints (``xlm-roberta-base``, a local mirror path) and the built-in tiny model go
through the same ``AutoTokenizer/AutoModel.from_pretrained(path)`` code. ``builtin:tiny-bert``
is materialised once per storage root: a WordPiece tokenizer trained on the demo corpus with
``tokenizers`` and a 2-layer BERT built from a config with a fixed init seed, both written
with ``save_pretrained``. Concurrent trials serialise on a file lock; the result is
bit-identical whichever trial builds it.

Stages hand on only the encoder (``save_pretrained`` into ``encoder/``); every stage puts a
fresh task head on it (``trainables.tasks.base.TaskModel``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from trainables.registry import BUILTIN_MODELS

BUILTIN_PREFIX = "builtin:"
TINY = BUILTIN_MODELS["builtin:tiny-bert"]


def resolve_model(name: str, assets_dir: str) -> str:
    """A path or hub id for ``from_pretrained``; builds ``builtin:*`` models on first use."""
    if not name.startswith(BUILTIN_PREFIX):
        return name
    kind = name[len(BUILTIN_PREFIX):]
    if kind != "tiny-bert":
        raise ValueError(f"unknown built-in model '{name}'; allowed: builtin:tiny-bert")
    out = Path(assets_dir) / "models" / kind
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").is_file():
            _build_tiny_bert(out, Path(assets_dir) / "demo_data")
    return str(out)


def _build_tiny_bert(out: Path, demo_dir: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    from trainables.demo_data import corpus, write_demo_data

    if not (demo_dir / "xnli").is_dir():  # caller holds the model lock; demo data is atomic
        write_demo_data(demo_dir)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(corpus(demo_dir), trainers.WordPieceTrainer(
        vocab_size=2000, special_tokens=special, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=TINY["max_position_embeddings"])
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    fast.save_pretrained(tmp)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), **TINY)
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp)
    os.replace(tmp, out)


def load_tokenizer(path: str, trust_remote_code: bool = False):
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_encoder(path: str, trust_remote_code: bool = False) -> nn.Module:
    """``AutoModel.from_pretrained`` without the pooler where the architecture has one: the
    head reads the first token's hidden state, and an unused pooler would make DDP fail
    (parameters that never receive gradients)."""
    try:
        return AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code,
                                         add_pooling_layer=False)
    except TypeError:  # architectures without a pooler reject the argument
        return AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
