"""Target tasks: the XTREME-R suite (plus PAWS-X from XTREME), one registry entry per task.

An entry says which *family* module handles it (inputs, head, decoding, metric), its
evaluation languages (exactly the official evaluator's lists, in its order), its English
training data, its per-language evaluation split, its hub source and its local-mirror layout.

How a trial uses an entry (``trainables.trial``)::

    pretrained encoder
      -> [intermediate stage: the sweep's domain axis; skipped for domain "none"]
      -> [recipe stages: the benchmark's own fixed English pre-training, e.g. SocialIQA for
          XCOPA; plain training, the same for every cell]
      -> fine-tuning stage: English training data of ``train_from`` (default: the task
         itself) with the trial's robust method; English dev score every epoch (objective)
      -> zero-shot evaluation of every language with the task's own family

- XCOPA follows the XTREME-R recipe: SocialIQA, then English COPA, then XCOPA. The sweep's
  intermediate domain comes *before* SocialIQA, so every cell gets the benchmark recipe and
  the domain axis measures what the domain adds on top of it (``domain: none`` is exactly
  the XTREME-R baseline).
- Tatoeba is evaluated with an encoder fine-tuned on SQuAD, as XTREME-R does:
  ``train_from: squad`` makes the fine-tuning stage train extractive QA on SQuAD v1.1 (with
  the robust method), and the retrieval family then embeds Tatoeba with that encoder (no
  head). The sweep expresses it by targeting ``tatoeba``; nothing else changes.

Local mirror: ``{data_dir}/`` + the entry's ``mirror`` template per split, in the raw
formats the benchmark ships; ``{lang}``, ``{iso3}`` (Tatoeba's ISO 639-3 file codes) and
``{name}`` (TyDiQA's English language names) are filled in, and a ``*`` matches several
files that are read in sorted order (UD treebanks of one language). ``README.md`` lists them.

Hub sources are the repos as they are on the hub today (``tests/hub_repos.py`` builds each in
its real schema). Where the hub cannot hold what the benchmark reads, the entry says so:
``hub_languages`` / ``hub_gap`` (UD-POS's UD 2.7 languages are not in ``google/xtreme``; a sweep
on the hub naming them is refused at validation, with where to get them), and ``raw_first``
(PAWS-X and UD-POS, whose hub copies depart from the benchmark's files: a mirror's raw files win
over its parquet copy, and a sweep reading the hub copy prints which it reads and how it departs).
``source_kind`` / ``describe_source`` say what a sweep reads for a split and language.
"""

from __future__ import annotations

import glob
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.data import DataError, parquet_path
from trainables.names import unknown

if TYPE_CHECKING:  # torch: not imported by the driver
    from trainables.tasks.base import TaskFamily

FAMILIES = ("classification", "multiple_choice", "tagging", "qa", "retrieval")

