"""CoNLL-U sentences as XTREME-R prepares UD-POS: fused surface tokens, no text-less sentences.

The benchmark's ``scripts/download_data.sh`` converts every treebank with ud-conversion-tools'
``conllu_to_conll.py --replace_subtokens_with_fused_forms --print_fused_forms`` and then
``utils_preprocess.py --task udpos``. What that does to a sentence, and so what this module does:

- A multiword token (``3-4 del`` over ``3 de``, ``4 el``) replaces its syntactic words by one
  token, its surface form, tagged with the UPOS of the span's head: the word of the span with
  the fewest ancestors in the sentence's dependency graph (basic heads and the enhanced ``DEPS``
  heads both count as edges, as the converter builds one graph of both); when several words tie,
  the one whose UPOS comes first in the converter's precedence list for the language (es, fr and
  it have their own), the earlier word on equal rank. A UPOS the list lacks (the converter
  raises on it) ranks after every listed one here.
- Empty nodes (``5.1``) and comment lines are dropped.
- A sentence whose forms are (nearly) all ``_``, a treebank distributed without its text
  (Arabic-NYUAD, French-FTB, Japanese-BCCWJ, English-ESL), is dropped: kept are sentences with no
  ``_`` form or with fewer ``_`` forms than their length minus one.
- U+200C (zero-width non-joiner) and spaces inside a form are removed.

``tests/test_protocol_golden.py`` compares this with the benchmark's own output on the UD
fixtures (English-EWT, Wolof-WTB, Yoruba-YTB) and on a synthetic file of the edge cases.
Errors name the file and line.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from trainables.data import DataError

_DEFAULT = "VERB NOUN PROPN PRON ADJ NUM ADV INTJ AUX ADP DET PART CCONJ SCONJ X PUNCT".split()
PRECEDENCE = {"default": _DEFAULT, "es": "VERB AUX PRON ADP DET".split(),
              "fr": "VERB AUX PRON NOUN ADJ ADV ADP DET PART SCONJ CONJ".split(),
              "it": "VERB AUX ADV PRON ADP DET INTJ".split()}
"""conllu_to_conll.py's POS precedence lists for choosing a multiword token's head."""


@dataclass
class _Sentence:
    words: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    """id -> (form, upos, line number)."""
    edges: set[tuple[int, int]] = field(default_factory=set)
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    """(first id, last id, surface form) of every multiword token."""


def _ancestors(parents: dict[int, set[int]], node: int) -> int:
    """How many nodes reach ``node`` along the edges (networkx's ``len(ancestors(G, node))``)."""
    seen, todo = set(), deque(parents.get(node, ()))
    while todo:
        n = todo.popleft()
        if n not in seen:
            seen.add(n)
            todo.extend(parents.get(n, ()))
    seen.discard(node)
    return len(seen)


def span_head(sentence: _Sentence, parents: dict[int, set[int]], first: int, last: int, lang: str) -> int:
    """The word of a multiword token whose UPOS the fused token takes (see the module docstring);
    ``parents`` maps a word to the heads of its edges."""
    span = list(range(first, last + 1))
    depth = [_ancestors(parents, x) for x in span]
    top = [x for x, d in zip(span, depth) if d == min(depth)]
    if len(top) == 1:
        return top[0]
    order = PRECEDENCE.get(lang, _DEFAULT)
    return min(top, key=lambda x: (order.index(sentence.words[x][1]) if sentence.words[x][1] in order
                                   else len(order)))


def _tokens(sentence: _Sentence, lang: str, where: str) -> list[tuple[str, str, int]]:
    """The sentence's (form, upos, line) after fusing its multiword tokens."""
    replace, skip = {}, set()
    parents: dict[int, set[int]] = {}
    for h, d in sentence.edges:
        parents.setdefault(d, set()).add(h)
    for first, last, form in sentence.spans:
        ids = range(first, last + 1)
        if not all(i in sentence.words for i in ids):
            raise DataError(f"{where}: multiword token {first}-{last} covers a word the sentence lacks")
        head = span_head(sentence, parents, first, last, lang)
        replace[head] = (form, sentence.words[head][1], sentence.words[head][2])
        skip.update(i for i in ids if i != head)
    return [replace.get(i, sentence.words[i]) for i in sorted(sentence.words) if i not in skip]


def _keep(forms: list[str]) -> bool:
    """utils_preprocess.py: not a (nearly) text-less sentence."""
    empty = sum(f == "_" for f in forms)
    return empty == 0 or empty < len(forms) - 1


def clean_form(form: str) -> str:
    """utils_preprocess.py's ``remove_empty_space``: no U+200C, no spaces inside the form."""
    return "".join(form.replace("\u200c", "").split(" "))


def read_ud_sentences(path: str | Path, lang: str = "default") -> list[list[tuple[str, str, str]]]:
    """Every kept sentence of a CoNLL-U file as (form, upos, "file:line") triples."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    out, sentence, start = [], _Sentence(), 1

    def flush() -> None:
        nonlocal sentence
        if sentence.words:
            tokens = _tokens(sentence, lang, f"{path}:{start}")
            if _keep([f.strip() for f, _, _ in tokens]):
                out.append([(clean_form(f.strip()), t.strip(), f"{path}:{line}") for f, t, line in tokens])
        sentence = _Sentence()

    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                start = n + 1
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataError(f"{path}:{n}: a CoNLL-U word line has 10 tab-separated columns, found {len(cols)}")
            ident = cols[0]
            if "." in ident:  # an empty node
                continue
            if "-" in ident:
                a, _, b = ident.partition("-")
                if not (a.isdigit() and b.isdigit()):
                    raise DataError(f"{path}:{n}: bad multiword token id '{ident}'")
                sentence.spans.append((int(a), int(b), cols[1]))
                continue
            if not ident.isdigit():
                raise DataError(f"{path}:{n}: bad word id '{ident}'")
            i = int(ident)
            sentence.words[i] = (cols[1], cols[3], n)
            if cols[6].isdigit():
                sentence.edges.add((int(cols[6]), i))
            for dep in cols[8].split("|") if cols[8] != "_" else ():
                head = dep.split(":")[0]
                if head.isdigit():
                    sentence.edges.add((int(head), i))
        flush()
    return out
