"""Per-method settings (``robust.options.<method>`` in a space file), validated before Ray starts.

No torch here: the spec validates options with these models, and ``build_method`` parses them
again in the worker. ``noise_magnitude`` is the one swept knob; what it means per method:

==============  ===========================================================================
``adversarial``  epsilon: radius of the perturbation of each token vector (``norm``) at the
                 perturbation site (``layer``: 0 = input word embeddings, k = layer k output)
``rs_rp``        sigma of the Gaussian noise, or the radius of the uniform ball (``ball``),
                 at the same choice of site
``rs_da``        probability that a token with neighbours in the synonym table is re-drawn
                 (uniformly from itself and its neighbours); 1.0 is the paper's procedure
==============  ===========================================================================

The space file may give one ``noise_magnitude`` for all methods or one per method; either way
each method reads only its own value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoOptions(_Options):
    """Plain fine-tuning takes no options."""
    pass


class AdversarialOptions(_Options):
    """``robust.options.adversarial``."""
    steps: int = Field(default=1, ge=1)
    """K: PGD steps (K=1: a single normalised-gradient step, FGSM-like)."""
    step_size: float | None = Field(default=None, gt=0)
    """PGD step alpha; default 1.25 * epsilon / K (enough to reach the boundary in K steps)."""
    norm: Literal["l2", "linf"] = "l2"
    """Norm of each embedding vector's perturbation (the radius is noise_magnitude)."""
    adv_weight: float = Field(default=0.5, ge=0, le=1)
    """loss = (1 - w) * clean loss + w * adversarial loss."""
    layer: int = Field(default=0, ge=0)
    """Where the perturbation is added: 0 = the input word embeddings; k >= 1 = the output of
    transformer layer k (contextual embeddings; must not exceed the encoder's depth)."""
    freelb: bool = False
    """FreeLB (Zhu et al. 2020): every one of the K ascent passes also back-propagates into the
    parameters, and the adversarial term is the mean loss over the K perturbations, instead of
    K gradient-only attack passes and one loss at the last perturbation."""
    random_init: bool = False
    """Start the ascent from a uniform draw in the epsilon ball instead of zero (PGD with a
    random start; FreeLB's initialisation)."""


class SmoothingOptions(_Options):
    """``robust.options.rs_rp``."""
    distribution: Literal["gaussian", "uniform"] = "gaussian"
    ball: Literal["linf", "l2"] = "linf"
    """For uniform noise: the ball the noise is drawn from (radius = noise_magnitude)."""
    copies: int = Field(default=1, ge=1)
    """n: noisy copies of every training example per step (their losses are averaged)."""
    layer: int = Field(default=0, ge=0)
    """Where the noise is added: 0 = the input word embeddings; k >= 1 = the output of
    transformer layer k (contextual embeddings)."""
    smoothed_eval: bool = False
    """Predict with the smoothed classifier: the majority vote over ``eval_samples`` noisy forward
    passes (classification and multiple-choice tasks); default: plain prediction."""
    eval_samples: int = Field(default=10, ge=1)


BUILTIN_TABLES = ("builtin", "miniature")
"""``synonyms`` values that name a built-in table, not a file."""


class AugmentationOptions(_Options):
    """``robust.options.rs_da``."""
    synonyms: str = "builtin"
    """A JSON file ``{word: [neighbours]}`` (the counter-fitted neighbour table the paper used),
    ``builtin``: the small demo table for the built-in data, or ``miniature``: the miniature
    world's word classes (``trainables.miniature``). Its existence and shape are
    checked before Ray starts (``orchestrator.preflight``), not here: a table on cluster storage
    need not exist where a space file is planned (``--dry-run``)."""
    copies: int = Field(default=3, ge=1)
    """c: augmented copies per English training example (paper: 10 for PAWS-X, 3 for XNLI)."""
    keep_original: bool = True


OPTIONS: dict[str, type[_Options]] = {
    "none": NoOptions, "adversarial": AdversarialOptions, "rs_rp": SmoothingOptions,
    "rs_da": AugmentationOptions,
}
MAX_MAGNITUDE = {"rs_da": 1.0}
"""Upper bounds of noise_magnitude per method (a probability cannot exceed 1)."""


def parse_options(method: str, options: dict | None):
    """``method``'s options validated (unknown keys and bad values raise with their names)."""
    return OPTIONS[method].model_validate(options or {})
