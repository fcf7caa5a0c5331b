"""Adversarial training on embeddings (Huang et al. 2021, section 3.1), built from its
definition: min_theta E[ max_{||delta_i|| <= eps} loss(f(e(x) + delta), y) ].

The perturbation site is ``layer``: 0 (default) = the input word embeddings, k >= 1 = the
output of transformer layer k (the "contextual embeddings"; see ``base.perturbed_forward``).
The inner maximisation is projected gradient ascent (PGD) on a perturbation ``delta`` of
every non-pad token's vector at that site, each vector constrained separately to the
``norm`` ball (L2 or L-infinity) of radius ``eps = noise_magnitude``:

    delta_0 = 0  (or uniform in the ball: random_init)
    delta_{k+1} = Proj_eps( delta_k + alpha * g / ||g|| )        (L2; per vector)
    delta_{k+1} = clip_eps( delta_k + alpha * sign(g) )          (L-infinity)
    g = d loss(f(x; site + delta_k), y) / d delta_k

K = ``steps`` (K=1 from delta_0 = 0 is the FGSM-like single step), alpha = ``step_size``
(default 1.25 eps / K). Two ways to turn the ascent into a training loss:

- PGD (default): the K attack passes run on the unwrapped model without parameter gradients
  (so DDP sees no extra reductions); the loss is ``(1 - w) * loss(clean) + w *
  loss(delta_K)`` from ONE forward over the clean and the perturbed batch stacked together:
  K attack passes plus one doubled pass. When delta_0 = 0 (no ``random_init``) and 0 < w < 1,
  the first attack pass *is* the clean forward: it back-propagates ``(1 - w) * loss(clean)``
  into the parameters as well (on the unwrapped model, so under DDP the gradient waits
  locally and is reduced with the last pass) and its gradient at delta_0 gives the ascent
  direction (scaled by 1 - w, which neither the L2-normalised nor the sign step sees); the
  last pass then runs the perturbed batch alone. The same gradient for K - 1 attack passes
  and two plain passes, instead of K attack passes and a doubled pass (K=1: 2.0x a plain step
  instead of 2.3x on CPU; ``benchmarks/run.py``: ``adversarial_overhead``).
- FreeLB (``freelb: true``, Zhu et al. 2020): every ascent pass t = 0..K-1 back-propagates
  into the parameters as well as into delta, so the gradient is that of ``(1 - w) *
  loss(clean) + w * mean_t loss(delta_t)``; the clean batch rides along the first pass. Each
  pass calls the (DDP) model; all but the last run under ``no_sync`` so gradients are reduced
  once. The method then ``backpropagates`` itself and returns the loss detached.

Diagnostics: ``delta_norm_max`` (largest norm of one vector's perturbation that was trained
on, in ``norm``: never above eps), ``clean_loss``, ``adv_loss`` (FreeLB: mean over the K).
"""

from __future__ import annotations

import contextlib

import torch

from trainables.robust.base import check_layer, perturbed_forward, sample_ball, site_shape, unwrap, vector_norms
from trainables.robust.options import AdversarialOptions, parse_options


