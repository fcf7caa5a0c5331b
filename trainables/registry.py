"""Name -> entry tables with "did you mean" errors, shared by every registry (tasks, methods, domains),
and the built-in model table (light: the spec reads it before torch is imported)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path

BUILTIN_MODELS: dict[str, dict] = {
    "builtin:tiny-bert": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 128, "max_position_embeddings": 256},
}
"""Built-in encoders by name -> their BertConfig fields (``trainables.models`` builds them)."""


def encoder_depth(name: str) -> int | None:
    """Transformer layers of a built-in model or a local checkpoint directory, without
    importing torch (validation time); None for a hub id (not known before download)."""
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]["num_hidden_layers"]
    config = Path(name).expanduser() / "config.json"
    if config.is_file():
        try:
            return int(json.loads(config.read_text())["num_hidden_layers"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


def suggest(name: str, allowed: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for the closest allowed name, or ""."""
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, allowed: Iterable[str]) -> str:
    """The one message every registry gives for an unknown key."""
    allowed = sorted(allowed)
    return f"unknown {kind} '{name}'{suggest(name, allowed)}; allowed: {', '.join(allowed)}"
