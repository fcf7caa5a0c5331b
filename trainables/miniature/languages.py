"""Synthetic languages with controlled typology: one grammar, word-order switches, a lexicon each.

After Wang & Eisner (2016, Galactic Dependencies) and White & Cotterell (2021): every language
expresses the same events with the same grammar; what differs is a vector of binary word-order
switches and the words. An event is (agent, verb, patient, place), each noun with an optional
adjective; a language linearises it by its switches:

=================  =========================  ==========================
switch             0 (as English)             1
=================  =========================  ==========================
``adj_noun``       adjective noun             noun adjective
``adposition``     preposition + NP           NP + postposition
``object_verb``    verb object (VP: V O PP)   object verb (VP: PP O V)
``verb_subject``   subject VP                 VP subject
=================  =========================  ==========================

so English ``the old farmer sees the cat near the river`` is, in a language with switches
``1 1 1 1``, ``river-NEAR cat SEES farmer OLD`` (in its own words). The switch vectors are the
typology: the Hamming distance to English is the language's distance, and the report reads
them as its distance table (``typology``). Each language's lexicon is its own: disjoint token
strings made from a syllable inventory, some languages in Cyrillic or Greek script. Nothing but
the special tokens and positions is shared with English, so whatever transfers was learnt from
structure (Dufter & Schütze 2020; K et al. 2020).

The lexicon is split into domain slices (``general``, ``legal``, ``medical``, ``finance``) of
nouns and verbs; a concept has the same index in every language, so the generated corpora are
parallel where a task wants them to be.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SWITCHES = ("adj_noun", "adposition", "object_verb", "verb_subject")

# concept inventories (English words; the other languages get generated words for each)
NOUNS = {
    "general": ["farmer", "teacher", "child", "dog", "cat", "horse", "bird", "friend", "neighbour", "soldier",
                "singer", "baker", "sailor", "king", "girl", "boy"],
    "legal": ["judge", "lawyer", "witness", "tenant", "landlord", "clerk", "juror", "notary"],
    "medical": ["doctor", "nurse", "patient", "surgeon", "midwife", "pharmacist", "dentist", "medic"],
    "finance": ["banker", "trader", "broker", "investor", "auditor", "lender", "debtor", "cashier"],
}
PLACES = ["river", "market", "house", "bridge", "garden", "school", "church", "forest"]
VERBS = {
    "general": ["sees", "helps", "follows", "greets", "calls", "finds", "meets", "watches"],
    "legal": ["sues", "summons", "acquits", "deposes"],
    "medical": ["treats", "examines", "vaccinates", "bandages"],
    "finance": ["pays", "audits", "lends", "invoices"],
}
ADJECTIVES = ["old", "young", "tall", "small", "happy", "quiet", "brave", "tired"]
ADPOSITIONS = ["near", "behind", "beside", "under"]


@dataclass(frozen=True)
class Language:
    """A synthetic language: its code, switch vector and script."""
    code: str
    switches: tuple[int, int, int, int]
    script: str = "Latin"

    @property
    def distance(self) -> int:
        """Switches that differ from English's (all 0)."""
        return sum(self.switches)


ENGLISH = Language("en", (0, 0, 0, 0))
LANGUAGES = (
    ENGLISH,
    Language("xa", (0, 0, 0, 0)),
    Language("xb", (1, 0, 0, 0)),
    Language("xc", (0, 1, 0, 0), "Cyrillic"),
    Language("xd", (1, 1, 0, 0)),
    Language("xe", (0, 0, 1, 1), "Greek"),
    Language("xf", (1, 1, 1, 0)),
    Language("xg", (1, 1, 1, 1), "Cyrillic"),
)
"""English (real English words) and seven synthetic languages at distances 0 to 4."""

_SYLLABLES = {
    "Latin": (list("ptkbdgmnslrv"), list("aeiou")),
    "Cyrillic": (list("пткбдгмнслрв"), list("аеиоу")),
    "Greek": (list("πτκβδγμνσλρφ"), list("αειου")),
}


@dataclass
class Lexicon:
    """A language's words for every concept (English: the concepts themselves)."""
    words: dict[str, str]

    def __getitem__(self, concept: str) -> str:
        return self.words[concept]


