"""Demo data, the TSV loader's errors, the tiny model's from_pretrained path, and rs_rp."""

from __future__ import annotations

import hashlib
import math
import unicodedata

import pytest
import torch

from trainables import data as D
from trainables.catalog import CATALOG, intermediate_task
from trainables.demo_data import write_demo_data
from trainables.models import load_encoder, load_tokenizer
from trainables.robust import METHODS, build_method
from trainables.tasks import family, target_task
from trainables.tasks.base import Encoding, TaskModel
from trainables.tasks.classification import read_pair_tsv

CLS = family("classification")


def load_classifier(path, n):
    encoder = load_encoder(path)
    return TaskModel(encoder, CLS.head(encoder, target_task("xnli")))


def _load(split, lang, demo_dir):
    return CLS.load(target_task("xnli"), split, lang, str(demo_dir))


def encode(tok, examples, max_length):
    return CLS.encode(tok, examples, Encoding(max_length, 128, 64), train=True)


def collate(feats, pad_id):
    return CLS.collate(feats, pad_id)


def _digest(root):
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*.tsv")))).hexdigest()


def test_demo_data_is_deterministic(tmp_path, demo_dir):
    assert _digest(write_demo_data(tmp_path / "again")) == _digest(demo_dir)


def test_demo_target_covers_5_languages_in_3_scripts_with_balanced_labels(demo_dir):
    task = target_task("xnli")
    scripts = set()
    for lang in task.demo_languages:
        rows = _load("test", lang, demo_dir)
        counts = [sum(r.label == k for r in rows) for k in range(3)]
        assert min(counts) >= len(rows) // 3 - 1
        letters = [c for r in rows[:20] for c in r.premise if c.isalpha() and not c.isascii()]
        scripts.add(unicodedata.name(letters[0]).split()[0] if letters else "LATIN")
    assert len(task.demo_languages) >= 5 and len(scripts) >= 3, scripts


def test_every_demo_intermediate_task_loads(demo_dir):
    demo = [e for e in CATALOG.values() if e.demo]
    assert {e.domain for e in demo} >= {"general", "legal", "medical"}
    for entry in demo:
        rows = family(entry.family).load(entry.task, "train", "en", str(demo_dir))
        labels = {r.label for r in rows} if entry.family == "classification" else {t for r in rows for t in r.tags}
        assert len(rows) > 100 and labels == set(range(len(entry.labels))), entry.key


def test_tsv_errors_name_file_and_line(tmp_path):
    p = tmp_path / "test-de.tsv"
    p.write_text("a\tb\tentailment\nc\td\tmaybe\n")
    with pytest.raises(D.DataError, match=r"test-de.tsv:2: label 'maybe' is not one of"):
        read_pair_tsv(p, ("entailment", "neutral", "contradiction"))
    p.write_text("a\tb\tentailment\none\ttoo\tmany\tcolumns\there\n")
    with pytest.raises(D.DataError, match=r"test-de.tsv:2: expected 3 tab-separated columns"):
        read_pair_tsv(p, ("entailment",))
    with pytest.raises(D.DataError, match=r"test-xx.tsv: file not found"):
        read_pair_tsv(tmp_path / "test-xx.tsv", ("entailment",))


def test_cap_is_seeded_and_equal_across_domains():
    xs = list(range(1000))
    assert D.cap(xs, 100, 0) == D.cap(xs, 100, 0) and len(D.cap(xs, 100, 0)) == 100
    assert D.cap(xs, None, 0) is xs


def test_local_only_task_refuses_the_hub():
    entry = intermediate_task("mednli")
    with pytest.raises(D.DataError, match="credentialed"):
        family(entry.family).load(entry.task, "train", "en", "hub")


def test_tiny_model_loads_through_from_pretrained(tiny_model, demo_dir):
    tok = load_tokenizer(tiny_model)
    model = load_classifier(tiny_model, 3)
    feats = encode(tok, _load("dev", "en", demo_dir)[:8], 64)
    batch = collate(feats, tok.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(f["input_ids"]) for f in feats)  # dynamic pad
    labels = batch.pop("labels")
    logits = model(**batch)
    assert logits.shape == (8, 3) and labels.shape == (8,)
    torch.nn.functional.cross_entropy(logits, labels).backward()  # DDP-safe: every trainable parameter is used
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.encoder.pooler.dense.weight.grad is not None  # BERT's classifier reads the pooler


def _batch(tiny_model, demo_dir, n=16):
    tok = load_tokenizer(tiny_model)
    feats = encode(tok, _load("train", "en", demo_dir)[:n], 64)
    return collate(feats, tok.pad_token_id)


@pytest.mark.parametrize("key", sorted(METHODS))
def test_every_method_gives_a_finite_differentiable_loss_and_is_seed_deterministic(
        key, tiny_model, demo_dir):
    batch = _batch(tiny_model, demo_dir)
    torch.manual_seed(0)
    model = load_classifier(tiny_model, 3)
    model.eval()  # no dropout: isolate the method's own randomness
    method = build_method(key, 0.05 if METHODS[key].uses_noise else 0.0)
    losses = []
    for _ in range(2):
        torch.manual_seed(123)
        loss, diag = method.loss(model, model.encoder.get_input_embeddings(), batch, CLS.loss)
        losses.append(loss.item())
    assert math.isfinite(losses[0]) and losses[0] == losses[1]
    loss.backward()
    assert model.head.linear.weight.grad is not None
    assert all(isinstance(v, float) for v in diag.values())


@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.5])
def test_rs_rp_noise_norm_matches_sigma_and_spares_padding(sigma, tiny_model, demo_dir):
    batch = _batch(tiny_model, demo_dir, n=64)
    model = load_classifier(tiny_model, 3)
    embeds = model.encoder.get_input_embeddings()(batch["input_ids"])
    method = build_method("rs_rp", sigma)
    torch.manual_seed(0)
    noisy, norms = method.perturb(embeds, batch["attention_mask"])
    d = embeds.shape[-1]
    assert norms.mean().item() == pytest.approx(sigma * math.sqrt(d), rel=0.05)
    pad = batch["attention_mask"] == 0
    assert pad.any() and torch.equal(noisy[pad], embeds[pad])


def test_rs_rp_rejects_negative_sigma():
    with pytest.raises(ValueError, match=">= 0"):
        build_method("rs_rp", -0.1)


def test_best_dev_selection_restores_the_best_epochs_weights():
    from trainables.checkpoints import BestDev

    model, best = torch.nn.Linear(2, 1), BestDev()
    for epoch, objective in enumerate([0.5, 0.7, 0.6], 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        best.update(model, objective, epoch, world=1)
    assert (best.epoch, best.objective) == (2, 0.7)
    best.restore_into(model)
    assert torch.equal(model.weight, torch.full((1, 2), 2.0))
