"""Mewsli-X query and candidate text, as XTREME-R's ``third_party/utils_mewslix.py`` builds it.

What the benchmark does (google-research/xtreme 838c13b):

- Loading: ``load_jsonl`` parses each line into its schema classes (``Entity``,
  ``ContextualMentions`` for ``wikinews_mentions``, ``MentionEntityPair`` for
  ``wikipedia_pairs``) and validates them: every ``Span`` has ``0 <= start < end``; every sentence
  span lies inside its text (``start < len``, ``end <= len``); a mention's ``mention_span.text``
  equals the context's ``text[start:end]``.
- Query (``preprocess_mention``; used for the training pairs in ``processors/mewslix.py`` and for
  the test mentions in ``evaluate_retrieval.py``): ``ContextualMention.truncate(window_size=0)``
  keeps the *first* sentence span (file order) that fully contains the mention (``Span.locate_in``)
  and nothing else. Where there is none (no sentence spans, or the mention crosses a sentence
  boundary) the benchmark's ``assert`` stops the run. In that sentence, the text left of the mention
  and the text right of it each have every ``{...}`` pair, shortest match first and with no newline
  inside (regex ``\\{(.*?)\\}`` without DOTALL), rewritten to ``(...)``. Braces that have no partner
  on the same side, pairs broken by the mention, and braces in the mention itself stay as they are.
  The query is then ``f"{m}: {left} {{ {m} }} {right}"``, where ``m`` is ``mention_span.text``.
- Candidate (``preprocess_entity_description``, via ``Entity.sentences``): the texts
  ``description[start:end]`` of the ``sentence_spans``, in their file order, joined with one space.
  Text between or after the spans is dropped. Nothing is escaped.
- Both are then normalised: ``" ".join(t.splitlines())`` (every line break ``str.splitlines``
  knows: ``\\n``, ``\\r\\n``, ``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``,
  ``\\u2028``, ``\\u2029``), then a *single* ``.replace("  ", " ")`` pass (so a run of three or
  four spaces keeps two), then ``.strip()``.
- Encoding: ``scripts/train_mewslix.sh`` and ``scripts/run_eval_mewslix.sh`` both set
  ``MAX_SEQ_LEN=64`` for queries and candidates alike (``MAX_LENGTH`` here). Training uses
  ``encode_plus(max_length=64)``. The evaluation calls ``tokenizer.tokenize``, keeps 62 tokens and
  adds ``[CLS]``/``[SEP]``. ``run_eval_mewslix.sh`` passes ``--pool_type cls``, but the Mewsli-X
  branch of ``evaluate_retrieval.py`` encodes through ``extract_encodings``, which ignores
  ``pool_type`` and calls ``BertForRetrieval(..., inference=True)``: the L2-normalised pooled
  output of the ``[CLS]`` position (the project's ``RetrievalHead``).

What this module does: the same strings, from the JSON dicts of the files. Only stdlib is
used, with no schema classes, and it returns plain tuples, so ``retrieval.py`` can import it
without a cycle. Where the benchmark raises or asserts, this module raises
``trainables.data.DataError`` naming the file and line (``where``) and what is wrong.
``tests/golden/mewslix/`` holds the benchmark's own output on synthetic files with the edge
cases, and ``tests/test_golden_mewslix.py`` checks every string against it.

Where they differ, on inputs the benchmark would not load or would load differently:

- Only the fields the text needs are required: context ``text`` and ``sentence_spans``;
  mention ``example_id``, ``mention_span`` {start, end, text} and ``entity_id``; entity
  ``description`` and ``sentence_spans``. Test mentions also need ``language``, which selects
  the article, and entities need ``entity_id``. The benchmark's loader also demands metadata it
  never reads: ``document_title``, ``document_url``, ``document_id`` and ``language`` of every
  context, and ``title``, ``description_language`` and ``description_url`` of every entity.
- Offsets must be JSON integers. The benchmark would take ``true`` as 1 and fail on ``1.0``
  with a ``TypeError``.
- Blank lines are skipped. The benchmark's ``json.loads`` fails on them.
- Test mentions are read from the unsplit ``wikinews_mentions-{split}.jsonl`` that
  ``get-mewsli-x.sh`` writes, keeping the articles whose ``context.language`` is the requested
  one. The benchmark reads ``utils_preprocess.py``'s per-language shards
  (``wikinews_mentions/{split}-{lang}.jsonl``), which hold the same articles in the same order.
- A repeated ``example_id`` within one language is an error. The benchmark's prediction and
  gold dicts are keyed on it, so the second mention would overwrite the first.
- The benchmark prints a line for every query where braces were escaped. This module does not.
"""

