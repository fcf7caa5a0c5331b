"""Robust training methods, by registry key.

A method changes how one training batch becomes a loss; it never touches the data loader,
the optimizer or evaluation. Every method implements the ``RobustMethod`` protocol in
``trainables.robust.base`` and is built by ``build_method(key, magnitude, options)``.

``noise_magnitude`` from the space file is the method's one magnitude knob (the Gaussian
sigma for ``rs_rp``); methods with ``uses_noise=False`` take none, and the spec rejects a
space that gives a noise-using method no magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.registry import unknown


@dataclass(frozen=True)
class MethodInfo:
    key: str
    uses_noise: bool
    magnitude_meaning: str
    module: str
    """Module under ``trainables.robust`` holding the implementation (imported lazily: torch)."""


METHODS: dict[str, MethodInfo] = {
    "none": MethodInfo("none", False, "-", "base"),
    "rs_rp": MethodInfo(
        "rs_rp", True,
        "sigma of the Gaussian noise added to every coordinate of each (non-pad) input "
        "word embedding, in embedding units",
        "smoothing",
    ),
}


def method_info(key: str) -> MethodInfo:
    if key not in METHODS:
        raise KeyError(unknown("robust method", key, METHODS))
    return METHODS[key]


def build_method(key: str, magnitude: float, options: dict | None = None):
    """Instantiate the method behind ``key`` (imports torch)."""
    import importlib

    info = method_info(key)
    module = importlib.import_module(f"trainables.robust.{info.module}")
    return module.build(key, magnitude, options or {})
