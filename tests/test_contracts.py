"""One shared suite per registry: every task family, every robust method and every catalogue
entry goes through the same checks, so a new entry is tested the day it is registered.

- Families (``trainables.tasks.FAMILIES``): the ``TaskFamily`` protocol, then one target task of
  each family end to end on the tiny model: its trainer's English data -> features -> batch ->
  head -> finite loss with gradients; its test data -> raw outputs -> one prediction per example
  -> metrics in percent -> files in the official layout that the folder evaluator re-scores to
  the same numbers.
- Robust methods (``trainables.robust.METHODS``): each built from its registry entry satisfies
  ``RobustMethod``, and the protocols its declared capabilities promise.
- Catalogue entries (``trainables.catalog.CATALOG``): each resolves to a family, a loader-facing
  task whose head builds, a source (hub or local files, or how to get them), and a domain;
  entries with built-in data load, encode and train one step.
- A ``gpu``-marked test of the bf16 autocast / fused AdamW / NCCL path (skipped without CUDA).
"""

from __future__ import annotations

import pytest
import torch

from trainables.catalog import CATALOG, DOMAINS, FORMAT_FAMILY
from trainables.data import DataError
from trainables.models import load_encoder, load_tokenizer
from trainables.robust import METHODS, build_method
from trainables.robust.base import Augmenter, RobustMethod, Smoother
from trainables.scoring.evaluator import BENCHMARKS
from trainables.tasks import ALL_TASKS, FAMILIES, family, target_task
from trainables.tasks.base import Encoding, TaskFamily, TaskModel

ENC = Encoding(max_length=64, doc_stride=16, max_query_length=16)


def _present(task, root, split: str, lang: str) -> bool:
    try:
        return all(p.is_file() for p in task.mirror_paths(str(root), split, lang))
    except DataError:
        return False


def _representative(name: str, root) -> tuple[str, str]:
    """The first scored target task of family ``name`` with test data in the mirror, and a language."""
    for key, task in ALL_TASKS.items():
        if task.family == name and task.target and key in BENCHMARKS["xtreme-r"]:
            langs = sorted(task.languages, key=lambda lang: lang != "en")
            lang = next((lg for lg in langs if _present(task, root, "test", lg)), None)
            if lang is not None:
                return key, lang
    raise AssertionError(f"no target task of family {name} has test data in the test mirror")


def _one_step(fam, task, examples, tok, tiny_model) -> None:
    feats = fam.encode(tok, examples[:8], ENC, train=True)
    encoder = load_encoder(tiny_model)
    model = TaskModel(encoder, fam.head(encoder, task))
    batch = fam.collate(feats[:4], tok.pad_token_id)
    loss = fam.loss(model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}),
                    batch)
    loss.backward()
    assert torch.isfinite(loss) and encoder.get_input_embeddings().weight.grad is not None


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_end_to_end(name, mirror_dir, demo_dir, checkpoint, tmp_path):
    """Every family, with the built-in model and with mBERT- and XLM-R-format checkpoints."""
    tiny_model = checkpoint
    fam = family(name)
    assert isinstance(fam, TaskFamily) and fam.name == name
    key, lang = _representative(name, mirror_dir)
    tok = load_tokenizer(tiny_model)
    trainer = target_task(key).trainer
    train_root = demo_dir if trainer.key == "xnli" else mirror_dir
    _one_step(family(trainer.family), trainer, family(trainer.family).load(trainer, "train", "en", str(train_root)),
              tok, tiny_model)

    task = target_task(key)
    examples = fam.load(task, "test", lang, str(mirror_dir))
    feats = fam.encode(tok, examples, ENC, train=False)
    encoder = load_encoder(tiny_model)
    model = TaskModel(encoder, fam.head(encoder, task)).eval()
    raw = []
    with torch.no_grad():
        for i in range(0, len(feats), 16):
            batch = fam.collate(feats[i:i + 16], tok.pad_token_id)
            out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch})
            raw += fam.raw(out, batch)
    assert len(raw) == len(feats)
    preds = fam.decode(task, examples, feats, raw)
    n = len(examples.queries) if hasattr(examples, "queries") else len(examples)
    assert len(preds) == n
    score = fam.score(task, lang, examples, preds)
    assert score and all(0.0 <= v <= 100.0 for v in score.values()), score
    fam.write(task, lang, examples, preds, tmp_path / "p", tmp_path / "l")
    bench = BENCHMARKS["xtreme-r"][key]
    reread = bench.metric(bench.reader(tmp_path / "l" / key / f"test-{lang}.{bench.suffix}"),
                          bench.reader(tmp_path / "p" / key / f"test-{lang}.{bench.suffix}"), lang)
    assert reread == pytest.approx(score)


@pytest.mark.parametrize("key", sorted(METHODS))
def test_every_method_is_what_it_declares(key):
    info = METHODS[key]
    method = build_method(key, 0.5 if info.uses_noise else 0.0)  # its loss: test_data_models
    assert isinstance(method, RobustMethod)
    for flag in ("backpropagates", "augments", "smooths_predictions"):
        assert isinstance(getattr(method, flag), bool), flag
    assert isinstance(method, Augmenter) == method.augments  # the loop rewrites the data of these only
    if method.smooths_predictions:  # an option of a method that can vote (rs_rp: smoothed_eval)
        assert isinstance(method, Smoother)


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_catalogue_entry_resolves(key, demo_dir, tiny_model):
    entry = CATALOG[key]
    assert entry.format in FORMAT_FAMILY and entry.family in FAMILIES
    assert key in DOMAINS[entry.domain] or entry.miniature  # miniature tasks are named, never defaults
    assert entry.hub or entry.mirror or entry.notes, f"{key}: no source and no note on how to get it"
    task = entry.task
    fam = family(task.family)
    assert isinstance(fam.head(load_encoder(tiny_model), task), torch.nn.Module)
    if entry.demo:
        _one_step(fam, task, fam.load(task, "train", "en", str(demo_dir)), load_tokenizer(tiny_model), tiny_model)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_fused_adamw_and_nccl_on_the_gpu(tmp_path):
    """The fast path a GPU sweep takes: bf16 autocast, fused AdamW, and an NCCL process group
    (one rank) all-reducing a gradient; the step is finite and moves the weights."""
    import os

    import torch.distributed as dist

    from trainables import performance as perf
    from trainables.optimiser import build_optimizer

    device = torch.device("cuda")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 3)).to(device)
        opt = build_optimizer(model, 1e-3, 0.01, device)
        assert opt.defaults.get("fused") is True
        amp = perf.autocast_dtype("auto", device)
        assert amp == torch.bfloat16
        before = [p.detach().clone() for p in model.parameters()]
        with perf.autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 64, device=device)),
                                                     torch.randint(0, 3, (8,), device=device))
        loss.backward()
        for p in model.parameters():
            dist.all_reduce(p.grad)
        opt.step()
        assert torch.isfinite(loss) and any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    finally:
        dist.destroy_process_group()