from __future__ import annotations

import re
from pathlib import Path

from trainables.data import DataError, jsonl_rows

MAX_LENGTH = 64
"""``MAX_SEQ_LEN`` of ``train_mewslix.sh`` / ``run_eval_mewslix.sh``: tokens per query and per
candidate, special tokens included (training and evaluation alike)."""

_BRACED = re.compile(r"\{([^\n]*?)\}")
"""A ``{...}`` pair with no newline inside, shortest first: the benchmark's ``{(.*?)}``, whose
``.`` (no DOTALL) matches anything but ``\\n``."""


def _normalise(text: str) -> str:
    """Line breaks of any kind become spaces; one left-to-right pass turns each pair of spaces
    into one; surrounding whitespace goes."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need(obj, keys: tuple[str, ...], where: str, what: str) -> None:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: {what} must be a JSON object")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: {what} has no {', '.join(repr(k) for k in missing)}")


def _offsets(span, where: str, what: str) -> tuple[int, int]:
    _need(span, ("start", "end"), where, what)
    start, end = span["start"], span["end"]
    if not (_is_int(start) and _is_int(end)):
        raise DataError(f"{where}: {what} offsets must be integers, got start={start!r}, end={end!r}")
    if not 0 <= start < end:
        raise DataError(f"{where}: {what} [{start}, {end}) is negative or empty (needs 0 <= start < end)")
    return start, end


def _text(obj: dict, key: str, where: str, what: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: {what}.{key} must be a string")
    return value


def _sentence_spans(obj: dict, text: str, where: str, what: str) -> list[tuple[int, int]]:
    spans = obj["sentence_spans"]
    if not isinstance(spans, list):
        raise DataError(f"{where}: {what}.sentence_spans must be a list of {{start, end}}")
    out = []
    for k, span in enumerate(spans):
        start, end = _offsets(span, where, f"{what}.sentence_spans[{k}]")
        if end > len(text):
            raise DataError(f"{where}: {what}.sentence_spans[{k}] [{start}, {end}) runs past the end of "
                            f"the text ({len(text)} characters)")
        out.append((start, end))
    return out


def mention_text(context: dict, mention: dict, where: str) -> str:
    """The benchmark's ``preprocess_mention`` for one mention of ``context``. The result is
    ``mention: sentence``, the sentence being the first sentence span that contains the mention,
    with the mention marked `` { mention } `` and the ``{...}`` pairs left and right of it turned
    into ``(...)``, then normalised (see the module docstring)."""
    _need(mention, ("example_id", "mention_span", "entity_id"), where, "a mention")
    name = f"mention '{mention['example_id']}'"
    _need(context, ("text", "sentence_spans"), where, f"the context of {name}")
    text = _text(context, "text", where, "context")
    sentences = _sentence_spans(context, text, where, "context")
    span = mention["mention_span"]
    _need(span, ("start", "end", "text"), where, f"{name}: mention_span")
    start, end = _offsets(span, where, f"{name}: mention_span")
    surface = _text(span, "text", where, f"{name}: mention_span")
    if end > len(text):
        raise DataError(f"{where}: {name}: mention_span [{start}, {end}) runs past the end of the context "
                        f"text ({len(text)} characters)")
    if surface != text[start:end]:
        raise DataError(f"{where}: {name}: mention_span.text {surface!r} is not the context text at "
                        f"[{start}, {end}) ({text[start:end]!r})")
    if not sentences:
        raise DataError(f"{where}: {name}: the context has no sentence spans; the benchmark takes the "
                        f"sentence holding the mention (ContextualMention.truncate asserts)")
    focus = next(((s, e) for s, e in sentences if s <= start and end <= e), None)
    if focus is None:
        raise DataError(f"{where}: {name} [{start}, {end}) crosses a sentence boundary (no single "
                        f"sentence span holds it; the benchmark asserts)")
    left = _BRACED.sub(r"(\1)", text[focus[0]:start])
    right = _BRACED.sub(r"(\1)", text[end:focus[1]])
    return _normalise(f"{surface}: {left} {{ {surface} }} {right}")


def description_text(entity: dict, where: str) -> str:
    """The benchmark's ``preprocess_entity_description``: the description's sentence-span texts,
    in file order, joined with a space and normalised. Text outside the spans is dropped."""
    _need(entity, ("description", "sentence_spans"), where, "an entity")
    description = _text(entity, "description", where, "entity")
    spans = _sentence_spans(entity, description, where, "entity")
    return _normalise(" ".join(description[s:e] for s, e in spans))


def read_entities(path: str | Path) -> list[tuple[str, str]]:
    """``candidate_set_entities.jsonl``: (entity id, ``description_text``) of every candidate,
    in file order (the benchmark's index order)."""
    path = Path(path)
    out = []
    for n, row in jsonl_rows(path):
        where = f"{path}:{n}"
        if "entity_id" not in row or "description" not in row or "sentence_spans" not in row:
            raise DataError(f"{where}: an entity needs 'entity_id', 'description' and 'sentence_spans'")
        out.append((str(row["entity_id"]), description_text(row, where)))
    if not out:
        raise DataError(f"{path}: no entities")
    return out


def read_mentions(path: str | Path, known_entity_ids: set[str],
                  lang: str) -> tuple[list[tuple[str, str]], dict[str, set[str]]]:
    """``wikinews_mentions-{split}.jsonl`` (one article per line: ``{"context", "mentions"}``):
    the mentions of the articles in ``lang``, in file order, as (example id, ``mention_text``),
    and each one's gold entity. The gold entity must be one of ``known_entity_ids``."""
    path = Path(path)
    queries: list[tuple[str, str]] = []
    gold: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    for n, row in jsonl_rows(path):
        where = f"{path}:{n}"
        _need(row, ("context", "mentions"), where, "an article")
        context, mentions = row["context"], row["mentions"]
        _need(context, ("language",), where, "the article's context")
        if not isinstance(mentions, list):
            raise DataError(f"{where}: 'mentions' must be a list")
        if context["language"] != lang:
            continue
        for k, m in enumerate(mentions):
            if not isinstance(m, dict) or "example_id" not in m or "entity_id" not in m:
                raise DataError(f"{where}: mentions[{k}]: a mention needs 'example_id' and 'entity_id'")
            example_id, entity_id = str(m["example_id"]), str(m["entity_id"])
            if entity_id not in known_entity_ids:
                raise DataError(f"{where}: entity '{entity_id}' is not among the candidates")
            if example_id in first:
                raise DataError(f"{where}: example id '{example_id}' repeats (first on line {first[example_id]})")
            first[example_id] = n
            queries.append((example_id, mention_text(context, m, where)))
            gold[example_id] = {entity_id}
    if not queries:
        raise DataError(f"{path}: no mentions in language '{lang}'")
    return queries, gold


def read_wikipedia_pairs(path: str | Path) -> list[tuple[str, str]]:
    """``wikipedia_pairs-{split}.jsonl``: ``{"contextual_mention": {"context", "mention"},
    "entity": {...}}`` per line, as (``mention_text``, ``description_text``), in file order
    (``processors/mewslix.py``'s training and dev pairs)."""
    path = Path(path)
    out = []
    for n, row in jsonl_rows(path):
        where = f"{path}:{n}"
        cm, entity = row.get("contextual_mention"), row.get("entity")
        if not isinstance(cm, dict) or not isinstance(cm.get("context"), dict) \
                or not isinstance(cm.get("mention"), dict) or not isinstance(entity, dict):
            raise DataError(f"{where}: expected contextual_mention.{{context, mention}} and entity")
        out.append((mention_text(cm["context"], cm["mention"], where), description_text(entity, where)))
    if not out:
        raise DataError(f"{path}: no pairs")
    return out
