"""Words, sub-tokens and answer text for extractive QA, as XTREME-R's SQuAD code makes them.

``third_party/processors/squad.py`` (google-research/xtreme) and the ``squad_metrics.py`` of the
transformers release it pins do not tokenize a context as one string. They split it into
whitespace words (space, tab, CR, LF and U+202F only), tokenize each word on its own and
concatenate the pieces; an answer is first located in words, then in sub-tokens. A predicted
span is turned back into text by detokenizing its sub-tokens and aligning that string with the
span's whole words joined by single spaces, after BERT's basic tokenization of both; where
the alignment fails (an unknown token, a character the tokenizer normalised), the answer is the
whole words. This module is that arithmetic, written for fast tokenizers; ``tests/
test_protocol_golden.py`` compares it with the benchmark's own output on the XQuAD fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

WHITESPACE = frozenset(" \t\r\n\u202f")
"""squad.py's ``_is_whitespace``."""


@dataclass(frozen=True)
class Words:
    """A context split as squad.py splits it."""
    words: tuple[str, ...]
    char_to_word: tuple[int, ...]
    """For every character, the index of the word it is in (whitespace: the word before, -1 at the start)."""
    starts: tuple[int, ...]
    """The character offset of every word."""


def split_words(text: str) -> Words:
    """``SquadExample``'s ``doc_tokens`` and ``char_to_word_offset``."""
    words, starts, char_to_word, prev_ws = [], [], [], True
    for i, c in enumerate(text):
        if c in WHITESPACE:
            prev_ws = True
        else:
            if prev_ws:
                words.append(c)
                starts.append(i)
            else:
                words[-1] += c
            prev_ws = False
        char_to_word.append(len(words) - 1)
    return Words(tuple(words), tuple(char_to_word), tuple(starts))


@dataclass(frozen=True)
class Pieces:
    """The sub-tokens of a context's words, concatenated (squad.py's ``all_doc_tokens``)."""
    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    word: tuple[int, ...]
    """``tok_to_orig_index``: the word of every sub-token."""
    first: tuple[int, ...]
    """``orig_to_tok_index``: every word's first sub-token (a word without any: the next word's)."""
    spans: tuple[tuple[int, int], ...]
    """The context characters [start, end) of every sub-token (its word's, where the tokenizer
    gives no offsets inside it)."""


