"""Robust methods from first principles: each does what its parameters say.

- adversarial: the PGD perturbation of every embedding vector stays within epsilon in the
  configured norm, padding is never perturbed, and it raises the loss more than random
  noise with exactly the same per-vector norms;
- rs_rp: Gaussian noise norms match sigma * sqrt(d), uniform noise stays in its ball with the
  expected mean norm, n copies go through one stacked forward;
- rs_da: the substitution rate matches its expectation on a known table, and punctuation or
  case do not defeat matching;
- invalid settings fail at validation (determinism under a seed: tests/test_data_models.py).
"""

from __future__ import annotations

import random

import pytest
import torch

from orchestrator.spec import SpecError, parse_spec
from trainables.models import load_encoder, load_tokenizer
from trainables.robust import build_method
from trainables.robust.augmentation import SynonymAugmenter
from trainables.robust.base import forward, vector_norms
from trainables.tasks import family, target_task
from trainables.tasks.base import EncodeConfig, TaskModel

CLS = family("classification")


@pytest.fixture(scope="module")
def setup(tiny_model, demo_dir):
    tok = load_tokenizer(tiny_model)
    examples = CLS.load(target_task("xnli"), "train", "en", str(demo_dir))[:32]
    batch = CLS.collate(CLS.encode(tok, examples, EncodeConfig(64), train=True), tok.pad_token_id)
    torch.manual_seed(0)
    encoder = load_encoder(tiny_model)
    model = TaskModel(encoder, CLS.head(encoder.config.hidden_size, target_task("xnli")))
    model.eval()  # no dropout: compare perturbations, not dropout masks
    return model, batch


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("steps", [1, 3])
def test_pgd_stays_within_epsilon_and_spares_padding(setup, norm, steps):
    model, batch = setup
    eps = 0.05
    method = build_method("adversarial", eps, {"steps": steps, "norm": norm})
    embeds = model.encoder.get_input_embeddings()(batch["input_ids"])
    delta = method.attack(model, embeds, batch, CLS.loss)
    norms = vector_norms(delta, norm)
    real = batch["attention_mask"].bool()
    assert norms[real].max() <= eps * (1 + 1e-5)
    assert norms[real].max() >= eps * 0.5  # it does move towards the boundary
    assert (~real).any() and torch.count_nonzero(delta[~real]) == 0
    loss, diag = method.loss(model, model.encoder.get_input_embeddings(), batch, CLS.loss)
    assert diag["delta_norm_max"] <= eps * (1 + 1e-5) and diag["adv_loss"] >= diag["clean_loss"]


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_raises_the_loss_more_than_random_noise_of_the_same_norm(setup, norm):
    model, batch = setup
    eps = 0.5
    method = build_method("adversarial", eps, {"steps": 3, "norm": norm})
    embeds = model.encoder.get_input_embeddings()(batch["input_ids"]).detach()
    delta = method.attack(model, embeds, batch, CLS.loss)
    gen = torch.Generator().manual_seed(0)
    if norm == "l2":  # same per-vector L2 norms, random directions
        rand = torch.randn(delta.shape, generator=gen)
        rand = rand / rand.norm(dim=-1, keepdim=True) * delta.norm(dim=-1, keepdim=True)
    else:  # same L-infinity magnitude per coordinate, random signs
        rand = delta.abs() * (torch.randint(0, 2, delta.shape, generator=gen) * 2 - 1)
    with torch.no_grad():
        clean = CLS.loss(forward(model, batch, inputs_embeds=embeds), batch).item()
        adv = CLS.loss(forward(model, batch, inputs_embeds=embeds + delta), batch).item()
        noisy = CLS.loss(forward(model, batch, inputs_embeds=embeds + rand), batch).item()
    assert adv > noisy and adv > clean, (clean, noisy, adv)
    assert adv - clean > 5 * abs(noisy - clean)


def test_uniform_noise_stays_in_its_ball_with_the_expected_mean_norm(setup):
    model, batch = setup
    embeds = model.encoder.get_input_embeddings()(batch["input_ids"])
    d, r = embeds.shape[-1], 0.2
    torch.manual_seed(0)
    linf = build_method("rs_rp", r, {"distribution": "uniform", "ball": "linf"})
    noisy, norms = linf.perturb(embeds, batch["attention_mask"])
    noise = (noisy - embeds)[batch["attention_mask"].bool()]
    assert noise.abs().max() <= r and noise.abs().mean().item() == pytest.approx(r / 2, rel=0.05)
    l2 = build_method("rs_rp", r, {"distribution": "uniform", "ball": "l2"})
    _, norms = l2.perturb(embeds, batch["attention_mask"])
    assert norms.max() <= r * (1 + 1e-6)
    assert norms.mean().item() == pytest.approx(r * d / (d + 1), rel=0.02)  # E[r U^(1/d)]


