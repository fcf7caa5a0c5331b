"""The encoders a space file can name before anything is loaded: the built-in model table, the
hub encoders XTREME-R reports (config fields and parameter counts), local checkpoint
directories, and the checks validation makes on a model name. Light: the spec reads it before
torch is imported."""

from __future__ import annotations

import json
from pathlib import Path

from trainables.names import unknown

BUILTIN_MODELS: dict[str, dict] = {
    "builtin:tiny-bert": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 128, "max_position_embeddings": 256},
    "builtin:mini-bert": {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 2,
                          "intermediate_size": 128, "max_position_embeddings": 64},
}
"""Built-in encoders by name -> their BertConfig fields (``trainables.models`` builds them):
``tiny-bert`` randomly initialised, ``mini-bert`` pretrained on the miniature world
(``trainables.miniature.pretrain``)."""


HUB_MODELS: dict[str, dict] = {
    **{k: {"model_type": "bert", "num_hidden_layers": 12, "max_position_embeddings": 512,
           "parameters": 177_853_440 if "uncased" not in k else 167_356_416}
       for k in ("bert-base-multilingual-cased", "google-bert/bert-base-multilingual-cased",
                 "bert-base-multilingual-uncased", "google-bert/bert-base-multilingual-uncased")},
    **{k: {"model_type": "xlm-roberta", "num_hidden_layers": 12, "max_position_embeddings": 514,
           "parameters": 278_043_648}
       for k in ("xlm-roberta-base", "FacebookAI/xlm-roberta-base")},
    **{k: {"model_type": "xlm-roberta", "num_hidden_layers": 24, "max_position_embeddings": 514,
           "parameters": 559_890_432}
       for k in ("xlm-roberta-large", "FacebookAI/xlm-roberta-large")},
}
"""The config fields validation needs of the hub encoders XTREME-R reports (from their hub
``config.json``) and their parameter counts (the storage estimate), so a space file naming
one is checked before anything is downloaded."""


def model_config(name: str) -> dict | None:
    """The config of a built-in model, a local checkpoint directory (its ``config.json``) or a
    known hub encoder, read without importing torch (validation time); None if not known."""
    if name in BUILTIN_MODELS:
        return {"model_type": "bert", **BUILTIN_MODELS[name]}
    config = Path(name).expanduser() / "config.json"
    if config.is_file():
        try:
            cfg = json.loads(config.read_text())
        except ValueError:
            return None
        return cfg if isinstance(cfg, dict) else None
    return HUB_MODELS.get(name)


def encoder_depth(name: str) -> int | None:
    """Transformer layers of ``name`` (``model_config``), or None where not known."""
    try:
        return int((model_config(name) or {})["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        return None


def max_positions(name: str) -> int | None:
    """The longest input ``name`` encodes, in tokens, or None where not known. RoBERTa-style
    encoders reserve two position slots for the padding offset (XLM-R: 514 -> 512)."""
    cfg = model_config(name) or {}
    try:
        n = int(cfg["max_position_embeddings"])
    except (KeyError, TypeError, ValueError):
        return None
    return n - 2 if cfg.get("model_type") in ("roberta", "xlm-roberta", "camembert") else n


def model_name_problem(name: str, what: str = "model") -> str | None:
    """Why ``name`` cannot be loaded, or None: it must be a built-in model, an existing
    directory, or a well-formed hub id (``name`` or ``owner/name``, checked by
    ``huggingface_hub``'s own rule). A name written as a path (``./x``, ``/x``, ``~/x``, or
    with more than one ``/``) must exist: it is never looked up on the hub."""
    if name.startswith("builtin:"):
        return None if name in BUILTIN_MODELS else unknown(f"built-in {what}", name, BUILTIN_MODELS)
    path = Path(name).expanduser()
    if path.is_dir():
        return None
    if path.exists():
        return f"{name} is a file; a local {what} is a directory (as save_pretrained writes it)"
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if not looks_like_path:
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(name)
            return None
        except HFValidationError as e:
            return f"'{name}' is neither an existing directory nor a well-formed hub id ({e})"
    return (f"'{name}' is not an existing directory (resolved: {path.resolve()}), and a path is "
            f"never a hub id (allowed: an existing directory, a hub id such as xlm-roberta-base "
            f"or owner/name, or {', '.join(BUILTIN_MODELS)})")
