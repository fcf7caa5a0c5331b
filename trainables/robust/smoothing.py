"""Randomized smoothing by random perturbation (RS-RP, Huang et al. 2021, section 3.2).

Training sees each example as ``copies`` (n) noisy versions, the noise added to every non-pad
input word embedding vector; the losses of the n versions are averaged, and the n versions go
through the model in one stacked forward pass. ``noise_magnitude`` is

- ``distribution: gaussian``: sigma, i.i.d. N(0, sigma^2) per coordinate;
- ``distribution: uniform``: the radius r of a ball per embedding vector, ``ball: linf``
  (each coordinate uniform in [-r, r]) or ``ball: l2`` (uniform in the L2 ball of radius r:
  a uniform direction times r * U^(1/d)).

The noise comes from torch's global generator, which the loop seeds per rank and per epoch,
so a run is reproducible for a fixed seed and world size. Evaluation is plain prediction.

Diagnostics: ``noise_norm_mean``, the mean norm of one vector's perturbation (L-infinity for
the L-infinity ball, else L2): about sigma * sqrt(d) for Gaussian noise of dimension d, at most
r for the balls; the tests check both.
"""

from __future__ import annotations

import torch

from trainables.robust.base import forward_variants, vector_norms
from trainables.robust.options import SmoothingOptions, parse_options


class RandomPerturbation:
    key = "rs_rp"

    def __init__(self, magnitude: float, options: SmoothingOptions | None = None):
        if not magnitude >= 0:
            raise ValueError(f"rs_rp needs noise_magnitude (sigma or radius) >= 0, got {magnitude}")
        self.magnitude = float(magnitude)
        self.options = options or SmoothingOptions()
        self.norm = "linf" if self.options.distribution == "uniform" and self.options.ball == "linf" else "l2"

    def sample(self, shape, like: torch.Tensor) -> torch.Tensor:
        o, r = self.options, self.magnitude
        if o.distribution == "gaussian":
            return torch.randn(shape, dtype=like.dtype, device=like.device) * r
        if o.ball == "linf":
            return (torch.rand(shape, dtype=like.dtype, device=like.device) * 2 - 1) * r
        direction = torch.randn(shape, dtype=like.dtype, device=like.device)
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        radius = torch.rand(shape[:-1] + (1,), dtype=like.dtype, device=like.device) ** (1.0 / shape[-1])
        return direction * radius * r

    def perturb(self, embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (noisy embeddings, per-token noise norms over real tokens)."""
        noise = self.sample(embeds.shape, embeds) * mask.unsqueeze(-1).to(embeds.dtype)
        return embeds + noise, vector_norms(noise, self.norm)[mask.bool()]

    def loss(self, model, embed, batch, loss_fn):
        embeds = embed(batch["input_ids"])
        noisy, norms = zip(*(self.perturb(embeds, batch["attention_mask"]) for _ in range(self.options.copies)))
        outs = forward_variants(model, batch, list(noisy))
        loss = sum(loss_fn(out, batch) for out in outs) / len(outs)
        return loss, {"noise_norm_mean": float(torch.cat(norms).mean())}


def build(key: str, magnitude: float, options: dict):
    return RandomPerturbation(magnitude, parse_options("rs_rp", options))
