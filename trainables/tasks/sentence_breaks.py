"""SQuAD sentences as XTREME-R's LAReQA training finds them, and the sentence of an answer.

XTREME-R trains its LAReQA dual encoder on SQuAD v1.1 (``run_retrieval_qa.py``): each question
is paired with the sentence of its paragraph that holds the start of its first answer. The
sentences come from a sed-style breaker with SQuAD/Wikipedia tweaks (``processors/sb_sed.py``,
``infer_sentence_breaks``); the pairing and its two skip rules from ``processors/lareqa.py``
(``RetrievalSquadProcessor._create_examples``). This module is that protocol, in two steps:

- ``sentence_breaks(text)``: the (start, end) character offsets of every sentence of ``text``,
  ``text[start:end]`` being the sentence without surrounding whitespace. Newlines in the text
  are first read as spaces; then ``RULES``, a table of named regular-expression rewrites in
  seven groups applied strictly in order, marks sentence ends with newlines (first a broad
  split at sentence-final punctuation, then joins for abbreviations, initials and references,
  re-splits before common sentence starts, and SQuAD-specific fixes: every rewrite keeps the
  text's length, so offsets stay those of the original). The marked text is cut at its
  newlines; each piece, stripped, is a sentence, and its start is where the leading
  whitespace after its line start ends (``_spans`` states one quirk of that rule).
- ``answer_sentence(context, breaks, answer_start, answer_text)``: the first sentence with
  ``start <= answer_start < end``, or ``None`` (the benchmark skips the question) when no
  sentence holds the answer start, or when the answer text cannot be recovered from the
  context split on whitespace (space, tab, CR, LF and U+202F, as ``squad.py`` and
  ``lareqa.py`` split it: ``qa_text.split_words``): the words from the one holding the first
  answer character to the one holding the last, joined by single spaces, must contain the
  answer's own whitespace-separated words (Python's ``str.split``) joined by single spaces.
  The sentence is not required to hold the whole answer.

``tests/test_golden_lareqa_breaks.py`` compares both with the benchmark's own output
(``tests/golden/lareqa/``) on every XQuAD fixture paragraph and on synthetic texts that make
every rule fire.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from trainables.tasks.qa_text import Words, answer_words, split_words


@dataclass(frozen=True)
class Rule:
    """One rewrite: every match of ``pattern`` is replaced by ``template`` (``re.sub``)."""
    name: str
    pattern: re.Pattern
    template: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.template, text)


@dataclass(frozen=True)
class RuleGroup:
    """Consecutive rules with one aim; ``purpose`` says what they are for."""
    name: str
    purpose: str
    rules: tuple[Rule, ...]


def _rule(name: str, pattern: str, template: str) -> Rule:
    with warnings.catch_warnings():  # the benchmark's "[['..." (an unescaped "[" in a set) warns of future nesting
        warnings.simplefilter("ignore", FutureWarning)
        return Rule(name, re.compile(pattern), template)


_LQ, _RQ, _BULLET = "\u201c", "\u201d", "\u2022"  # curly double quotes, bullet
_BREAK = r"\g<1>\n\g<2>"
_JOIN = r"\g<1>. "
_JOIN_SPACE = r"\g<1> \g<2>"

RULES: tuple[RuleGroup, ...] = (
    RuleGroup("split", "Break after sentence-final punctuation ([.?!], then any closing parens, quotes and "
              "spaces) where whitespace is followed by an optional opening quote/bracket and a capital letter "
              "or digit (the whitespace character right after becomes the newline); and the Wikipedia scraps "
              "that would hide such an end: footnote marks after the punctuation ('.[1] The', "
              "'.[citation needed] The', stacked), and '[...]' ellipses inside quotes.", (
        _rule("sentence_end", rf"""([.?!][)'" {_RQ}]*)\s(\s*[['"({_LQ}]?[A-Z0-9])""", _BREAK),
        _rule("footnote_marks", r"""([.?!]['"]?)((\[[a-zA-Z0-9 ?]+\])+)\s(\s*['"(]?[A-Z0-9])""",
              r"\g<1>\g<2>\n\g<4>"),
        _rule("bracket_ellipsis", r"(\[\.\.\.\]\s*)\s(\[?[A-Z])", _BREAK),
    )),
    RuleGroup("abbreviations", "Undo a break right after an abbreviation's period: social, religious and "
              "professional titles, military and political titles, literary abbreviations, month names, "
              "places (Mt., Ft.), and 'a.m./p.m.' before 'Eastern'/'EST'.", (
        _rule("titles", r"\b(Mrs?|Ms|Dr|Prof|Fr|Rev|Msgr|Sta?)\.\n", _JOIN),
        _rule("ranks", r"\b(Lt|Gen|Col|Maj|Adm|Capt|Sgt|Rep|Gov|Sen|Pres)\.\n", _JOIN),
        _rule("literary", r"\b(e\.g|i\.?e|vs?|pp?|cf|a\.k\.a|approx|app|es[pt]|tr)\.\n", _JOIN),
        _rule("months", r"\b(Jan|Aug|Oct|Nov|Dec)\.\n", _JOIN),
        _rule("places", r"\b(Mt|Ft)\.\n", _JOIN),
        _rule("time_zone", r"\b([ap]\.m)\.\n(Eastern|EST)\b", r"\g<1>. \g<2>"),
    )),
    RuleGroup("initials", "Undo breaks inside a personal name: three, two or one initials ('J. R. R.', "
              "'C. S.', 'J.R.', 'F.') before a capitalised word (optionally opening with a double quote).", (
        _rule("three_initials", r'\b([A-Z]\.)[ \n]([A-Z]\.)[ \n]([A-Z]\.)[ \n]("?[A-Z][a-z])',
              r"\g<1> \g<2> \g<3> \g<4>"),
        _rule("two_initials", r'\b([A-Z]\.)[ \n]([A-Z]\.)[ \n]("?[A-Z][a-z])', r"\g<1> \g<2> \g<3>"),
        _rule("joined_initials", r'\b([A-Z]\.[A-Z]\.)\n("?[A-Z][a-z])', _JOIN_SPACE),
        _rule("one_initial", r'\b([A-Z]\.)\n("?[A-Z][a-z])', _JOIN_SPACE),
    )),
    RuleGroup("starts", "Break again (after the joins above) before words that usually open a sentence: "
              "'The/This/That/These/It ' after [.!?] and closing quotes/parens; 'Meanwhile', 'However'; "
              "'In/On/By/During/After/Under/Although/Yet/Several/According to ' after a period (the "
              "alternative 'As ' carries its own space, so it needs 'As' followed by two spaces).", (
        _rule("start_pronoun", r"""([.!?][\'")]*) (The|This|That|These|It) """, r"\g<1>\n\g<2> "),
        _rule("start_adverb", r"(\.) (Meanwhile|However)", _BREAK),
        _rule("start_preposition", r"(\.) (In|On|By|During|After|Under|Although|Yet|As |Several|According to) ",
              r"\g<1>\n\g<2> "),
    )),
    RuleGroup("references", "Undo breaks inside references: numbered parts ('Art. 5', 'No. 3', 'Vol. II', "
              "Bible books), life dates ('b. 1900', 'c. 1500', 'fl. 1200'), 'et al. (2005)', 'H.R. 2000'.", (
        _rule("numbered_part", r"\b([Aa]rt|[Nn]o|Opp?|ch|Sec|cl|Rec|Ecl|Cor|Lk|Jn|Vol)\.\n([0-9IVX]+)\b",
              r"\g<1>. \g<2>"),
        _rule("life_dates", r"\b([bdrc]|ca|fl)\.\n([A-Z0-9])", r"\g<1>. \g<2>"),
        _rule("et_al", r"\b(et al)\.\n(\(?[0-9]{4}\b)", r"\g<1>. \g<2>"),
        _rule("house_bill", r"\b(H\.R\.)\n([0-9])", _JOIN_SPACE),
    )),
    RuleGroup("squad_joins", "Undo breaks inside names of the SQuAD corpus: 'I Am... Sasha Fierce / World "
              "Tour', 'Warner Bros. Records / Entertainment', 'U.S.' before a number, 'Rs.' before a digit.", (
        _rule("i_am_sasha", r"(I Am\.\.\.)\n(Sasha Fierce|World Tour)", _JOIN_SPACE),
        _rule("warner_bros", r"(Warner Bros\.)\n(Records|Entertainment)", _JOIN_SPACE),
        _rule("us_number", r"(U\.S\.)\n(\(?\d\d+)", _JOIN_SPACE),
        _rule("rupees", r"\b(Rs\.)\n(\d)", _JOIN_SPACE),
    )),
    RuleGroup("squad_splits", "Breaks the rules above miss in SQuAD: after 'Jay Z.', 'Washington, D.C.', "
              "'for 4.)' (never fires: the first split already broke there), 'Wii U.' before a capital; "
              "before 'iPod'/'iTunes' after a period; before a "
              "'[...]' that ends a line; before a bullet '\u2022 ' and a capital. One join sits among them, in "
              "the benchmark's order: no break after '.Sc.' (B.Sc., M.Sc.).", (
        _rule("jay_z", r"\b(Jay Z\.) ([A-Z])", _BREAK),
        _rule("washington_dc", r"\b(Washington, D\.C\.) ([A-Z])", _BREAK),
        _rule("for_four", r"\b(for 4\.\)) ([A-Z])", _BREAK),
        _rule("wii_u", r"\b(Wii U\.) ([A-Z])", _BREAK),
        _rule("apple_products", r"\. (iPod|iTunes)", r".\n\g<1>"),
        _rule("lone_bracket_ellipsis", r" (\[\.\.\.\]\n)", r"\n\g<1>"),
        _rule("science_degree", r"(\.Sc\.)\n", r"\g<1> "),
        _rule("bullet", f" ({_BULLET} [A-Z])", r"\n\g<1>"),
    )),
)
"""The benchmark's rewrites, in the order it applies them (the order matters: later groups undo
or redo what earlier ones did)."""

