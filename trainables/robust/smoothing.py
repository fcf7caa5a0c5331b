"""Randomized smoothing by random perturbation (RS-RP, Huang et al. 2021, section 3.2).

Training sees each example as ``copies`` (n) noisy versions, the noise added to every non-pad
token's vector at the perturbation site ``layer`` (0 = the input word embeddings, k >= 1 =
the output of transformer layer k, the contextual embeddings); the losses of the n versions
are averaged, and the n versions go through the model in one stacked forward pass. ``noise_magnitude`` is

- ``distribution: gaussian``: sigma, i.i.d. N(0, sigma^2) per coordinate;
- ``distribution: uniform``: the radius r of a ball per embedding vector, ``ball: linf``
  (each coordinate uniform in [-r, r]) or ``ball: l2`` (uniform in the L2 ball of radius r:
  a uniform direction times r * U^(1/d)).

The noise comes from torch's global generator, which the loop seeds per rank and per epoch,
so a run is reproducible for a fixed seed and world size. Evaluation is plain prediction, or,
with ``smoothed_eval``, the smoothed classifier's: each example is classified
``eval_samples`` times under fresh noise and the most frequent class wins (ties: the lowest
class index); ``vote_outputs`` turns the votes into logits-shaped counts the family decodes.

Diagnostics: ``noise_norm_mean``, the mean norm of one vector's perturbation (L-infinity for
the L-infinity ball, else L2): about sigma * sqrt(d) for Gaussian noise of dimension d, at most
r for the balls; the tests check both.
"""

from __future__ import annotations

import torch

from trainables.robust.base import check_layer, perturbed_forward, sample_ball, site_shape, vector_norms
from trainables.robust.options import SmoothingOptions, parse_options


class RandomPerturbation:
    """RS-RP: training on noisy copies of each batch; optionally predicting by a vote."""

    key = "rs_rp"
    backpropagates = augments = False

    def __init__(self, magnitude: float, options: SmoothingOptions | None = None):
        if not magnitude >= 0:
            raise ValueError(f"rs_rp needs noise_magnitude (sigma or radius) >= 0, got {magnitude}")
        self.magnitude = float(magnitude)
        self.options = options or SmoothingOptions()
        self.layer = self.options.layer
        self.norm = "linf" if self.options.distribution == "uniform" and self.options.ball == "linf" else "l2"

    def sample(self, shape, like: torch.Tensor) -> torch.Tensor:
        o, r = self.options, self.magnitude
        if o.distribution == "gaussian":
            return torch.randn(shape, dtype=like.dtype, device=like.device) * r
        return sample_ball(shape, like, r, o.ball)

    def noise(self, shape, mask: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (noise with padding zeroed, per-token noise norms over real tokens)."""
        noise = self.sample(shape, like) * mask.unsqueeze(-1).to(like.dtype)
        return noise, vector_norms(noise, self.norm)[mask.bool()]

    def perturb(self, embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input word embeddings plus noise, and the per-token noise norms over real tokens."""
        noise, norms = self.noise(embeds.shape, mask, embeds)
        return embeds + noise, norms

    def _noises(self, model, embed, batch, n: int):
        check_layer(model, self.layer)
        embeds = embed(batch["input_ids"]) if self.layer == 0 else None
        like = embeds if embeds is not None else embed.weight
        shape = site_shape(model, batch, self.layer, embeds)
        noises, norms = zip(*(self.noise(shape, batch["attention_mask"], like) for _ in range(n)))
        return embeds, list(noises), norms

    def loss(self, model, embed, batch, loss_fn):
        embeds, noises, norms = self._noises(model, embed, batch, self.options.copies)
        outs = perturbed_forward(model, batch, noises, self.layer, embeds)
        loss = sum(loss_fn(out, batch) for out in outs) / len(outs)
        return loss, {"noise_norm_mean": float(torch.cat(norms).mean())}

    @property
    def smooths_predictions(self) -> bool:  # a Smoother when options.smoothed_eval
        return self.options.smoothed_eval

    @torch.no_grad()
    def vote_outputs(self, model, embed, inputs: dict, choices: int | None) -> torch.Tensor:
        """Vote counts in the shape of the model's outputs: [B, C] (classification), or the
        flattened [B * K] choice scores (multiple choice, ``choices`` = K)."""
        counts = None
        for _ in range(self.options.eval_samples):
            embeds, (noise,), _ = self._noises(model, embed, inputs, 1)
            (out,) = perturbed_forward(model, inputs, [noise], self.layer, embeds)
            scores = out.view(-1, choices) if choices else out
            vote = torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1]).float()
            counts = vote if counts is None else counts + vote
        # ties go to the lowest index, as argmax does; counts keep the outputs' shape
        return counts.view(-1) if choices else counts


def build(key: str, magnitude: float, options: dict):
    """The ``rs_rp`` method: random perturbation of the embeddings with scale ``magnitude``."""
    return RandomPerturbation(magnitude, parse_options("rs_rp", options))
