"""What a stage trains on and evaluates, as features: ``StageData``.

Every stage's ``StageConfig.stage`` decides it:

- ``intermediate``: the English intermediate tasks of the sweep's domain, each a part with its
  own family and fresh head (``trainables.mixing``), the domain-wide ``max_examples`` shared
  between them; no evaluation.
- ``recipe-<task>``: a benchmark-recipe stage (e.g. SocialIQA before XCOPA), plain training.
- ``finetune``: the target's English training data (``TargetTask.trainer``: the task itself,
  or SQuAD for XQuAD/MLQA/Tatoeba), rewritten first by a method that ``augments`` (RS-DA);
  its English dev set (the ``objective``, when the task has one) and every target language's
  test set, plus the generalized cross-lingual pairs where asked.

Tokenised features come from the Arrow feature cache (``trainables.tasks.base.cached_features``)
shared by all trials of a storage root; the key holds the tokenizer's fingerprint, the
encoding settings, the data's source (files' size and mtime, or the hub id) and the cap.
"""

from __future__ import annotations

from dataclasses import replace

from trainables import data as D
from trainables import schema as N
from trainables.catalog import intermediate_task
from trainables.config import StageConfig
from trainables.mixing import Part, split_cap
from trainables.robust.base import RobustMethod
from trainables.tasks import family, target_task
from trainables.tasks.base import cached_features, source_stamp, tokenizer_fingerprint

FEATURES_VERSION = 3
"""In the feature-cache key; bumped when a family's encoding changes (2: the XTREME-R protocol
encodings of QA windows, tagging's unknown words and multiple-choice pairs; 3: LAReQA's
sentence + paragraph candidates, Mewsli-X text as ``utils_mewslix.py`` prepares it and lowercased
for XLM-R, XLM-R tagging's second ``</s>``)."""


class EvalSet:
    """One named evaluation set: which task/language, its examples and features."""

    def __init__(self, name: str, task, lang: str, examples, features):
        self.name, self.task, self.lang, self.examples, self.features = name, task, lang, examples, features


class StageData:
    """What a stage trains on (task entry, family, features) and evaluates."""

    def __init__(self, cfg: StageConfig, tokenizer, method: RobustMethod | None = None):
        self.cfg, self.tokenizer = cfg, tokenizer
        self.diagnostics: dict[str, float] = {}
        self.pairs: list[EvalSet] = []  # generalized cross-lingual pairs (finetune, if asked)
        self.enc = cfg.training.encoding
        self.fingerprint = tokenizer_fingerprint(tokenizer)
        stage = cfg.stage
        if stage == "intermediate":  # the domain's tasks, each its own part (family, head)
            tasks = [D.resolve_labels(intermediate_task(k).task, cfg.data_dir) for k in cfg.intermediate_tasks]
            loaded = [family(t.family).load(t, "train", "en", cfg.data_dir) for t in tasks]
            caps = split_cap([len(x) for x in loaded], cfg.schedule.max_examples, cfg.mixing)
            self.parts = [Part(t.key, t, family(t.family), self._features(
                D.cap(x, c, cfg.seed), "train", "en", True, t, family(t.family),
                source=[self._source(t, "train", "en"), c])) for t, x, c in zip(tasks, loaded, caps)]
            self.task, self.family, self.train = self.parts[0].task, self.parts[0].family, self.parts[0].features
            self.dev: list[EvalSet] = []
            self.final: list[EvalSet] = []
            return
        self.target = target_task(cfg.target_task)
        self.task = target_task(cfg.recipe_task) if stage.startswith("recipe") else self.target.trainer
        self.family = family(self.task.family)
        examples = D.cap(self.family.load(self.task, "train", "en", cfg.data_dir),
                         cfg.schedule.max_examples, cfg.seed)
        augment = None
        if stage == "finetune" and method is not None and method.augments:  # RS-DA rewrites the English set
            examples, self.diagnostics = method.augment(examples, self.family, cfg.seed)
            augment = method.identity()
        self.train = self._features(examples, "train", "en", train=True, augment=augment)
        pool = cfg.training.negatives_pool if stage == "finetune" else None
        self.parts = [Part(self.task.key, self.task, self.family, self.train,
                           {"negatives_pool": pool} if pool is not None else {})]
        self.dev, self.final = [], []
        if stage == "finetune":
            has_dev = "dev" in self.task.hub if cfg.data_dir == "hub" else (
                "dev" in self.task.mirror or self.task.from_hub(cfg.data_dir, "dev", "en"))
            if has_dev:
                self.dev.append(self._eval_set(N.dev_set(self.task.key), self.task, "dev", "en"))
            for lang in cfg.languages:
                self.final.append(self._eval_set(N.lang_set(self.target.key, lang), self.target, "test", lang))
            if cfg.generalized:
                self.pairs = self._generalized_sets()

    def _generalized_sets(self) -> list[EvalSet]:
        """Every (l1, l2), l1 != l2: premise of line i in l1, hypothesis of line i in l2 (the
        same-language pairs are the test sets themselves, scored once; ``evaluation.generalized_metrics``
        counts them in). The test sets must be parallel: same length, same label on every line."""
        by_lang = {s.lang: s for s in self.final}
        out = []
        for l1, s1 in by_lang.items():
            for l2, s2 in by_lang.items():
                if l1 == l2:
                    continue
                if len(s1.examples) != len(s2.examples) or any(
                        a.label != b.label for a, b in zip(s1.examples, s2.examples)):
                    raise D.DataError(f"{self.target.key} test sets of {l1} and {l2} are not parallel "
                                      f"(different lengths or labels); generalized evaluation needs parallel sets")
                examples = [replace(a, hypothesis=b.hypothesis) for a, b in zip(s1.examples, s2.examples)]
                feats = self._features(examples, "test", f"{l1}-{l2}", False, self.target, self.family,
                                       source=[self._source(self.target, "test", l1),
                                               self._source(self.target, "test", l2)])
                out.append(EvalSet(N.pair_set(self.target.key, l1, l2), self.target, f"{l1}-{l2}", examples, feats))
        return out

    def _source(self, task, split: str, lang: str) -> list:
        if self.cfg.data_dir == "hub":
            return ["hub", *task.hub_source(split, lang)]
        return source_stamp(task.files_read(self.cfg.data_dir, split, lang))

    def _features(self, examples, split: str, lang: str, train: bool, task=None, fam=None, source=None,
                  augment=None):
        task, fam = task or self.task, fam or self.family
        key = {"v": FEATURES_VERSION, "augment": augment, "tokenizer": self.fingerprint, "family": fam.name,
               "task": task.key,
               "split": split, "lang": lang, "train": train, "encode": vars(self.enc),
               "source": source if source is not None else self._source(task, split, lang),
               "n": len(examples), "cap": [self.cfg.schedule.max_examples, self.cfg.seed] if train else None}
        return cached_features(self.cfg.cache_dir, key,
                               lambda: fam.encode(self.tokenizer, examples, self.enc, train))

    def _eval_set(self, name: str, task, split: str, lang: str) -> EvalSet:
        fam = family(task.family)
        examples = fam.load(task, split, lang, self.cfg.data_dir)
        return EvalSet(name, task, lang, examples, self._features(examples, split, lang, False, task, fam))