def concepts() -> list[str]:
    """Every concept, in a fixed order (the index of a concept is its id in every language)."""
    return ([n for slice_ in NOUNS.values() for n in slice_] + PLACES
            + [v for slice_ in VERBS.values() for v in slice_] + ADJECTIVES + ADPOSITIONS)


def lexicon(lang: Language, seed: int = 0) -> Lexicon:
    """``lang``'s words: English uses the concepts' own words; every other language draws
    distinct 2-3 syllable words from its script's inventory (a seeded draw per language, so no
    string is shared with another language: each word carries the language's own letter tag)."""
    if lang.code == "en":
        return Lexicon({c: c for c in concepts()})
    consonants, vowels = _SYLLABLES[lang.script]
    rng = random.Random(f"{seed}-{lang.code}")
    tag = consonants[sum(map(ord, lang.code)) % len(consonants)]  # a language-specific first letter
    words, used = {}, set()
    for c in concepts():
        while True:
            w = tag + "".join(rng.choice(vowels) + rng.choice(consonants) for _ in range(rng.choice((1, 2))))
            w += rng.choice(vowels)
            if w not in used:
                used.add(w)
                words[c] = w
                break
    return Lexicon(words)


@dataclass(frozen=True)
class Event:
    """Who did what to whom (and where): concepts, each noun with its adjectives (0-2)."""
    agent: str
    verb: str
    patient: str
    place: str | None = None
    agent_adjs: tuple[str, ...] = ()
    patient_adjs: tuple[str, ...] = ()
    place_adjs: tuple[str, ...] = ()
    adposition: str = "near"


def random_event(rng: random.Random, domain: str = "general", adj_p: float = 0.4, place_p: float = 0.6) -> Event:
    """An event with two distinct participants from ``domain``'s nouns and one of its verbs;
    each noun takes up to two adjectives (each with probability ``adj_p``), and a place
    phrase comes with probability ``place_p``: the words' positions vary, so only knowing
    which word is which (a noun, an adjective, the verb) finds the roles."""
    agent, patient = rng.sample(NOUNS[domain], 2)

    def adjs():
        return tuple(rng.sample(ADJECTIVES, sum(rng.random() < adj_p for _ in range(2))))

    place = rng.choice(PLACES) if rng.random() < place_p else None
    return Event(agent, rng.choice(VERBS[domain]), patient, place, adjs(), adjs(), adjs(), rng.choice(ADPOSITIONS))


def linearise_roles(event: Event, lang: Language, lex: Lexicon) -> list[tuple[str, str | None]]:
    """The event as ``lang``'s words, by its switches, each with the role of the noun phrase it
    belongs to (``AGENT``, ``PATIENT``, ``PLACE``; None for the verb and the adposition)."""
    adj_noun, adposition, object_verb, verb_subject = lang.switches

    def np(noun, adjs, role):
        mods = [(lex[a], role) for a in adjs]
        return [*mods, (lex[noun], role)] if not adj_noun else [(lex[noun], role), *mods]

    pp = []
    if event.place:
        pp = np(event.place, event.place_adjs, "PLACE")
        adp = (lex[event.adposition], None)
        pp = [adp, *pp] if not adposition else [*pp, adp]
    obj = np(event.patient, event.patient_adjs, "PATIENT")
    verb = (lex[event.verb], None)
    vp = [verb, *obj, *pp] if not object_verb else [*pp, *obj, verb]
    subj = np(event.agent, event.agent_adjs, "AGENT")
    return [*subj, *vp] if not verb_subject else [*vp, *subj]


def synonym_table() -> dict[str, list[str]]:
    """RS-DA's table for the miniature world (``robust.options.rs_da.synonyms: miniature``):
    every English word's neighbours are the other words of its class (a domain slice's nouns or
    verbs, the places, the adjectives, the adpositions). A substitution changes the event, never
    its roles: the tags depend on where a word stands, not on which word it is."""
    classes = [*NOUNS.values(), PLACES, *VERBS.values(), ADJECTIVES, ADPOSITIONS]
    return {w: [x for x in cls if x != w] for cls in classes for w in cls}


def linearise(event: Event, lang: Language, lex: Lexicon) -> list[str]:
    """The event as ``lang``'s word sequence, by its switches."""
    return [w for w, _ in linearise_roles(event, lang, lex)]