def word_pieces(tokenizer, context: str, words: Words) -> Pieces:
    """Tokenize every word on its own (one batched call) and concatenate the pieces."""
    if not words.words:
        return Pieces((), (), (), (), ())
    enc = tokenizer(list(words.words), add_special_tokens=False, return_offsets_mapping=True)
    ids, tokens, word, first, spans = [], [], [], [], []
    for w, (wid, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        first.append(len(ids))
        base, length = words.starts[w], len(words.words[w])
        for t, (a, b) in zip(wid, offs):
            ids.append(t)
            word.append(w)
            spans.append((base + a, base + b) if b > a else (base, base + length))
    tokens = tokenizer.convert_ids_to_tokens(ids)
    return Pieces(tuple(ids), tuple(tokens), tuple(word), tuple(first), tuple(spans))


def answer_words(words: Words, text: str, start: int) -> tuple[int, int] | None:
    """The first and last whitespace word of an answer, or None where squad.py (and LAReQA's
    processor) drop the example: the answer's whitespace-normalised text is not inside the
    words from the one holding its first character to the one holding its last."""
    end_char = min(start + len(text) - 1, len(words.char_to_word) - 1)
    w_start, w_end = words.char_to_word[start], words.char_to_word[end_char]
    if " ".join(text.split()) not in " ".join(words.words[w_start:w_end + 1]):
        return None
    return w_start, w_end


def answer_subtokens(tokenizer, words: Words, pieces: Pieces, text: str, start: int) -> tuple[int, int] | None:
    """The first and last sub-token of a training answer, or None when squad.py drops the example
    (``answer_words``)."""
    span = answer_words(words, text, start)
    if span is None:
        return None
    w_start, w_end = span
    s = pieces.first[w_start]
    e = pieces.first[w_end + 1] - 1 if w_end < len(words.words) - 1 else len(pieces.ids) - 1
    # _improve_answer_span: the tightest sub-token span equal to the answer tokenized alone
    want = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
    for a in range(s, e + 1):
        for b in range(e, a - 1, -1):
            if pieces.ids[a:b + 1] == want:
                return a, b
    return s, e


def pair_template(tokenizer) -> tuple[list, list, list, list[int]]:
    """How the tokenizer lays out a pair, learnt from encoding a probe pair: the special ids
    before the first sequence, between the two and after the second, and the token type of
    the four parts (special-first, first, special-middle-and-second, ...): ``[specials_pre,
    specials_mid, specials_post, types]`` with ``types`` = (pre, first, mid, second, post)."""
    enc = tokenizer("a", "b", add_special_tokens=True)
    seq = enc.sequence_ids(0)
    ids, types = enc["input_ids"], enc.get("token_type_ids") or [0] * len(enc["input_ids"])
    first = [k for k, x in enumerate(seq) if x == 0]
    second = [k for k, x in enumerate(seq) if x == 1]
    pre, mid, post = ids[:first[0]], ids[first[-1] + 1:second[0]], ids[second[-1] + 1:]
    part_types = [types[0] if pre else 0, types[first[0]], types[first[-1] + 1] if mid else types[second[0]],
                  types[second[0]], types[-1] if post else types[second[0]]]
    return [pre, mid, post, part_types]


def build_pair(template, query: list[int], doc: list[int]) -> tuple[list[int], list[int], int]:
    """The ids and token types of (query, doc) laid out as ``template`` says, and the position of
    the doc's first token."""
    pre, mid, post, (t_pre, t_q, t_mid, t_doc, t_post) = template
    ids = [*pre, *query, *mid, *doc, *post]
    types = [t_pre] * len(pre) + [t_q] * len(query) + [t_mid] * len(mid) + [t_doc] * len(doc) + [t_post] * len(post)
    return ids, types, len(pre) + len(query) + len(mid)


def is_max_context(starts: list[int], lengths: list[int], window: int, position: int) -> bool:
    """squad.py's ``_new_check_is_max_context``: is ``window`` the one where ``position`` (a
    sub-token index) has the most context (min of left and right, + 0.01 x window length; the
    first window wins ties)?"""
    best, best_window = None, None
    for k, (s, n) in enumerate(zip(starts, lengths)):
        if not s <= position <= s + n - 1:
            continue
        score = min(position - s, s + n - 1 - position) + 0.01 * n
        if best is None or score > best:
            best, best_window = score, k
    return best_window == window


def detokenize(tokens: list[str], style: str) -> str:
    """The slow tokenizers' ``convert_tokens_to_string``: WordPiece joins with spaces and removes
    `` ##``; SentencePiece concatenates and turns ``▁`` into spaces."""
    if style == "wordpiece":
        return " ".join(tokens).replace(" ##", "").strip()
    if style == "sentencepiece":
        return "".join(tokens).replace("\u2581", " ").strip()
    return "".join(tokens).strip()


def detokenize_style(tokenizer) -> str:
    """Which ``detokenize`` rule a tokenizer's pieces follow (its model / decoder type)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = type(getattr(backend, "model", None)).__name__
    decoder = type(getattr(backend, "decoder", None)).__name__
    if model == "WordPiece":
        return "wordpiece"
    if model == "Unigram" or decoder == "Metaspace":
        return "sentencepiece"
    return "other"


def lower_cases(tokenizer) -> bool:
    """Whether the tokenizer lower-cases its input (an uncased model: the benchmark then passes
    ``--do_lower_case``, and get_final_text compares lower-cased, accent-stripped text)."""
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    return normalizer is not None and normalizer.normalize_str("AÉ") == "ae"


@lru_cache(maxsize=2)
def _basic(lower: bool):
    from tokenizers import normalizers, pre_tokenizers

    # BERT's BasicTokenizer(do_lower_case=lower): clean the text, space out CJK characters,
    # (lower-case and strip accents,) split on whitespace and punctuation: the tokenizers
    # library's implementation of it
    return (normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                       lowercase=lower), pre_tokenizers.BertPreTokenizer())


def _basic_tokens(text: str, lower: bool) -> list[str]:
    norm, pre = _basic(lower)
    return [t for t, _ in pre.pre_tokenize_str(norm.normalize_str(text))]


def _strip_spaces(text: str) -> tuple[str, dict[int, int]]:
    chars, to_s = [], {}
    for i, c in enumerate(text):
        if c == " ":
            continue
        to_s[len(chars)] = i
        chars.append(c)
    return "".join(chars), to_s


def final_text(pred_text: str, orig_text: str, lower: bool = False) -> str:
    """``get_final_text``: the part of ``orig_text`` (whole words joined by single spaces) that
    the detokenized prediction covers, or ``orig_text`` where they cannot be aligned; ``lower``:
    the tokenizer lower-cases (``do_lower_case``)."""
    tok_text = " ".join(_basic_tokens(orig_text, lower))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _strip_spaces(orig_text)
    tok_ns, tok_map = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in tok_map.items()}
    if start not in tok_s_to_ns or tok_s_to_ns[start] not in orig_map:
        return orig_text
    if end not in tok_s_to_ns or tok_s_to_ns[end] not in orig_map:
        return orig_text
    return orig_text[orig_map[tok_s_to_ns[start]]:orig_map[tok_s_to_ns[end]] + 1]
