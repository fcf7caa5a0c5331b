"""What every benchmark shares: the data (sentence pairs from the XQuAD fixture), the
model and tokenizer built on the spot (``Setup``), medians of repeats, and the result row."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


from trainables.models import load_encoder, train_wordpiece  # noqa: E402
from trainables.stage_data import EvalSet  # noqa: E402
from trainables.tasks import family, target_task  # noqa: E402
from trainables.tasks.base import Encoding, TaskModel  # noqa: E402
from trainables.tasks.classification import PairExample  # noqa: E402

LANGS = ["en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
MAX_LENGTH = 128
SENTENCE = re.compile(r"(?<=[.!?。।؟])\s*")


def fixtures() -> Path:
    return ROOT / "tests" / "fixtures" / "xquad"


def xquad_pairs(lang: str, every_sentence: bool = False) -> list[PairExample]:
    """(sentence of a paragraph, question) pairs: each question with one sentence of its own
    paragraph, or (``every_sentence``) with every sentence of every paragraph."""
    data = json.loads((fixtures() / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
    sentences = [[s for s in SENTENCE.split(p["context"]) if s.strip()] or [p["context"]] for p in paragraphs]
    every = [s for ss in sentences for s in ss]
    out = []
    for k, p in enumerate(paragraphs):
        for i, qa in enumerate(p["qas"]):
            picks = every if every_sentence else [sentences[k][i % len(sentences[k])]]
            out += [PairExample(s, qa["question"], (i + j) % 3) for j, s in enumerate(picks)]
    return out


class Setup:
    """Tokenizer, model checkpoint, features: built once, shared by the benchmarks."""

    def __init__(self, device: str, quick: bool, work: Path):
        self.device, self.quick, self.work = torch.device(device), quick, work
        texts = [t for lang in LANGS for e in xquad_pairs(lang) for t in (e.premise, e.hypothesis)]
        self.tokenizer = train_wordpiece(texts, 12000, 512)
        from transformers import BertConfig, BertModel

        size = (dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
                if self.device.type == "cpu" else dict(hidden_size=768, num_hidden_layers=12,
                                                      num_attention_heads=12, intermediate_size=3072))
        torch.manual_seed(0)
        self.model_dir = str(work / "model")
        BertModel(BertConfig(vocab_size=len(self.tokenizer), max_position_embeddings=512, **size),
                  add_pooling_layer=False).save_pretrained(self.model_dir)
        self.tokenizer.save_pretrained(self.model_dir)
        self.size = size
        self.fam, self.task = family("classification"), target_task("xnli")
        enc = Encoding(MAX_LENGTH, 128, 64)
        train = xquad_pairs("en", every_sentence=True)
        self.train = self.fam.encode(self.tokenizer, train, enc, True)
        self.eval_sets = []
        for lang in LANGS:
            ex = xquad_pairs(lang)
            self.eval_sets.append(EvalSet(f"xquad-pairs/{lang}", self.task, lang, ex,
                                          self.fam.encode(self.tokenizer, ex, enc, False)))
        self.batch_size = 32

    def model(self, attention: str = "sdpa") -> TaskModel:
        torch.manual_seed(0)
        encoder = load_encoder(self.model_dir, attention=attention)
        return TaskModel(encoder, self.fam.head(encoder, self.task)).to(self.device)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def median_of(fn, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    values = [fn() for _ in range(repeats)]
    return statistics.median(values), values


def row(ours, baseline, ratio, unit: str, note: str, goal: str, meets: bool | None) -> dict:
    """One result. ``ratio`` is the figure the goal is stated on: ours / baseline for rates and
    step-time multiples, baseline / ours (a speed-up) for "cheaper" and "faster" goals."""
    return {"ours": ours, "baseline": baseline, "ratio": ratio, "unit": unit, "note": note, "goal": goal,
            "meets_goal": meets}
