"""Robust training methods, by registry key.

A method changes how one training batch becomes a loss; it never touches the data loader,
the optimizer or evaluation. Every method implements the ``RobustMethod`` protocol in
``trainables.robust.base`` and is built by ``build_method(key, magnitude, options)``.

``noise_magnitude`` from the space file is the method's one magnitude knob (epsilon for
``adversarial``, sigma or radius for ``rs_rp``, the substitution probability for ``rs_da``);
``none`` takes none. Fixed settings come from ``robust.options.<method>``, validated with the
models in ``trainables.robust.options`` before Ray starts. Methods live one per module:
``base`` (none, and the perturbation sites: input word embeddings or a layer's output),
``adversarial`` (PGD or FreeLB on embeddings), ``smoothing`` (RS-RP), ``augmentation`` (RS-DA,
which also rewrites the training data through ``augment``).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.names import unknown


@dataclass(frozen=True)
class MethodInfo:
    """A registry entry: a robust method, whether it takes a magnitude, and what the magnitude means."""
    key: str
    uses_noise: bool
    magnitude_meaning: str
    module: str
    """Module under ``trainables.robust`` holding the implementation (imported lazily: torch)."""


METHODS: dict[str, MethodInfo] = {
    "none": MethodInfo("none", False, "-", "base"),
    "adversarial": MethodInfo(
        "adversarial", True,
        "epsilon: radius of the PGD perturbation of each token's vector at the perturbation site (options.layer: "
        "0 = input word embeddings, k = output of layer k; options.norm: l2 or linf), in embedding units",
        "adversarial"),
    "rs_rp": MethodInfo(
        "rs_rp", True,
        "sigma of the Gaussian noise on every coordinate of each (non-pad) token's vector at the perturbation "
        "site (options.layer), or the radius of the uniform ball (options.distribution: uniform, options.ball: "
        "linf or l2)", "smoothing"),
    "rs_da": MethodInfo(
        "rs_da", True,
        "probability that a token with neighbours in the synonym table is re-drawn uniformly from itself "
        "and its neighbours (1.0 = the paper's procedure)", "augmentation"),
}


def method_info(key: str) -> MethodInfo:
    """The registry entry ``key``; an unknown key raises ``KeyError`` naming the allowed ones."""
    if key not in METHODS:
        raise KeyError(unknown("robust method", key, METHODS))
    return METHODS[key]


def build_method(key: str, magnitude: float, options: dict | None = None):
    """Instantiate the method behind ``key`` (imports torch)."""
    import importlib

    info = method_info(key)
    module = importlib.import_module(f"trainables.robust.{info.module}")
    return module.build(key, magnitude, options or {})