UPOS = ("NOUN", "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X")
NER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# Tatoeba file codes (LASER release), as XTREME-R maps them.
ISO3 = {"af": "afr", "ar": "ara", "az": "aze", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell",
        "es": "spa", "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb",
        "hi": "hin", "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat",
        "kk": "kaz", "ko": "kor", "lt": "lit", "ml": "mal", "mr": "mar", "nl": "nld", "pl": "pol",
        "pt": "por", "ro": "ron", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha",
        "tl": "tgl", "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "cmn"}
# TyDiQA-GoldP file names and question-id prefixes use English language names.
TYDIQA_NAMES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
                "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}
# UD-POS hub configs (google/xtreme, UD 2.5) use English language names.
UD_NAMES = {"af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
            "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
            "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
            "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
            "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
            "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
            "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese"}


def _langs(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


@dataclass(frozen=True)
class TargetTask:
    """A task a family can load: its languages, files in a mirror, hub sources and labels."""
    key: str
    family: str
    """Module under ``trainables.tasks`` that handles this task."""
    languages: tuple[str, ...]
    """Evaluation languages, as the official evaluator lists them."""
    mirror: dict[str, str]
    """split (train/dev/test) -> path template under the mirror directory."""
    mirror_format: str = ""
    """Which of the family's raw formats the files are in (conllu/panx, copa/siqa, ...)."""
    labels: tuple[str, ...] = ()
    hub: dict[str, tuple] = field(default_factory=dict)
    """split -> (dataset id, config template, hub split)."""
    hub_fields: tuple[str, ...] = ()
    train_from: str | None = None
    """Entry whose English train/dev data and family train the encoder (default: this one)."""
    recipe: tuple[str, ...] = ()
    """Benchmark-recipe stages trained (plain) before fine-tuning, e.g. ('siqa',) for XCOPA."""
    qa_normalization: str = "squad"
    group: str = ""
    benchmark: str = "xtreme-r"
    target: bool = True
    """False for training-only entries (squad, siqa)."""
    demo_languages: tuple[str, ...] = ()
    """Languages of the built-in demo data (``data_dir: builtin``)."""
    source: str = ""
    """Where the raw data comes from (for the README and error messages)."""
    protocol: dict = field(default_factory=dict)
    """The benchmark's fine-tuning settings for this target (``training.*`` keys), from the
    XTREME-R script that trains it; a space file's ``training`` section overrides each."""
    hub_languages: tuple[str, ...] = ()
    """The languages the hub's test source serves; () = all of ``languages``."""
    hub_gap: str = ""
    """Where to get the languages the hub does not serve (said at validation)."""
    raw_first: str = ""
    """Set where the hub copy departs from the benchmark's own files: how it departs. A mirror's
    raw files then win over its parquet copy, and a sweep on the hub says what it reads."""

    @property
    def miniature(self) -> bool:
        """A task of the built-in miniature world (``trainables.miniature``)."""
        return self.benchmark == "miniature"

    @property
    def trainer(self) -> TargetTask:
        """The entry whose training data and family the fine-tuning stage uses."""
        return target_task(self.train_from) if self.train_from else self

    @property
    def mirror_doc(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.mirror.items())

    def _fill(self, template: str, lang: str) -> str:
        return template.format(lang=lang, iso3=ISO3.get(lang, lang), name=TYDIQA_NAMES.get(lang, lang),
                               Name=UD_NAMES.get(lang, lang))

    def mirror_paths(self, data_dir: str, split: str, lang: str) -> list[Path]:
        if split not in self.mirror:
            raise DataError(f"{self.key} has no '{split}' split in a local mirror ({self.mirror_doc})")
        pattern = str(Path(data_dir) / self._fill(self.mirror[split], lang))
        if "*" not in pattern:
            return [Path(pattern)]
        paths = sorted(Path(p) for p in glob.glob(pattern))
        if not paths:
            gap = f": {self.hub_gap}" if self.hub_gap and split in self.hub and not self.hub_serves(split, lang) else ""
            raise DataError(f"{pattern}: no file matches ({self.key} {split}, language {lang}){gap}")
        return paths

    def mirror_path(self, data_dir: str, split: str, lang: str) -> Path:
        return self.mirror_paths(data_dir, split, lang)[0]

    def hub_serves(self, split: str, lang: str) -> bool:
        """Whether the hub has a source for this split and language (UD-POS: not XTREME-R's UD
        2.7 languages)."""
        return split in self.hub and (split != "test" or not self.hub_languages or lang in self.hub_languages)

    def raw_present(self, data_dir: str, split: str, lang: str) -> bool:
        """Whether a mirror holds the benchmark's raw files for this split and language."""
        if split not in self.mirror or data_dir in ("hub", "builtin"):
            return False
        try:
            return all(p.is_file() for p in self.mirror_paths(data_dir, split, lang))
        except DataError:
            return False

    def from_hub(self, data_dir: str, split: str, lang: str) -> bool:
        """Whether a split comes as hub rows: from the hub itself, or from its parquet copy in
        a mirror (``xlt-data mirror``), which wins over the raw benchmark files, except for a
        task whose hub copy departs from them (``raw_first``: PAWS-X, UD-POS)."""
        if data_dir == "hub":
            return True
        if data_dir == "builtin" or not self.hub_serves(split, lang):
            return False
        if self.raw_first and self.raw_present(data_dir, split, lang):
            return False
        return parquet_path(data_dir, *self.hub_source(split, lang)).is_file()

    def source_kind(self, data_dir: str, split: str, lang: str) -> str:
        """What a sweep reads for one split and language: ``builtin``, ``hub``, ``unserved`` (a
        split or language the hub does not have), ``parquet`` (the mirror's copy of the hub split),
        ``raw`` (the benchmark's files, present) or ``missing``."""
        if data_dir == "hub" and not self.hub_serves(split, lang):
            return "unserved"
        if data_dir in ("builtin", "hub"):
            return data_dir
        if self.from_hub(data_dir, split, lang):
            return "parquet"
        return "raw" if self.raw_present(data_dir, split, lang) else "missing"

    def describe_source(self, kind: str, split: str, lang: str) -> str:
        """``source_kind``'s answer in words, with the hub id or the file layout."""
        if kind == "builtin":
            return "built-in demo data"
        if kind == "unserved":
            return f"nothing: {self.hub_gap if split in self.hub else 'no hub source: use a mirror'}"
        if kind in ("hub", "parquet"):
            hub_id, config, hub_split = self.hub_source(split, lang)
            where = f"{hub_id}[{config or 'default'}] {hub_split}"
            note = " (departs from the benchmark's files *)" if self.raw_first else ""
            return (f"hub {where}" if kind == "hub" else f"parquet copy of {where}") + note
        if split not in self.mirror:
            return f"nothing: {self.key} has no {split} split"
        return f"raw files {self._fill(self.mirror[split], lang)}" + (" (MISSING)" if kind == "missing" else "")

    def reads(self, languages, recipe: bool = True) -> list[tuple[TargetTask, str, str, str]]:
        """(task, split, language, why) for everything a sweep on this target reads: the
        fine-tuning task's English train (and dev) split, the recipe stages' training data
        and the test split of every language."""
        trainer = self.trainer
        out = [(trainer, "train", "en", "fine-tuning (English train)")]
        if "dev" in trainer.mirror or "dev" in trainer.hub:
            out.append((trainer, "dev", "en", "model selection (English dev)"))
        if recipe:
            out += [(target_task(k), "train", "en", f"benchmark recipe stage {k}") for k in self.recipe]
        return out + [(self, "test", lang, f"zero-shot evaluation ({lang})") for lang in languages]

    def files_read(self, data_dir: str, split: str, lang: str) -> list[Path]:
        """Every local file the family's loader reads for one split and language of a mirror:
        its parquet copy when there is one, else the raw benchmark files (XQuAD-R's test reads
        every language's file, Mewsli-X's also the candidate entities). What the feature
        cache stamps and what the preflight checks; raises DataError for a split the mirror
        layout does not have or a pattern that matches nothing."""
        if self.from_hub(data_dir, split, lang):
            return [parquet_path(data_dir, *self.hub_source(split, lang))]
        paths = self.mirror_paths(data_dir, split, lang)
        if self.mirror_format == "xquad_r" and split == "test":
            paths = [p for lg in self.languages for p in self.mirror_paths(data_dir, split, lg)]
        if self.mirror_format == "mewslix" and split == "test":
            paths = [*paths, paths[0].parent / "candidate_set_entities.jsonl"]
        return paths

    def hub_source(self, split: str, lang: str) -> tuple:
        """(dataset id, config, split) of one split and language (``lang`` "{lang}": the template)."""
        if split not in self.hub:
            raise DataError(f"{self.key} {split}: no hub source in a format datasets can load; use a "
                            f"local mirror ({self.mirror_doc}){'' if self.target else f' [{self.source}]'}")
        if lang != "{lang}" and not self.hub_serves(split, lang):
            raise DataError(f"{self.key} {split} {lang}: {self.hub_gap}")
        hub_id, config, hub_split = self.hub[split]
        return hub_id, (self._fill(config, lang) if config else None), hub_split


def family(name: str) -> TaskFamily:
    """The family module's ``FAMILY`` object (``trainables.tasks.base.TaskFamily``)."""
    if name not in FAMILIES:
        raise KeyError(unknown("task family", name, FAMILIES))
    return importlib.import_module(f"trainables.tasks.{name}").FAMILY


XNLI_LANGS = _langs("ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh")
# The fine-tuning settings of google-research/xtreme's scripts (mBERT / XLM-R base; AdamW eps
# 1e-8, no warm-up and no weight decay unless given here; trainables.optimiser). Their batches:
# 8 x 4 accumulation or 4 x 8 (32 a step, training.batch_size's default), but LAReQA 4 x 4 and
# Mewsli-X 64 x 4 (mBERT; 8 x 4 for XLM-R large), whose forward passes are each their own
# in-batch-negative pool: batch_size = micro-batch x accumulation, negatives_pool = micro-batch.
_CLASSIFY = {"epochs": 5, "learning_rate": 2e-5, "max_length": 128, "weight_decay": 0.0,
             "warmup_ratio": 0.0}                                     # train_xnli.sh, train_pawsx.sh
_TAG = {**_CLASSIFY, "epochs": 10}                                    # train_udpos.sh, train_panx.sh
_QA = {"epochs": 3, "learning_rate": 3e-5, "max_length": 384, "doc_stride": 128, "max_query_length": 64,
       "weight_decay": 0.0001, "warmup_steps": 500}                   # train_qa.sh
_COPA = dict(_CLASSIFY)                                               # train_xcopa.sh: 5 epochs per stage
_LAREQA = {**_CLASSIFY, "epochs": 3, "max_length": 256, "max_query_length": 96,
           "batch_size": 16, "negatives_pool": 4}                    # train_lareqa.sh
_MEWSLIX = {**_CLASSIFY, "epochs": 2, "max_length": 64, "max_query_length": 64,
            "batch_size": 256, "negatives_pool": 64}                 # train_mewslix.sh (mBERT)

_ENTRIES = [
    TargetTask(
        "xnli", "classification", XNLI_LANGS, labels=("entailment", "neutral", "contradiction"),
        mirror={"train": "xnli/train-en.tsv", "dev": "xnli/dev-en.tsv", "test": "xnli/test-{lang}.tsv"},
        hub={"train": ("facebook/xnli", "{lang}", "train"), "dev": ("facebook/xnli", "{lang}", "validation"),
             "test": ("facebook/xnli", "{lang}", "test")},
        hub_fields=("premise", "hypothesis", "label"), group="classification",
        demo_languages=_langs("ar,bg,de,el,en,es,fr,hi,ru,zh"),
        protocol=_CLASSIFY, source="XNLI 1.0 / MultiNLI English train (facebook/xnli)"),
    TargetTask(
        "pawsx", "classification", _langs("de,en,es,fr,ja,ko,zh"), labels=("0", "1"),
        mirror={"train": "pawsx/en/train.tsv", "dev": "pawsx/en/dev_2k.tsv", "test": "pawsx/{lang}/test_2k.tsv"},
        hub={"train": ("google/xtreme", "PAWS-X.{lang}", "train"),
             "dev": ("google/xtreme", "PAWS-X.{lang}", "validation"),
             "test": ("google/xtreme", "PAWS-X.{lang}", "test")},
        hub_fields=("sentence1", "sentence2", "label"), group="classification", benchmark="xtreme",
        protocol=_CLASSIFY, source="PAWS-X x-final (google-research-datasets/paws)",
        raw_first="google/xtreme's PAWS-X was read with csv quoting, which merges and drops rows: English "
                  "train 49,175 of the x-final train.tsv's 49,401, es dev 1,961, ko test 1,999; a mirror's "
                  "x-final files win"),
    TargetTask(
        "xcopa", "multiple_choice", _langs("et,ht,id,it,qu,sw,ta,th,tr,vi,zh"), mirror_format="copa",
        mirror={"train": "copa/train.jsonl", "dev": "copa/val.jsonl", "test": "xcopa/{lang}/test.{lang}.jsonl"},
        hub={"train": ("aps/super_glue", "copa", "train"), "dev": ("aps/super_glue", "copa", "validation"),
             "test": ("cambridgeltl/xcopa", "{lang}", "test")},
        recipe=("siqa",), group="classification",
        protocol=_COPA, source="XCOPA (cambridgeltl/xcopa); English COPA (SuperGLUE); SocialIQA first"),
    TargetTask(
        "siqa", "multiple_choice", ("en",), mirror_format="siqa",
        mirror={"train": "siqa/train.jsonl", "dev": "siqa/dev.jsonl"},
        hub={"train": ("lighteval/siqa", None, "train"), "dev": ("lighteval/siqa", None, "validation")},
        target=False, source="SocialIQA (socialiqa-train-dev: {split}.jsonl + {split}-labels.lst; on the hub the "
                             "parquet copy lighteval/siqa, since allenai/social_i_qa is script-only)"),
    TargetTask(
        "udpos", "tagging", _langs("af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,"
                                   "ru,ta,te,th,tl,tr,ur,vi,yo,zh,lt,pl,uk,wo,ro"),
        mirror_format="conllu", labels=UPOS,
        mirror={"train": "udpos/en/*-ud-train.conllu", "dev": "udpos/en/*-ud-dev.conllu",
                "test": "udpos/{lang}/*-ud-test.conllu"},
        hub={"train": ("google/xtreme", "udpos.English", "train"),
             "dev": ("google/xtreme", "udpos.English", "validation"),
             "test": ("google/xtreme", "udpos.{Name}", "test")},
        hub_fields=("tokens", "pos_tags"), group="tagging",
        protocol=_TAG, hub_languages=tuple(UD_NAMES),
        hub_gap="google/xtreme's udpos configs are XTREME's 33 languages from UD 2.5; XTREME-R takes lt, pl, "
                "uk, wo and ro from UD 2.7 (https://lindat.mff.cuni.cz/repository/xmlui/handle/11234/1-3424): put "
                "their treebanks at {data_dir}/udpos/{lang}/*-ud-test.conllu in a mirror",
        raw_first="google/xtreme's udpos rows keep a multiword token's syntactic words (de 'zu dem') where "
                  "the benchmark tags its surface form ('zum'); a mirror's treebanks win",
        source="Universal Dependencies 2.5 treebanks (2.7 for lt, pl, uk, wo, ro), all treebanks of a language"),
    TargetTask(
        "panx", "tagging", _langs("ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,"
                                  "es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro"),
        mirror_format="panx", labels=NER,
        mirror={"train": "panx/en/train", "dev": "panx/en/dev", "test": "panx/{lang}/test"},
        hub={"train": ("unimelb-nlp/wikiann", "en", "train"), "dev": ("unimelb-nlp/wikiann", "en", "validation"),
             "test": ("unimelb-nlp/wikiann", "{lang}", "test")},
        hub_fields=("tokens", "ner_tags"), group="tagging",
        protocol=_TAG, source="WikiANN with the Rahimi et al. splits (PAN-X)"),
    TargetTask(
        "squad", "qa", ("en",), mirror={"train": "squad/train-v1.1.json", "dev": "squad/dev-v1.1.json"},
        hub={"train": ("rajpurkar/squad", "plain_text", "train"),
             "dev": ("rajpurkar/squad", "plain_text", "validation")},
        target=False, source="SQuAD v1.1"),
    TargetTask(
        "xquad", "qa", _langs("en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro"), mirror={"test": "xquad/xquad.{lang}.json"},
        hub={"test": ("google/xquad", "xquad.{lang}", "validation")}, train_from="squad", group="qa",
        protocol=_QA, source="XQuAD (google-deepmind/xquad); trained on SQuAD v1.1"),
    TargetTask(
        "mlqa", "qa", _langs("en,es,de,ar,hi,vi,zh"),
        mirror={"test": "mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json"},
        hub={"test": ("google/xtreme", "MLQA.{lang}.{lang}", "test")}, train_from="squad",
        qa_normalization="mlqa", group="qa", protocol=_QA,
        source="MLQA v1 (facebookresearch/MLQA); trained on SQuAD v1.1"),
    TargetTask(
        "tydiqa", "qa", _langs("en,ar,bn,fi,id,ko,ru,sw,te"),
        mirror={"train": "tydiqa/tydiqa-goldp-v1.1-train.json",
                "dev": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-english.json",
                "test": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-{name}.json"},
        hub={"train": ("google-research-datasets/tydiqa", "secondary_task", "train"),
             "dev": ("google-research-datasets/tydiqa", "secondary_task", "validation"),
             "test": ("google-research-datasets/tydiqa", "secondary_task", "validation")},
        group="qa", protocol=_QA, source="TyDiQA-GoldP v1.1 (English GoldP train; test = the GoldP dev sets)"),
    TargetTask(
        "tatoeba", "retrieval", _langs("ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,"
                                       "es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,ro"),
        mirror_format="tatoeba", mirror={"test": "tatoeba/tatoeba.{iso3}-eng.{iso3}"},
        train_from="squad", group="retrieval",
        protocol=_QA, source="Tatoeba (facebookresearch/LASER data/tatoeba/v1); encoder fine-tuned on SQuAD v1.1"),
    TargetTask(
        "lareqa", "retrieval", _langs("ar,de,el,en,es,hi,ru,th,tr,vi,zh"), mirror_format="xquad_r",
        mirror={"train": "squad/train-v1.1.json", "dev": "squad/dev-v1.1.json",
                "test": "lareqa/xquad-r/{lang}.json"},
        group="retrieval", protocol=_LAREQA,
        source="XQuAD-R (google-research-datasets/lareqa); dual encoder on SQuAD v1.1"),
    TargetTask(
        "mewslix", "retrieval", _langs("ar,de,en,es,fa,ja,pl,ro,ta,tr,uk"), mirror_format="mewslix",
        mirror={"train": "mewslix/wikipedia_pairs-train.jsonl", "dev": "mewslix/wikipedia_pairs-dev.jsonl",
                "test": "mewslix/wikinews_mentions-test.jsonl"},
        group="retrieval",
        protocol=_MEWSLIX,
        source="Mewsli-X (get-mewsli-x.sh in google-research dense_representations_for_entity_retrieval)"),
]

def _miniature() -> TargetTask:
    """The miniature world's target (``trainables.miniature``): semantic-role tagging in English
    and seven synthetic languages, built in only."""
    from trainables.miniature.data import ROLE_TAGS
    from trainables.miniature.languages import LANGUAGES

    codes = tuple(lg.code for lg in LANGUAGES)
    return TargetTask(
        "roles", "tagging", codes, mirror_format="panx", labels=ROLE_TAGS,
        mirror={"train": "miniature/roles/en/train", "dev": "miniature/roles/en/dev",
                "test": "miniature/roles/{lang}/test"},
        benchmark="miniature", demo_languages=codes, group="miniature",
        protocol={"epochs": 10, "learning_rate": 1e-3, "max_length": 32, "weight_decay": 0.0, "warmup_ratio": 0.0},
        source="the miniature world (trainables.miniature): synthetic languages, built in (data_dir: builtin)")


_ENTRIES.append(_miniature())
ALL_TASKS: dict[str, TargetTask] = {t.key: t for t in _ENTRIES}
TASKS: dict[str, TargetTask] = {k: t for k, t in ALL_TASKS.items() if t.target}
POOLED_TARGETS = tuple(k for k, t in TASKS.items() if "negatives_pool" in t.protocol)
"""The targets fine-tuned with in-batch negatives (``training.negatives_pool``): LAReQA, Mewsli-X."""
"""The tasks a sweep may target."""


def target_task(key: str) -> TargetTask:
    """The task ``key``; an unknown key raises ``KeyError`` naming the targets."""
    if key not in ALL_TASKS:
        raise KeyError(unknown("target task", key, TASKS))
    return ALL_TASKS[key]