def test_rs_rp_copies_average_n_noisy_losses(setup):
    model, batch = setup
    torch.manual_seed(0)
    one, _ = build_method("rs_rp", 0.0, {"copies": 1}).loss(model, model.encoder.get_input_embeddings(),
                                                            batch, CLS.loss)
    four, _ = build_method("rs_rp", 0.0, {"copies": 4}).loss(model, model.encoder.get_input_embeddings(),
                                                             batch, CLS.loss)
    assert four.item() == pytest.approx(one.item(), rel=1e-5)  # sigma 0: n copies of the same loss


def test_substitution_rate_matches_its_expectation_on_a_known_table():
    table = {"a": ["b"], "c": ["d", "e", "f"]}
    text = " ".join(["a", "c", "x", "y"] * 5000)
    for p in (1.0, 0.5):
        aug = SynonymAugmenter(table, p, random.Random(0))
        aug.text(text)
        expected = (p * 1 / 2 + p * 3 / 4) / 4  # per 4 tokens: a changes w.p. p/2, c w.p. 3p/4
        assert aug.rate == pytest.approx(expected, abs=0.01)
    aug = SynonymAugmenter({"market": ["bazaar"]}, 1.0, random.Random(1))
    outs = {aug.text("The Market, MARKET! market.") for _ in range(50)}
    assert "The Bazaar, BAZAAR! bazaar." in outs  # punctuation and case kept, the core matched


def test_rs_da_augments_reproducibly(demo_dir):
    examples = CLS.load(target_task("xnli"), "train", "en", str(demo_dir))[:100]
    method = build_method("rs_da", 1.0, {"copies": 3})
    a, diag = method.augment(examples, CLS, seed=3)
    b, _ = method.augment(examples, CLS, seed=3)
    assert a == b and len(a) == 400 and a[:100] == examples
    assert 0.05 < diag["substitution_rate"] < 0.5
    assert sum(x != y for x, y in zip(a[100:200], examples)) > 50


@pytest.mark.parametrize("robust, expected", [
    ({"methods": ["adversarial"], "noise_magnitude": 0.1, "options": {"adversarial": {"steps": 0}}},
     "options.adversarial.steps: Input should be greater than or equal to 1"),
    ({"methods": ["adversarial"], "noise_magnitude": -0.1}, "noise_magnitude must be >= 0"),
    ({"methods": ["adversarial"], "noise_magnitude": 0.1, "options": {"adversarial": {"norm": "l1"}}},
     "options.adversarial.norm: Input should be 'l2' or 'linf'"),
    ({"methods": ["rs_da"], "noise_magnitude": 0.5, "options": {"rs_da": {"synonyms": "/no/such.json"}}},
     "synonym table '/no/such.json' not found"),
    ({"methods": ["rs_da"], "noise_magnitude": {"choice": [0.5, 2.0]}}, "rs_da reads it as a probability"),
    ({"methods": ["rs_rp"], "noise_magnitude": 0.1, "options": {"rs_rp": {"copeis": 2}}},
     "options.rs_rp.copeis: Extra inputs are not permitted; allowed keys: distribution, ball, copies"),
])
def test_invalid_method_settings_fail_at_validation(robust, expected):
    with pytest.raises(SpecError) as e:
        parse_spec({"name": "x", "robust": robust}, "x.yaml")
    assert expected in "\n".join(e.value.problems)


def test_smoothed_prediction_is_a_majority_vote(setup):
    model, batch = setup
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    plain = model(**inputs).argmax(-1)
    zero = build_method("rs_rp", 0.0, {"smoothed_eval": True, "eval_samples": 5})
    counts = zero.vote_outputs(model, model.encoder.get_input_embeddings(), inputs, None)
    assert torch.equal(counts.argmax(-1), plain) and torch.all(counts.sum(-1) == 5)
    assert torch.all(counts.max(-1).values == 5)  # no noise: every pass agrees
    torch.manual_seed(0)
    loud = build_method("rs_rp", 5.0, {"smoothed_eval": True, "eval_samples": 9})
    counts = loud.vote_outputs(model, model.encoder.get_input_embeddings(), inputs, None)
    assert torch.all(counts.sum(-1) == 9) and (counts.max(-1).values < 9).any()  # votes disagree


def test_smoothed_eval_is_rejected_for_tasks_without_classes():
    with pytest.raises(SpecError) as e:
        parse_spec({"name": "x", "target": {"task": "xquad", "data_dir": "/m"},
                    "robust": {"methods": ["rs_rp"], "noise_magnitude": 0.1,
                               "options": {"rs_rp": {"smoothed_eval": True}}}}, "x.yaml")
    assert "smoothed classifier votes over classes; xquad is a qa task" in "\n".join(e.value.problems)
