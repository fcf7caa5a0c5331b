"""Randomized smoothing by data augmentation (RS-DA, Huang et al. 2021; the released procedure).

Each English training example gets ``copies`` (c) augmented copies (the original is kept by
default); dev and test data are never touched. In a copy, every token that has k neighbours
in the synonym table is, with probability ``p = noise_magnitude``, replaced by a uniform draw
from itself and its k neighbours (so it changes with probability p * k / (k + 1)); p = 1.0 is
the released script. The table is a JSON file ``{word: [neighbours]}`` (the counter-fitted
neighbour file the paper used), ``builtin``: a small table for the built-in demo data, or
``miniature``: the miniature world's word classes (``trainables.miniature.languages.synonym_table``).

Token matching, and where it differs from the released script: that script splits on spaces
and looks tokens up verbatim, so "Market," or "Apples" never match "market" / "apples". Here a
whitespace token is split into leading punctuation, a core and trailing punctuation; the core
is looked up lower-cased; a replacement keeps the punctuation and the core's capitalisation
(Title or UPPER). Multi-word table entries are not matched. Which text fields are augmented is
the family's choice (``augment`` in each family module): both sentences of a pair, the
question of a QA example (the context stays, so answer offsets stay valid), every word of a
tagging example (one for one, so the tags stay aligned), context and choices of a multiple-
choice example, both sides of a retrieval pair.

Diagnostics: ``substitution_rate`` = changed tokens / tokens in the augmented copies; its
expectation on a known table is sum over tokens of p * k / (k + 1) divided by the token count.
The augmented set is drawn once per stage from ``random.Random(seed)``: reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

from trainables.robust.base import PlainFineTuning
from trainables.robust.options import AugmentationOptions, parse_options

_SPLIT = re.compile(r"^(\W*)(.*?)(\W*)$", re.UNICODE)

# Neighbours for the English words of the built-in demo data (trainables.demo_data).
DEMO_SYNONYMS: dict[str, list[str]] = {
    "bought": ["purchased", "acquired"], "market": ["marketplace", "bazaar"],
    "yesterday": ["recently"], "apples": ["fruits"], "books": ["volumes", "novels"],
    "chairs": ["seats", "stools"], "lamps": ["lights", "lanterns"], "shirts": ["tops", "blouses"],
    "cups": ["mugs"], "saw": ["noticed", "observed", "spotted"], "park": ["garden"],
    "morning": ["dawn"], "birds": ["sparrows"], "dogs": ["hounds", "puppies"],
    "trees": ["oaks"], "cars": ["vehicles", "automobiles"], "boats": ["ships", "vessels"],
    "deliver": ["supply", "provide"], "agreement": ["contract"], "buyer": ["purchaser"],
    "shipments": ["consignments"], "reports": ["statements"], "notices": ["notifications"],
    "received": ["got", "obtained"], "patient": ["inpatient"], "admission": ["intake"],
    "doses": ["dosages"], "tablets": ["pills"], "prescribed": ["ordered"],
}


def load_table(source: str) -> dict[str, list[str]]:
    """The synonym table ``{word: [neighbours]}``: a built-in one (``options.BUILTIN_TABLES``), or a JSON
    file (errors name the file)."""
    if source == "builtin":
        return DEMO_SYNONYMS
    if source == "miniature":
        from trainables.miniature.languages import synonym_table
        return synonym_table()
    path = Path(source).expanduser()
    table = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
        raise ValueError(f"{path}: expected a JSON object {{word: [neighbours]}}")
    return {str(k).lower(): [str(x) for x in v if str(x).lower() != str(k).lower()] for k, v in table.items()}


def _recase(word: str, like: str) -> str:
    if len(like) > 1 and like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class SynonymAugmenter:
    """Draws augmented texts and counts what it changed."""

    def __init__(self, table: dict[str, list[str]], probability: float, rng: random.Random):
        if not 0 <= probability <= 1:
            raise ValueError(f"rs_da needs noise_magnitude (substitution probability) in [0, 1], got {probability}")
        self.table, self.p, self.rng = table, probability, rng
        self.tokens = self.changed = 0

    def word(self, token: str) -> str:
        lead, core, trail = _SPLIT.match(token).groups()
        if not core:
            return token
        self.tokens += 1
        neighbours = self.table.get(core.lower())
        if not neighbours or self.rng.random() >= self.p:
            return token
        pick = self.rng.choice([core.lower(), *neighbours])
        if pick == core.lower():
            return token
        self.changed += 1
        return lead + _recase(pick, core) + trail

    def text(self, text: str) -> str:
        return " ".join(self.word(t) for t in text.split(" "))

    @property
    def rate(self) -> float:
        return self.changed / self.tokens if self.tokens else 0.0


class SynonymAugmentation:
    """Plain training on an augmented training set (the augmentation happens in the data)."""

    key = "rs_da"
    backpropagates = smooths_predictions = False
    augments = True
    _plain = PlainFineTuning()

    def loss(self, model, embed, batch, loss_fn):
        return self._plain.loss(model, embed, batch, loss_fn)

    def __init__(self, probability: float, options: AugmentationOptions):
        if not 0 <= probability <= 1:
            raise ValueError(f"rs_da needs noise_magnitude (substitution probability) in [0, 1], got {probability}")
        self.p, self.options = float(probability), options
        self.table = load_table(options.synonyms)

    def augment(self, examples: list, family, seed: int) -> tuple[list, dict[str, float]]:
        aug = SynonymAugmenter(self.table, self.p, random.Random(seed))
        copies = [family.augment(e, aug.text) for _ in range(self.options.copies) for e in examples]
        out = (list(examples) if self.options.keep_original else []) + copies
        return out, {"substitution_rate": aug.rate}

    def identity(self) -> list:
        table = hashlib.sha1(json.dumps(self.table, sort_keys=True).encode()).hexdigest()
        return [self.key, self.p, self.options.model_dump(), table]


def build(key: str, magnitude: float, options: dict):
    """The ``rs_da`` method: synonym substitution with probability ``magnitude``."""
    return SynonymAugmentation(magnitude, parse_options("rs_da", options))
