"""Write the synthetic Mewsli-X files here, then ``expected.json`` with XTREME-R's own preprocessing.

    .venv/bin/python tests/golden/mewslix/make.py /tmp/xtreme

The argument is an export of google-research/xtreme. Its ``third_party/utils_mewslix.py`` is
stdlib only. It is imported as it is (``sys.path`` at ``third_party``, ``import
utils_mewslix``), and nothing is stubbed or wrapped.

Step 1 writes the three input files below, in the layout ``get-mewsli-x.sh`` writes and with
every field of the released schema: ``candidate_set_entities.jsonl`` (``Entity``),
``wikinews_mentions-test.jsonl`` (``ContextualMentions``: one article per line) and
``wikipedia_pairs-train.jsonl`` (``MentionEntityPair``). Offsets are computed from the texts
below, so they are right by construction, and the benchmark's loader checks them again.

Step 2 loads the files with the benchmark's ``load_jsonl`` and its schema classes. It runs
``preprocess_entity_description`` on every entity and ``preprocess_mention`` on every mention
(unnested with ``unnest_to_single_mention_per_context``, as ``evaluate_retrieval.py`` does), and
both on every pair (as ``processors/mewslix.py`` does). Everything is kept in file order.

Step 3 runs the benchmark's own loading and preprocessing on each row of ``REJECTED``, bad
``wikipedia_pairs`` rows, and records the exception it raises.

``expected.json`` holds ``entities`` ``[entity_id, text]``, ``mentions`` ``[example_id,
language, entity_id, text]``, ``pairs`` ``[query, candidate]`` and ``rejected`` ``{case: {"row",
"benchmark_raises"}}``. Running it twice gives byte-identical files. This script is ours; the
values are the benchmark's.

Edge cases covered: ``{...}`` pairs left and right of a mention, unpaired braces, a pair broken by
the mention, nested ``{{...}}``, a pair holding a newline (not escaped), braces inside a mention
and in a description (never escaped), full-width braces, and a mention in the middle sentence of
three. Mentions sit at the very start of the context, at the start and the end of a sentence, and
as a whole sentence. Newlines, ``\\r\\n``, ``\\u2028``, tabs, and runs of two, three and four
spaces appear inside sentences and descriptions. Descriptions have text between and after their
sentence spans, spans out of order and overlapping, and no spans at all. A context has
overlapping sentence spans (the first one holding the mention wins). The texts use Latin,
Cyrillic, Arabic and Japanese, and one has an emoji outside the Basic Multilingual Plane before
a mention (offsets are code points).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# A text is a list of parts: ("s", text) is a sentence span, ("x", text) lies in none.
# A mention is (sentence index, surface, entity id); the surface's first occurrence in that sentence.

ENTITIES = [
    ("Q1", "Kofi Annan", "en", [
        ("s", "Kofi Atta Annan was a Ghanaian diplomat."), ("x", "[1] "),
        ("s", " He served as the seventh\nSecretary-General of the United Nations  from 1997 to 2006."),
        ("x", " "), ("s", "See {{Infobox officeholder}} and {notes}."), ("x", " (born 1938)\n")]),
    ("Q2", "Berlin", "de", [
        ("s", "Berlin ist die Hauptstadt   Deutschlands."), ("x", "\n\n"),
        ("s", "Mit rund 3,7 Millionen Einwohnern \n ist Berlin die bevölkerungsreichste\r\nStadt.")]),
    ("Q3", "東京都", "ja", [
        ("s", "東京都は日本の首都である。"), ("x", "\u3000"), ("s", "人口は約1400万人🏙。"), ("x", "（2020年）")]),
    ("Q4", "القاهرة", "ar", [("s", "القاهرة هي عاصمة مصر.\u2028وهي أكبر مدينة في العالم العربي."), ("x", "\n")]),
    ("Q5", "Київ", "uk", [("s", "Київ — столиця України."), ("x", " "), ("s", "Місто    на Дніпрі.")]),
    ("Q6", "Lima", "es", [("x", "Lima es la capital del Perú.")]),
]
# Q5's spans are written out of order plus one overlapping span: (1, 0, (0, 4)) below.
ENTITY_SPAN_ORDER = {"Q5": [1, 0, (0, 4)]}

ARTICLES = [
    ("en", "N1001", "Annan visits Berlin", [
        ("s", "Kofi Annan arrived in Berlin on Monday {local time}."), ("x", " "),
        ("s", "Officials {unnamed} said Annan {the former UN chief} would meet the mayor {sic}."), ("x", "  "),
        ("s", "The talks were held in Berlin"), ("x", ".\n"),
    ], [(0, "Kofi Annan", "Q1"), (1, "Annan", "Q1"), (2, "Berlin", "Q2")]),
    ("de", "N1002", "Pressekonferenz in Berlin", [
        ("s", "Der Bürgermeister von Berlin sprach\nam Dienstag  vor der Presse."), ("x", "\n"),
        ("s", 'Ein Sprecher {sagte: "Berlin} bleibt {offen" und {{geteilt}} {a\nb}.'), ("x", "\n"),
        ("s", "Berlin"),
    ], [(0, "Berlin", "Q2"), (1, "Berlin", "Q2"), (2, "Berlin", "Q2")]),
    ("ja", "N1003", "都知事が会見", [
        ("s", "東京都｛とうきょうと｝の知事は{注1}記者会見を開いた。"), ("s", "会見は東京都庁で行われた。"),
    ], [(0, "東京都", "Q3"), (1, "東京都", "Q3")]),
    ("ar", "N1004", "قمة في القاهرة", [
        ("s", "🙂 القاهرة تستضيف القمة العربية\u2028هذا الأسبوع {تقرير}."), ("x", " "),
        ("s", "وصل الوفد إلى المطار صباحاً."),
    ], [(0, "القاهرة", "Q4")]),
    ("uk", "N1005", "Делегація в Києві", [
        ("s", "Київ прийняв делегацію."), ("x", " "), ("s", "Мер Києва виступив    з промовою."),
    ], [(0, "Київ", "Q5"), (1, "Києва", "Q5")]),
    ("es", "N1006", "Proyecto en Lima", [
        ("s", " El proyecto {Lima} 2027 fue presentado   ayer en {Lima}.\t"),
    ], [(0, "{Lima}", "Q6")]),
]
# The Ukrainian article's first span is the whole text, so both mentions fall in it first.
ARTICLE_EXTRA_FIRST_SPAN = {"N1005": True}

PAIRS = [
    ("Kofi Annan", [
        ("s", "{{Use dmy dates}} Annan was born in Kumasi {{citation needed}}."), ("x", " "),
        ("s", "He studied economics."),
    ], (0, "Annan"), "Q1"),
    ("Berlin summit", [
        ("s", "The city hosted the summit."), ("x", " "),
        ("s", "Delegates {and press} travelled to Berlin\nby train  and bus {mostly}."), ("x", " "),
        ("s", "It ended on Friday."),
    ], (1, "Berlin", ), "Q2"),
    ("Kyiv", [("s", "He visited Kyiv"), ("x", ". "), ("s", "Then he left.")], (0, "Kyiv"), "Q5"),
    ("Tokyo", [("s", "Tokyo\tMetropolis is large.\r\nIt grew  \n  fast.")], (0, "Tokyo"), "Q3"),
]


def build(parts):
    """(text, sentence spans, start offset of each sentence) of a parts list."""
    text, spans = "", []
    for kind, piece in parts:
        if kind == "s":
            spans.append({"start": len(text), "end": len(text) + len(piece)})
        text += piece
    return text, spans


def locate(text, spans, sentence, surface):
    start = spans[sentence]["start"] + text[spans[sentence]["start"]:spans[sentence]["end"]].index(surface)
    return {"start": start, "end": start + len(surface), "text": surface}


def entity_rows():
    rows = []
    for qid, title, lang, parts in ENTITIES:
        description, spans = build(parts)
        if qid in ENTITY_SPAN_ORDER:
            spans = [spans[k] if isinstance(k, int) else {"start": k[0], "end": k[1]}
                     for k in ENTITY_SPAN_ORDER[qid]]
        rows.append({"entity_id": qid, "title": title, "description": description, "sentence_spans": spans,
                     "description_language": lang,
                     "description_url": f"https://{lang}.wikipedia.org/wiki/{title.replace(' ', '_')}"})
    return rows


def article_rows():
    rows = []
    for lang, doc_id, title, parts, mentions in ARTICLES:
        text, spans = build(parts)
        located = [(locate(text, spans, k, surface), qid) for k, surface, qid in mentions]
        if ARTICLE_EXTRA_FIRST_SPAN.get(doc_id):
            spans = [{"start": 0, "end": len(text)}, *spans]
        context = {"document_title": title, "document_url": f"https://{lang}.wikinews.org/wiki/{doc_id}",
                   "document_id": doc_id, "language": lang, "text": text, "sentence_spans": spans}
        rows.append({"context": context, "mentions": [
            {"example_id": f"{doc_id}-{lang}-{i}", "mention_span": span, "entity_id": qid}
            for i, (span, qid) in enumerate(located)]})
    return rows


def pair_rows(entities):
    by_id = {e["entity_id"]: e for e in entities}
    rows = []
    for i, (title, parts, (k, surface), qid) in enumerate(PAIRS):
        text, spans = build(parts)
        context = {"document_title": title, "section_title": "Introduction",
                   "document_url": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}",
                   "document_id": f"Q90{i}", "language": "en", "text": text, "sentence_spans": spans}
        mention = {"example_id": f"wp-train-{i}", "mention_span": locate(text, spans, k, surface), "entity_id": qid}
        rows.append({"contextual_mention": {"context": context, "mention": mention}, "entity": by_id[qid]})
    return rows


def rejected_rows(good):
    """Bad ``wikipedia_pairs`` rows, each a copy of ``good`` with one defect."""
    def variant(change):
        row = copy.deepcopy(good)
        change(row["contextual_mention"]["context"], row["contextual_mention"]["mention"], row["entity"])
        return row

    def crossing(context, mention, entity):  # from inside sentence 0 into sentence 1
        start, end = context["sentence_spans"][0]["end"] - 3, context["sentence_spans"][1]["start"] + 2
        mention["mention_span"] = {"start": start, "end": end, "text": context["text"][start:end]}

    def no_spans(context, mention, entity):
        context["sentence_spans"] = []

    def span_past_end(context, mention, entity):
        context["sentence_spans"][-1]["end"] = len(context["text"]) + 1

    def text_mismatch(context, mention, entity):
        mention["mention_span"]["text"] = "Anan"

    def no_mention_span(context, mention, entity):
        del mention["mention_span"]

    def no_entity_spans(context, mention, entity):
        del entity["sentence_spans"]

    def entity_span_empty(context, mention, entity):
        entity["sentence_spans"][0] = {"start": 5, "end": 5}

    cases = {"crossing_mention": crossing, "no_sentence_spans": no_spans, "sentence_span_past_end": span_past_end,
             "mention_text_mismatch": text_mismatch, "missing_mention_span": no_mention_span,
             "missing_entity_sentence_spans": no_entity_spans, "empty_entity_span": entity_span_empty}
    return {name: variant(change) for name, change in cases.items()}


def script_settings(xtreme: Path) -> dict:
    """``MAX_SEQ_LEN`` of both Mewsli-X scripts (they must agree) and the eval's ``--pool_type``."""
    lengths = set()
    for name in ("train_mewslix.sh", "run_eval_mewslix.sh"):
        found = re.findall(r"^MAX_SEQ_LEN=(\d+)$", (xtreme / "scripts" / name).read_text(), re.M)
        if len(found) != 1:
            raise SystemExit(f"scripts/{name}: expected one MAX_SEQ_LEN=, found {found}")
        lengths.add(int(found[0]))
    if len(lengths) != 1:
        raise SystemExit(f"train_mewslix.sh and run_eval_mewslix.sh disagree on MAX_SEQ_LEN: {lengths}")
    pool = re.findall(r"--pool_type (\w+)", (xtreme / "scripts" / "run_eval_mewslix.sh").read_text())
    return {"max_seq_len": lengths.pop(), "eval_pool_type": pool}