_LINE_START = re.compile(r"^\s*", re.MULTILINE)


def mark_breaks(text: str) -> str:
    """``text`` with every newline read as a space, then a newline at every sentence break
    (the same length as ``text``)."""
    marked = text.replace("\n", " ")
    for group in RULES:
        for rule in group.rules:
            marked = rule.apply(marked)
    return marked


def _spans(marked: str) -> list[tuple[int, int]]:
    """The sentence offsets of a marked text: one per newline-separated piece, the piece
    stripped of whitespace. A piece starts where the run of whitespace from its line start
    ends; that run may cross newlines, so a whitespace-only piece (a text opening with
    ``" \u2022 A"``) gets the start of the piece after it, as in the benchmark."""
    starts = [m.end() for m in _LINE_START.finditer(marked)]
    pieces = [p.strip() for p in marked.split("\n")]
    if len(starts) != len(pieces):  # the benchmark asserts the same
        raise ValueError(f"cannot place {len(pieces)} sentences at {len(starts)} starts in {marked!r}")
    return [(start, start + len(piece)) for start, piece in zip(starts, pieces)]


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of ``text``, as XTREME-R's
    ``infer_sentence_breaks`` gives them (an empty text: one empty sentence ``(0, 0)``)."""
    return _spans(mark_breaks(text))


@lru_cache(maxsize=16)
def _words(context: str) -> Words:
    return split_words(context)  # the questions of one paragraph come together


def answer_sentence(context: str, breaks, answer_start: int, answer_text: str) -> str | None:
    """The sentence of ``context`` (one of ``breaks``) holding character ``answer_start``, or
    ``None`` where ``_create_examples`` skips the question: no sentence holds the answer start,
    or the answer text is not recoverable from the context's whitespace words."""
    sentence = next((context[s:e] for s, e in breaks if s <= answer_start < e), None)
    if not sentence:
        return None
    return sentence if answer_words(_words(context), answer_text, answer_start) is not None else None
