"""Adversarial training on input word embeddings (Huang et al. 2021, section 3.1), built from
its definition: min_theta E[ max_{||delta_i|| <= eps} loss(f(e(x) + delta), y) ].

The inner maximisation is projected gradient ascent (PGD) on a perturbation ``delta`` of every
non-pad token's embedding vector, each vector constrained separately to the ``norm`` ball
(L2 or L-infinity) of radius ``eps = noise_magnitude``:

    delta_0 = 0
    delta_{k+1} = Proj_eps( delta_k + alpha * g / ||g|| )        (L2; per vector)
    delta_{k+1} = clip_eps( delta_k + alpha * sign(g) )          (L-infinity)
    g = d loss(f(e(x) + delta_k), y) / d delta_k

K = ``steps`` (K=1 from delta_0 = 0 is the FGSM-like single step), alpha = ``step_size``
(default 1.25 eps / K). The attack runs on the unwrapped model without parameter gradients
(so DDP sees no extra reductions); the training loss is then
``(1 - w) * loss(clean) + w * loss(adversarial)`` from ONE forward over the clean and the
perturbed batch stacked together, so a step costs the K attack passes plus one doubled pass.

Diagnostics: ``delta_norm_max`` (largest norm of one vector's perturbation, in ``norm``: never
above eps), ``clean_loss``, ``adv_loss``.
"""

from __future__ import annotations

import torch

from trainables.robust.base import forward, forward_variants, vector_norms
from trainables.robust.options import AdversarialOptions, parse_options


class EmbeddingPGD:
    key = "adversarial"

    def __init__(self, epsilon: float, options: AdversarialOptions):
        if not epsilon >= 0:
            raise ValueError(f"adversarial needs noise_magnitude (epsilon) >= 0, got {epsilon}")
        self.eps = float(epsilon)
        self.steps = options.steps
        self.alpha = options.step_size if options.step_size is not None else 1.25 * self.eps / self.steps
        self.norm = options.norm
        self.weight = options.adv_weight

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        norms = delta.norm(dim=-1, keepdim=True)
        return delta * torch.clamp(self.eps / norms.clamp(min=1e-12), max=1.0)

    def step(self, delta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta + self.alpha * grad.sign()
        return delta + self.alpha * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def attack(self, model, embeds: torch.Tensor, batch, loss_fn) -> torch.Tensor:
        """The K-step PGD perturbation for a batch (no parameter gradients)."""
        base = model.module if hasattr(model, "module") else model
        mask = batch["attention_mask"].unsqueeze(-1).to(embeds.dtype)
        clean = embeds.detach()
        delta = torch.zeros_like(clean)
        was_training = base.training
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = loss_fn(forward(base, batch, inputs_embeds=clean + delta), batch)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (self.project(self.step(delta.detach(), grad)) * mask).detach()
        base.train(was_training)
        return delta

    def loss(self, model, embed, batch, loss_fn):
        embeds = embed(batch["input_ids"])
        delta = self.attack(model, embeds, batch, loss_fn)
        clean_out, adv_out = forward_variants(model, batch, [embeds, embeds + delta])
        clean, adv = loss_fn(clean_out, batch), loss_fn(adv_out, batch)
        real = batch["attention_mask"].bool()
        diag = {"delta_norm_max": float(vector_norms(delta, self.norm)[real].max()),
                "clean_loss": float(clean.detach()), "adv_loss": float(adv.detach())}
        return (1 - self.weight) * clean + self.weight * adv, diag


def build(key: str, magnitude: float, options: dict):
    return EmbeddingPGD(magnitude, parse_options("adversarial", options))
