"""Robust methods from first principles: each does what its parameters say.

- adversarial: the PGD perturbation of every embedding vector stays within epsilon in the
  configured norm, padding is never perturbed, and it raises the loss more than random
  noise with exactly the same per-vector norms;
- rs_rp: Gaussian noise norms match sigma * sqrt(d), uniform noise stays in its ball with the
  expected mean norm, n copies go through one stacked forward;
- the contextual-embedding site (``layer: k``): the perturbation lands exactly on layer k's
  output and the layers below it see the clean input; PGD there stays within epsilon;
- FreeLB: its accumulated gradient is the gradient of (1 - w) clean + w * mean of the K
  perturbed losses, recomputed by hand;
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
from trainables.robust.base import encoder_layers, forward, perturbed_forward, vector_norms
from trainables.tasks import family, target_task
from trainables.tasks.base import Encoding, TaskModel

CLS = family("classification")


@pytest.fixture(scope="module")
def setup(tiny_model, demo_dir):
    tok = load_tokenizer(tiny_model)
    examples = CLS.load(target_task("xnli"), "train", "en", str(demo_dir))[:32]
    batch = CLS.collate(CLS.encode(tok, examples, Encoding(64, 128, 64), train=True), tok.pad_token_id)
    torch.manual_seed(0)
    encoder = load_encoder(tiny_model)
    model = TaskModel(encoder, CLS.head(encoder, target_task("xnli")))
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
    ({"methods": ["adversarial"], "noise_magnitude": -0.1}, "noise_magnitude: must be >= 0"),
    ({"methods": ["adversarial"], "noise_magnitude": 0.1, "options": {"adversarial": {"norm": "l1"}}},
     "options.adversarial.norm: Input should be 'l2' or 'linf'"),
    ({"methods": ["rs_da"], "noise_magnitude": 0.5, "options": {"rs_da": {"synonym": "/no/such.json"}}},
     "options.rs_da.synonym: Extra inputs are not permitted; allowed keys: synonyms, copies"),
    ({"methods": ["rs_da"], "noise_magnitude": {"choice": [0.5, 2.0]}}, "rs_da reads it as a probability"),
    ({"methods": ["rs_rp"], "noise_magnitude": 0.1, "options": {"rs_rp": {"copeis": 2}}},
     "options.rs_rp.copeis: Extra inputs are not permitted; allowed keys: distribution, ball, copies"),
    ({"methods": ["adversarial", "rs_da"], "noise_magnitude": {"adversarial": 0.1}},
     "robust.noise_magnitude.rs_da: missing; every method that uses noise needs its magnitude"),
    ({"methods": ["adversarial", "rs_da"], "noise_magnitude": {"adversarial": 0.1, "rs_da": 1.5}},
     "robust.noise_magnitude.rs_da: rs_da reads it as a probability"),
    ({"methods": ["adversarial"], "noise_magnitude": {"adversarial": {"choice": [0.1, -1.0]}}},
     "robust.noise_magnitude.adversarial: must be >= 0"),
    ({"methods": ["adversarial", "rs_rp"], "noise_magnitude": {"adversarial": 0.1, "rs_rp": 0.1, "none": 1}},
     "robust.noise_magnitude.none: not a method of this sweep that uses noise"),
    ({"methods": ["rs_rp"], "noise_magnitude": 0.1, "options": {"rs_rp": {"layer": 3}}},
     "robust.options.rs_rp.layer: 3 exceeds the depth of builtin:tiny-bert (allowed: 0 = input word "
     "embeddings, 1..2"),
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


def _hidden_inputs(model, batch, layer, delta):
    """What transformer layer ``layer`` hands on (the input of the next block) and what the
    block below it received, under ``perturbed_forward`` with ``delta``."""
    blocks = encoder_layers(model)
    seen = {}
    hooks = [blocks[layer].register_forward_pre_hook(lambda m, a, kw: seen.__setitem__("above", a[0].clone()),
                                                     with_kwargs=True),
             blocks[layer - 1].register_forward_pre_hook(lambda m, a, kw: seen.__setitem__("below", a[0].clone()),
                                                         with_kwargs=True)]
    try:
        with torch.no_grad():
            (out,) = perturbed_forward(model, batch, [delta], layer)
    finally:
        for h in hooks:
            h.remove()
    return seen, out


def test_contextual_site_perturbs_exactly_the_chosen_layer_output(setup):
    model, batch = setup
    shape = (*batch["input_ids"].shape, model.encoder.config.hidden_size)
    torch.manual_seed(0)
    delta = torch.randn(shape) * batch["attention_mask"].unsqueeze(-1)
    clean, clean_out = _hidden_inputs(model, batch, 1, torch.zeros(shape))
    noisy, noisy_out = _hidden_inputs(model, batch, 1, delta)
    assert torch.equal(clean["below"], noisy["below"])  # layers under the site see the clean input
    assert torch.allclose(noisy["above"], clean["above"] + delta, atol=1e-6)
    with torch.no_grad():
        plain = forward(model, batch)
    assert torch.allclose(clean_out, plain, atol=1e-6) and not torch.allclose(noisy_out, plain)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_on_contextual_embeddings_stays_within_epsilon_and_beats_random_noise(setup, norm):
    model, batch = setup
    eps = 0.5
    method = build_method("adversarial", eps, {"steps": 3, "norm": norm, "layer": 1})
    delta = method.attack(model, None, batch, CLS.loss)
    real = batch["attention_mask"].bool()
    norms = vector_norms(delta, norm)
    assert delta.shape[-1] == model.encoder.config.hidden_size
    assert norms[real].max() <= eps * (1 + 1e-5) and torch.count_nonzero(delta[~real]) == 0
    gen = torch.Generator().manual_seed(0)
    rand = torch.randn(delta.shape, generator=gen)
    rand = rand / vector_norms(rand, norm).unsqueeze(-1) * norms.unsqueeze(-1)
    with torch.no_grad():
        clean, adv, noisy = (CLS.loss(o, batch).item() for o in perturbed_forward(
            model, batch, [torch.zeros_like(delta), delta, rand], layer=1))
    assert adv > noisy and adv > clean, (clean, noisy, adv)
    loss, diag = method.loss(model, model.encoder.get_input_embeddings(), batch, CLS.loss)
    assert diag["delta_norm_max"] <= eps * (1 + 1e-5) and diag["adv_loss"] > diag["clean_loss"]


def test_rs_rp_on_contextual_embeddings_matches_sigma(setup):
    model, batch = setup
    sigma, d = 0.1, model.encoder.config.hidden_size
    method = build_method("rs_rp", sigma, {"layer": 2, "copies": 2})
    torch.manual_seed(0)
    loss, diag = method.loss(model, model.encoder.get_input_embeddings(), batch, CLS.loss)
    assert diag["noise_norm_mean"] == pytest.approx(sigma * d ** 0.5, rel=0.05)
    with pytest.raises(ValueError, match="layer=3 is not a perturbation site"):
        build_method("rs_rp", sigma, {"layer": 3}).loss(model, model.encoder.get_input_embeddings(), batch, CLS.loss)


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("layer", [0, 1])
def test_freelb_gradient_is_the_mean_over_its_k_perturbations(setup, layer):
    model, batch = setup
    eps, w, alpha = 0.3, 0.6, 0.2
    embed = model.encoder.get_input_embeddings()
    opts = {"norm": "l2", "adv_weight": w, "step_size": alpha, "layer": layer}
    freelb = build_method("adversarial", eps, {**opts, "steps": 2, "freelb": True})
    model.zero_grad()
    loss, diag = freelb.loss(model, embed, batch, CLS.loss)
    assert freelb.backpropagates and not loss.requires_grad
    got = _grads(model)
    # by hand: delta_0 = 0, delta_1 = one PGD step from 0 (PGD with K=1 and the same alpha)
    embeds = embed(batch["input_ids"]) if layer == 0 else None
    delta1 = build_method("adversarial", eps, {**opts, "steps": 1}).attack(model, embeds, batch, CLS.loss)
    model.zero_grad()
    embeds = embed(batch["input_ids"]) if layer == 0 else None
    clean, adv1 = perturbed_forward(model, batch, [torch.zeros_like(delta1), delta1], layer, embeds)
    l0, l1 = CLS.loss(clean, batch), CLS.loss(adv1, batch)
    ((1 - w) * l0 + w * (l0 + l1) / 2).backward()
    want = _grads(model)
    assert got.keys() == want.keys()
    for n in want:
        assert torch.allclose(got[n], want[n], atol=1e-6, rtol=1e-4), n
    assert diag["clean_loss"] == pytest.approx(l0.item(), rel=1e-5)
    assert diag["adv_loss"] == pytest.approx((l0.item() + l1.item()) / 2, rel=1e-5)
    assert diag["delta_norm_max"] <= eps * (1 + 1e-5)
    model.zero_grad()


def test_random_start_begins_inside_the_ball(setup):
    model, batch = setup
    for norm in ("l2", "linf"):
        method = build_method("adversarial", 0.2, {"steps": 1, "norm": norm, "random_init": True, "step_size": 1e-9})
        delta = method.attack(model, model.encoder.get_input_embeddings()(batch["input_ids"]), batch, CLS.loss)
        norms = vector_norms(delta, norm)[batch["attention_mask"].bool()]
        assert 0 < norms.min() and norms.max() <= 0.2 * (1 + 1e-5)


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("steps", [1, 3])
def test_pgd_clean_first_gives_the_stacked_gradient(setup, layer, steps):
    """The fast PGD (its first ascent pass is the clean pass) trains on exactly the loss and
    gradient of K attack passes plus one stacked clean + perturbed pass."""
    model, batch = setup
    embed = model.encoder.get_input_embeddings()
    method = build_method("adversarial", 0.3, {"norm": "l2", "adv_weight": 0.6, "steps": steps, "layer": layer})
    model.zero_grad()
    loss, diag = method.loss(model, embed, batch, CLS.loss)
    loss.backward()
    got = _grads(model)
    model.zero_grad()
    want_loss, want_diag = method._stacked(model, embed, batch, CLS.loss)
    want_loss.backward()
    want = _grads(model)
    model.zero_grad()
    assert loss.item() == pytest.approx(want_loss.item(), rel=1e-5)
    assert diag == pytest.approx(want_diag, rel=1e-5)
    assert got.keys() == want.keys()
    for n in want:
        assert torch.allclose(got[n], want[n], atol=1e-6, rtol=1e-4), n
