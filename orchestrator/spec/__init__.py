"""The sweep spec: a space file (YAML) -> validated, typed objects, before Ray starts.

One space file describes one sweep. Sections:

- ``name``: the sweep; names the MLflow experiment and the Tune run folder.
- ``model``: encoder (hub id, local path, or ``builtin:tiny-bert``), tokenizer, remote code.
- ``target``: target task (registry key), its evaluation languages, where its data lives.
- ``intermediate``: the domain axis (``none`` = no intermediate stage) and its stage knobs.
- ``robust``: the method axis, ``noise_magnitude`` (for methods that use noise only), options.
- ``training``: fine-tuning knobs; ``learning_rate`` may be swept.
- ``seeds``: replicate seeds; every cell runs once per seed.
- ``search``: Optuna sampler, samples per cell, metric/mode, ASHA, concurrency, retries.
- ``resources``: Train workers per trial, CPUs/GPUs (and custom resources) per worker, and
  how the workers are placed across nodes.
- ``storage``: what a finished trial keeps on ``--storage`` (``keep_weights``).
- ``studies`` (optional): several sweeps in one file, each the rest of the file with a few
  keys overridden (``load_sweeps``), e.g. a paper's model x task grid.

Swept values (``learning_rate``, ``noise_magnitude``) take one of three forms: a number
(fixed), ``{choice: [...]}`` (a categorical axis: every value runs, like domains and methods),
or ``{low: .., high: .., log: true}`` (continuous, sampled by Optuna).

Every problem is collected and raised once as ``SpecError`` whose lines each name the key
path, what is wrong and what is allowed. Registry keys (tasks, domains, methods) are checked
against the registries in ``trainables`` with "did you mean" suggestions.
"""

from orchestrator.spec.errors import SpecError
from orchestrator.spec.loading import deep_merge, load_spec, load_sweeps, parse_spec, resolve_space
from orchestrator.spec.params import Choice, Magnitude, Param, Range, param_values
from orchestrator.spec.sections import (
    Asha,
    Intermediate,
    Model,
    Recipe,
    Resources,
    Robust,
    Search,
    Storage,
    Target,
    Training,
)
from orchestrator.spec.sweep import SweepSpec

__all__ = ["Asha", "Choice", "Intermediate", "Magnitude", "Model", "Param", "Range", "Recipe", "Resources", "Robust",
           "Search", "SpecError", "Storage", "SweepSpec", "Target", "Training", "deep_merge", "load_spec",
           "load_sweeps", "param_values", "parse_spec", "resolve_space"]
