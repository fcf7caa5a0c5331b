"""The miniature world's data, written in the formats the real loaders read.

Under ``{root}/miniature/`` (``root``: the built-in data directory, ``data_dir: builtin``):

- ``roles/en/{train,dev}`` and ``roles/{lang}/test``: the target task, semantic-role tagging
  (who did what to whom, where): every noun phrase tagged with its role, ``B-``/``I-AGENT``,
  ``PATIENT`` or ``PLACE`` in IOB2, the verb and the adposition ``O``, in PAN-X's format
  (``{lang}:{word}<TAB>{tag}``, a blank line between sentences; read by the tagging family and
  scored with seqeval chunk F1, as PAN-X is). The label depends on structure only: which noun is
  the agent is decided by where it stands, and that is what the switches change. The test sets
  are parallel (sentence i is the same event in every language), so languages differ only in
  word order and words.
- ``intermediate/{key}/train``: the intermediate tasks by domain, English only (``DOMAIN_TASKS``).
- ``pretrain/{lang}.txt``: one sentence per line, the masked-language-modelling corpus of the
  built-in encoder (``trainables.miniature.pretrain``); each language's events are drawn on their
  own (not translations of one another), from every domain's lexicon slice.

Everything is generated from fixed seeds: the same bytes on every machine.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from trainables.miniature.languages import (
    ENGLISH,
    LANGUAGES,
    NOUNS,
    Event,
    Language,
    lexicon,
    linearise,
    linearise_roles,
    random_event,
)

ROLE_TAGS = ("O", "B-AGENT", "I-AGENT", "B-PATIENT", "I-PATIENT", "B-PLACE", "I-PLACE")
SIZES = {"train": 300, "dev": 200, "test": 300, "intermediate": 1000, "pretrain": 3000}
DOMAIN_TASKS = {"mini_general": "general", "mini_legal": "legal"}
"""Intermediate task key -> the lexicon slice its English sentences use."""
VERSION = 1
"""In the marker file; bumped when the generated data changes."""


def tagged(event: Event, lang: Language, lex) -> list[tuple[str, str]]:
    """``event`` in ``lang`` as (word, IOB2 role tag) pairs: every noun phrase (noun and its
    adjectives) is one chunk of its role."""
    out, prev = [], None
    for w, role in linearise_roles(event, lang, lex):
        out.append((w, "O" if role is None else ("I-" if role == prev else "B-") + role))
        prev = role
    return out


def role_sentences(lang: Language, n: int, seed, domain: str = "general") -> list[list[tuple[str, str]]]:
    """``n`` tagged sentences of ``domain``'s events in ``lang``; the same ``seed`` gives the same
    events in every language (parallel sets)."""
    rng, lex = random.Random(seed), lexicon(lang)
    return [tagged(random_event(rng, domain), lang, lex) for _ in range(n)]


def _write_tagged(path: Path, code: str, sentences) -> None:
    _atomic(path, "".join("".join(f"{code}:{w}\t{t}\n" for w, t in s) + "\n" for s in sentences))


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # concurrent trials may write the same file


def pretraining_corpus(lang: Language, n: int) -> list[str]:
    """``n`` sentences of ``lang``, events drawn on their own from every domain's slice."""
    rng, lex = random.Random(f"pretrain-{lang.code}"), lexicon(lang)
    return [" ".join(linearise(random_event(rng, rng.choice(list(NOUNS))), lang, lex)) for _ in range(n)]


def write_miniature(root: str | os.PathLike, sizes: dict[str, int] | None = None) -> Path:
    """Write the miniature world's files under ``{root}/miniature`` (idempotent, deterministic)."""
    out = Path(root) / "miniature"
    marker = out / f".complete-v{VERSION}"
    if marker.is_file():
        return out
    sizes = {**SIZES, **(sizes or {})}
    for split, seed in (("train", "train"), ("dev", "dev")):
        _write_tagged(out / "roles" / "en" / split, "en", role_sentences(ENGLISH, sizes[split], seed))
    for lang in LANGUAGES:
        _write_tagged(out / "roles" / lang.code / "test", lang.code, role_sentences(lang, sizes["test"], "test"))
        _atomic(out / "pretrain" / f"{lang.code}.txt", "\n".join(pretraining_corpus(lang, sizes["pretrain"])) + "\n")
    for key, domain in DOMAIN_TASKS.items():
        _write_tagged(out / "intermediate" / key / "train", "en",
                      role_sentences(ENGLISH, sizes["intermediate"], f"intermediate-{key}", domain))
    _atomic(marker, "")
    return out
