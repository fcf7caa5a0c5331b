"""Typology: the languages' codes, family, script and distances to English, from a pluggable source.

Two sources (``SOURCES``), chosen by the languages a sweep evaluates (``source_for``):

- ``lang2vec``: the real XTREME-R languages, below;
- ``switches``: the miniature world's synthetic languages (``trainables.miniature``), whose
  typology is their word-order switch vector: the distance is the number of switches that
  differ from English (``switches``), with one 0/1 column per switch.

Each source names its distance measures and the primary one (the x axis of the plots, the
tertiles of the groups); ``typology_table`` returns the table with ``attrs`` ``source``,
``measures``, ``primary`` and ``primary_label``.

The lang2vec source:

One fixed mapping from the ISO 639-1 codes the benchmark uses to the URIEL (lang2vec) codes.
URIEL holds separate vectors for a macrolanguage and its individual languages, so the mapping
names the *individual* language each benchmark actually uses: ``ar`` -> ``arb`` (Standard
Arabic), ``az`` -> ``azj`` (North Azerbaijani), ``et`` -> ``ekk`` (Standard Estonian), ``fa`` ->
``pes`` (Iranian Persian), ``ms`` -> ``zsm`` (Standard Malay), ``qu`` -> ``quz`` (Cusco
Quechua), ``sw`` -> ``swh`` (Coastal Swahili), ``zh`` -> ``cmn`` (Mandarin); the rest map one to one.

Distances to English (``DISTANCES``) are cosine distances between lang2vec feature vectors:
``syntax_knn``, ``phonology_knn``, ``inventory_knn`` (k-NN-imputed, complete for all 50
languages) and ``fam`` (genetic: Glottolog family-tree membership; undefined, NaN, for isolates
such as Basque, whose vector is all zeros) and ``geo`` (geographic). lang2vec 1.1.2 has no
``distance()`` of its own (it needs a file from a web site), so the cosine is computed here.
Family (top-level, as Glottolog groups it) and script are fixed tables.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

# iso1: (URIEL code, name, family, script)
LANGUAGES: dict[str, tuple[str, str, str, str]] = {
    "af": ("afr", "Afrikaans", "Indo-European", "Latin"), "ar": ("arb", "Arabic", "Afro-Asiatic", "Arabic"),
    "az": ("azj", "Azerbaijani", "Turkic", "Latin"), "bg": ("bul", "Bulgarian", "Indo-European", "Cyrillic"),
    "bn": ("ben", "Bengali", "Indo-European", "Bengali"), "de": ("deu", "German", "Indo-European", "Latin"),
    "el": ("ell", "Greek", "Indo-European", "Greek"), "en": ("eng", "English", "Indo-European", "Latin"),
    "es": ("spa", "Spanish", "Indo-European", "Latin"), "et": ("ekk", "Estonian", "Uralic", "Latin"),
    "eu": ("eus", "Basque", "Isolate", "Latin"), "fa": ("pes", "Persian", "Indo-European", "Arabic"),
    "fi": ("fin", "Finnish", "Uralic", "Latin"), "fr": ("fra", "French", "Indo-European", "Latin"),
    "gu": ("guj", "Gujarati", "Indo-European", "Gujarati"), "he": ("heb", "Hebrew", "Afro-Asiatic", "Hebrew"),
    "hi": ("hin", "Hindi", "Indo-European", "Devanagari"), "ht": ("hat", "Haitian Creole", "Creole", "Latin"),
    "hu": ("hun", "Hungarian", "Uralic", "Latin"), "id": ("ind", "Indonesian", "Austronesian", "Latin"),
    "it": ("ita", "Italian", "Indo-European", "Latin"), "ja": ("jpn", "Japanese", "Japonic", "Japanese"),
    "jv": ("jav", "Javanese", "Austronesian", "Latin"), "ka": ("kat", "Georgian", "Kartvelian", "Georgian"),
    "kk": ("kaz", "Kazakh", "Turkic", "Cyrillic"), "ko": ("kor", "Korean", "Koreanic", "Hangul"),
    "lt": ("lit", "Lithuanian", "Indo-European", "Latin"), "ml": ("mal", "Malayalam", "Dravidian", "Malayalam"),
    "mr": ("mar", "Marathi", "Indo-European", "Devanagari"), "ms": ("zsm", "Malay", "Austronesian", "Latin"),
    "my": ("mya", "Burmese", "Sino-Tibetan", "Myanmar"), "nl": ("nld", "Dutch", "Indo-European", "Latin"),
    "pa": ("pan", "Punjabi", "Indo-European", "Gurmukhi"), "pl": ("pol", "Polish", "Indo-European", "Latin"),
    "pt": ("por", "Portuguese", "Indo-European", "Latin"), "qu": ("quz", "Quechua", "Quechuan", "Latin"),
    "ro": ("ron", "Romanian", "Indo-European", "Latin"), "ru": ("rus", "Russian", "Indo-European", "Cyrillic"),
    "sw": ("swh", "Swahili", "Niger-Congo", "Latin"), "ta": ("tam", "Tamil", "Dravidian", "Tamil"),
    "te": ("tel", "Telugu", "Dravidian", "Telugu"), "th": ("tha", "Thai", "Kra-Dai", "Thai"),
    "tl": ("tgl", "Tagalog", "Austronesian", "Latin"), "tr": ("tur", "Turkish", "Turkic", "Latin"),
    "uk": ("ukr", "Ukrainian", "Indo-European", "Cyrillic"), "ur": ("urd", "Urdu", "Indo-European", "Arabic"),
    "vi": ("vie", "Vietnamese", "Austroasiatic", "Latin"), "wo": ("wol", "Wolof", "Niger-Congo", "Latin"),
    "yo": ("yor", "Yoruba", "Niger-Congo", "Latin"), "zh": ("cmn", "Chinese", "Sino-Tibetan", "Han"),
}
DISTANCES = ("syntax_knn", "phonology_knn", "inventory_knn", "fam", "geo")


def _cosine_distance(a, b) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0 or nb == 0:
        return math.nan  # e.g. the genetic vector of a language isolate
    return 1.0 - sum(x * y for x, y in zip(a, b)) / (na * nb)


@cache
def _features(feature_set: str) -> dict[str, list[float]]:
    import importlib
    import sys
    from pathlib import Path

    # lang2vec also installs a script named lang2vec.py into the environment's bin/; run from a
    # console script (xlt-report), bin/ is sys.path[0] and that script would shadow the package
    saved = sys.path[:]
    sys.path = [p for p in sys.path if not (Path(p or ".") / "lang2vec.py").is_file()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lang2vec imports the deprecated pkg_resources
            l2v = importlib.import_module("lang2vec.lang2vec")
    finally:
        sys.path = saved
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes = [v[0] for v in LANGUAGES.values()]
        raw = l2v.get_features(codes, feature_set)
    return {code: [float(x) for x in vec] for code, vec in raw.items()}


@cache
def distance_to_english(lang: str, feature_set: str) -> float:
    """Cosine distance between English and ``lang`` in lang2vec's ``feature_set``."""
    feats = _features(feature_set)
    return _cosine_distance(feats[LANGUAGES["en"][0]], feats[LANGUAGES[lang][0]])