class EmbeddingPGD:
    """Adversarial training: PGD (or FreeLB) perturbations at the perturbation site."""

    key = "adversarial"
    augments = smooths_predictions = False

    def __init__(self, epsilon: float, options: AdversarialOptions):
        if not epsilon >= 0:
            raise ValueError(f"adversarial needs noise_magnitude (epsilon) >= 0, got {epsilon}")
        self.eps = float(epsilon)
        self.steps = options.steps
        self.alpha = options.step_size if options.step_size is not None else 1.25 * self.eps / self.steps
        self.norm = options.norm
        self.weight = options.adv_weight
        self.layer = options.layer
        self.freelb = options.freelb
        self.random_init = options.random_init
        self.backpropagates = options.freelb

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        norms = delta.norm(dim=-1, keepdim=True)
        return delta * torch.clamp(self.eps / norms.clamp(min=1e-12), max=1.0)

    def step(self, delta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta + self.alpha * grad.sign()
        return delta + self.alpha * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def _start(self, model, batch, embeds) -> tuple[torch.Tensor, torch.Tensor]:
        check_layer(model, self.layer)
        like = embeds if embeds is not None else unwrap(model).encoder.get_input_embeddings().weight
        shape = site_shape(model, batch, self.layer, embeds)
        mask = batch["attention_mask"].unsqueeze(-1).to(like.dtype)
        if self.random_init:
            return sample_ball(shape, like, self.eps, self.norm) * mask, mask
        return torch.zeros(shape, dtype=like.dtype, device=like.device), mask

    def attack(self, model, embeds: torch.Tensor | None, batch, loss_fn) -> torch.Tensor:
        """The K-step PGD perturbation for a batch (no parameter gradients). ``embeds`` are the
        input word embeddings (needed for layer 0 only)."""
        clean = embeds.detach() if embeds is not None else None
        delta, mask = self._start(model, batch, clean)
        return self.attack_from(model, clean, batch, loss_fn, delta, mask, self.steps)

    def _word_embeds(self, embed, batch):
        return embed(batch["input_ids"]) if self.layer == 0 else None

    def loss(self, model, embed, batch, loss_fn):
        if self.freelb:
            return self._freelb(model, embed, batch, loss_fn)
        if not self.random_init and 0 < self.weight < 1:
            return self._clean_first(model, embed, batch, loss_fn)
        return self._stacked(model, embed, batch, loss_fn)

    def _clean_first(self, model, embed, batch, loss_fn):
        """PGD whose first ascent pass is the clean pass (see the module docstring)."""
        base, w = unwrap(model), self.weight
        embeds = self._word_embeds(embed, batch)
        delta, mask = self._start(model, batch, embeds.detach() if embeds is not None else None)
        delta.requires_grad_(True)
        (clean_out,) = perturbed_forward(base, batch, [delta], self.layer, embeds)
        clean = loss_fn(clean_out, batch)
        ((1 - w) * clean).backward()
        delta = (self.project(self.step(delta.detach(), delta.grad)) * mask).detach()
        delta = self.attack_from(model, embeds.detach() if embeds is not None else None, batch, loss_fn,
                                 delta, mask, self.steps - 1)
        (adv_out,) = perturbed_forward(model, batch, [delta], self.layer, self._word_embeds(embed, batch))
        adv = loss_fn(adv_out, batch)
        real = batch["attention_mask"].bool()
        diag = {"delta_norm_max": float(vector_norms(delta, self.norm)[real].max()),
                "clean_loss": float(clean.detach()), "adv_loss": float(adv.detach())}
        return w * adv + (1 - w) * clean.detach(), diag  # the clean part is back-propagated already

    def attack_from(self, model, clean, batch, loss_fn, delta, mask, steps: int) -> torch.Tensor:
        """``steps`` ascent steps from ``delta`` (no parameter gradients); ``clean``: the
        detached input word embeddings (layer 0) or None."""
        base = unwrap(model)
        for _ in range(steps):
            delta.requires_grad_(True)
            (out,) = perturbed_forward(base, batch, [delta], self.layer, clean)
            (grad,) = torch.autograd.grad(loss_fn(out, batch), delta)
            delta = (self.project(self.step(delta.detach(), grad)) * mask).detach()
        return delta

    def _stacked(self, model, embed, batch, loss_fn):
        embeds = self._word_embeds(embed, batch)
        delta = self.attack(model, embeds, batch, loss_fn)
        clean_out, adv_out = perturbed_forward(model, batch, [torch.zeros_like(delta), delta], self.layer, embeds)
        clean, adv = loss_fn(clean_out, batch), loss_fn(adv_out, batch)
        real = batch["attention_mask"].bool()
        diag = {"delta_norm_max": float(vector_norms(delta, self.norm)[real].max()),
                "clean_loss": float(clean.detach()), "adv_loss": float(adv.detach())}
        return (1 - self.weight) * clean + self.weight * adv, diag

    def _freelb(self, model, embed, batch, loss_fn):
        embeds = self._word_embeds(embed, batch)
        delta, mask = self._start(model, batch, embeds.detach() if embeds is not None else None)
        real = batch["attention_mask"].bool()
        k, w = self.steps, self.weight
        clean_loss, adv_losses, norm_max = 0.0, [], 0.0
        for t in range(k):
            sync = contextlib.nullcontext() if t == k - 1 or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                delta.requires_grad_(True)
                embeds_t = embeds if t == 0 else self._word_embeds(embed, batch)
                norm_max = max(norm_max, float(vector_norms(delta.detach(), self.norm)[real].max()))
                if t == 0:
                    clean_out, adv_out = perturbed_forward(model, batch, [torch.zeros_like(delta), delta],
                                                           self.layer, embeds_t)
                    clean = loss_fn(clean_out, batch)
                    clean_loss = float(clean.detach())
                else:
                    (adv_out,) = perturbed_forward(model, batch, [delta], self.layer, embeds_t)
                    clean = None
                adv = loss_fn(adv_out, batch)
                adv_losses.append(float(adv.detach()))
                total = w / k * adv + ((1 - w) * clean if clean is not None else 0.0)
                total.backward()
            grad = delta.grad
            delta = (self.project(self.step(delta.detach(), grad)) * mask).detach()
        loss = (1 - w) * clean_loss + w * sum(adv_losses) / k
        diag = {"delta_norm_max": norm_max, "clean_loss": clean_loss, "adv_loss": sum(adv_losses) / k}
        return torch.tensor(loss), diag


def build(key: str, magnitude: float, options: dict):
    """The ``adversarial`` method: PGD on the word embeddings (or a layer's output) with radius ``magnitude``."""
    return EmbeddingPGD(magnitude, parse_options("adversarial", options))
