"""Randomized smoothing by random perturbation (RS-RP, Huang et al. 2021), Gaussian form.

Training sees each sentence with i.i.d. Gaussian noise N(0, sigma^2) added to every coordinate
of every non-pad input word embedding; sigma is the sweep's ``noise_magnitude``. The noise is
drawn from torch's global generator, which the loop seeds per rank and per epoch, so a run is
reproducible for a fixed seed and world size. Evaluation is plain (unperturbed) prediction.

Diagnostics: ``noise_norm_mean`` is the mean L2 norm of the perturbation of one embedding
vector; for sigma and hidden size d it is about sigma * sqrt(d), which the tests check.
"""

from __future__ import annotations

import torch

from trainables.robust.base import forward


class GaussianEmbeddingNoise:
    key = "rs_rp"

    def __init__(self, sigma: float):
        if not sigma >= 0:
            raise ValueError(f"rs_rp needs noise_magnitude (sigma) >= 0, got {sigma}")
        self.sigma = float(sigma)

    def perturb(self, embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (noisy embeddings, per-token noise L2 norms over real tokens)."""
        noise = torch.randn_like(embeds) * self.sigma * mask.unsqueeze(-1).to(embeds.dtype)
        norms = noise.norm(dim=-1)[mask.bool()]
        return embeds + noise, norms

    def loss(self, model, embed, batch, loss_fn):
        noisy, norms = self.perturb(embed(batch["input_ids"]), batch["attention_mask"])
        logits = forward(model, batch, inputs_embeds=noisy)
        return loss_fn(logits, batch), {"noise_norm_mean": float(norms.mean())}


def build(key: str, magnitude: float, options: dict):
    if options:
        raise ValueError(f"method 'rs_rp' takes no options yet, got {sorted(options)}")
    return GaussianEmbeddingNoise(magnitude)