def _lang2vec_rows(langs: list[str]) -> list[dict]:
    rows = []
    for lang in langs:
        uriel, name, family, script = LANGUAGES[lang]
        rows.append({"lang": lang, "uriel": uriel, "name": name, "family": family, "script": script,
                     **{f"dist_{fs}": distance_to_english(lang, fs) for fs in DISTANCES}})
    return rows


def _switch_rows(langs: list[str]) -> list[dict]:
    from trainables.miniature.languages import LANGUAGES as SYNTHETIC
    from trainables.miniature.languages import SWITCHES

    by_code = {lg.code: lg for lg in SYNTHETIC}
    return [{"lang": lang, "uriel": "", "name": "English (miniature)" if lang == "en" else f"synthetic {lang}",
             "family": "miniature", "script": by_code[lang].script, "dist_switches": float(by_code[lang].distance),
             **{f"switch_{k}": by_code[lang].switches[i] for i, k in enumerate(SWITCHES)}} for lang in langs]


def _switch_codes() -> set[str]:
    from trainables.miniature.languages import LANGUAGES as SYNTHETIC

    return {lg.code for lg in SYNTHETIC}


SOURCES = {
    "lang2vec": {"languages": lambda: set(LANGUAGES), "rows": _lang2vec_rows, "measures": DISTANCES,
                 "primary": "syntax_knn",
                 "primary_label": "syntactic distance to English (lang2vec syntax_knn, cosine)"},
    "switches": {"languages": _switch_codes, "rows": _switch_rows, "measures": ("switches",), "primary": "switches",
                 "primary_label": "word-order switches that differ from English (miniature world)"},
}
"""Typology sources: the languages each knows, its rows, its distance measures and the primary one."""


def source_for(langs: list[str]) -> str:
    """The source that knows every one of ``langs``: the real languages' lang2vec, or the
    miniature world's switches ("en" is in both; lang2vec wins when it is alone)."""
    for name, src in SOURCES.items():
        if set(langs) <= src["languages"]():
            return name
    known = {name: sorted(src["languages"]()) for name, src in SOURCES.items()}
    raise KeyError(f"no typology source knows all of {sorted(langs)}; known: "
                   + "; ".join(f"{k}: {', '.join(v)}" for k, v in known.items()))


def typology_table(langs: list[str], source: str | None = None):
    """One row per language: code, URIEL code, name, family, script and every distance of the
    source (``source_for`` unless named); the source's facts in ``attrs``."""
    import pandas as pd

    name = source or source_for(langs)
    src = SOURCES[name]
    unknown = [x for x in langs if x not in src["languages"]()]
    if unknown:
        raise KeyError(f"no typology for language(s) {unknown} in {name}; known: "
                       f"{', '.join(sorted(src['languages']()))}")
    table = pd.DataFrame(src["rows"](langs))
    table.attrs.update(source=name, measures=tuple(src["measures"]), primary=src["primary"],
                       primary_label=src["primary_label"])
    return table