def dump_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(xtreme: Path) -> None:
    sys.path.insert(0, str(xtreme / "third_party"))
    import utils_mewslix as um

    entities = entity_rows()
    dump_jsonl(HERE / "candidate_set_entities.jsonl", entities)
    dump_jsonl(HERE / "wikinews_mentions-test.jsonl", article_rows())
    pairs = pair_rows(entities)
    dump_jsonl(HERE / "wikipedia_pairs-train.jsonl", pairs)

    quiet = contextlib.redirect_stdout(io.StringIO())  # preprocess_mention prints each escaping
    with quiet:
        loaded = um.load_jsonl(HERE / "candidate_set_entities.jsonl", um.Entity)
        entity_texts = [[e.entity_id, um.preprocess_entity_description(e)] for e in loaded]
        articles = um.load_jsonl(HERE / "wikinews_mentions-test.jsonl", um.ContextualMentions)
        mentions = [[cm.mention.example_id, cm.context.language, cm.mention.entity_id, um.preprocess_mention(cm)]
                    for article in articles for cm in article.unnest_to_single_mention_per_context()]
        loaded_pairs = um.load_jsonl(HERE / "wikipedia_pairs-train.jsonl", um.MentionEntityPair)
        pair_texts = [[um.preprocess_mention(p.contextual_mention), um.preprocess_entity_description(p.entity)]
                      for p in loaded_pairs]
        rejected = {}
        for name, row in rejected_rows(pairs[0]).items():
            try:
                pair = um.MentionEntityPair.from_json(row)
                um.preprocess_mention(pair.contextual_mention)
                um.preprocess_entity_description(pair.entity)
            except Exception as e:  # whatever the benchmark raises is the record
                rejected[name] = {"row": row, "benchmark_raises": type(e).__name__}
            else:
                raise SystemExit(f"{name}: the benchmark accepted it; not a rejected case")

    sources = ["third_party/utils_mewslix.py", "scripts/train_mewslix.sh", "scripts/run_eval_mewslix.sh"]
    doc = {"about": {"made_by": "tests/golden/mewslix/make.py",
                     "sha256": {name: hashlib.sha256((xtreme / name).read_bytes()).hexdigest() for name in sources},
                     **script_settings(xtreme)},
           "entities": entity_texts, "mentions": mentions, "pairs": pair_texts, "rejected": rejected}
    (HERE / "expected.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
