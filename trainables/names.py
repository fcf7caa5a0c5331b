"""The one message every registry gives for an unknown name (tasks, methods, domains, models,
catalogue entries): the allowed names, and the closest one as a "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, allowed: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for the closest allowed name, or ""."""
    close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, allowed: Iterable[str]) -> str:
    """The one message every registry gives for an unknown key."""
    allowed = sorted(allowed)
    return f"unknown {kind} '{name}'{suggest(name, allowed)}; allowed: {', '.join(allowed)}"
