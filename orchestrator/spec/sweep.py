"""One sweep: the sections together, and the checks that need several of them.

Per-target defaults: a ``training`` key the space file leaves out takes the value of the
XTREME-R script that trains the target (``TargetTask.protocol``: e.g. QA ``max_length`` 384 and
learning rate 3e-5, UD-POS / PAN-X 10 epochs, XNLI 5), and only then ``Training``'s own
default. A default ``max_length`` is capped at the encoder's positions (the built-in tiny model
has 256); a value the file sets is checked against them instead. ``xlt-sweep --dry-run`` prints
the resolved section.
"""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from orchestrator.spec.params import Range, _Strict, _unique_list
from orchestrator.spec.sections import Intermediate, Model, Resources, Robust, Search, Storage, Target, Training
from trainables.catalog import CATALOG
from trainables.known_models import encoder_depth, max_positions
from trainables.tasks import POOLED_TARGETS, TASKS, target_task


class SweepSpec(_Strict):
    """One sweep, validated: every section of a space file with its defaults."""
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: Model = Model()
    target: Target = Target()
    intermediate: Intermediate = Intermediate()
    robust: Robust = Robust()
    training: Training = Training()
    seeds: list[int] = Field(default=[0], min_length=1)
    search: Search = Search()
    resources: Resources = Resources()
    storage: Storage = Storage()

    @model_validator(mode="before")
    @classmethod
    def _target_protocol(cls, data):
        """Fill the ``training`` keys the file leaves out from the target's benchmark settings."""
        if not isinstance(data, dict):
            return data
        target, training = data.get("target") or {}, data.get("training") or {}
        task = TASKS.get(target.get("task", Target().task)) if isinstance(target, dict) else None
        if task is None or not isinstance(training, dict):
            return data  # the field validators report what is wrong
        protocol = dict(task.protocol)
        model = data.get("model") or {}
        longest = max_positions(model.get("name", Model().name)) if isinstance(model, dict) else None
        if longest is not None and protocol.get("max_length", 0) > longest:
            protocol["max_length"] = longest  # a default never exceeds the encoder's positions
        return {**data, "training": {**protocol, **training}}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return _unique_list(v, "seeds")

    @model_validator(mode="after")
    def _cross(self):
        problems = []
        source = self.intermediate_data_dir
        for d in self.intermediate.domains:
            for k in self.intermediate.tasks_of(d):
                entry = CATALOG.get(k)
                if entry and source == "builtin" and not entry.demo:
                    demo = [t for t in self.intermediate.tasks_of(d) if CATALOG[t].demo]
                    problems.append(f"intermediate: task '{k}' (domain {d}) has no built-in demo data; set "
                                    f"intermediate.data_dir to a mirror or hub, or name demo tasks with "
                                    f"intermediate.tasks.{d}: [{', '.join(demo) or '...'}]")
                if entry and source == "hub" and (not entry.hub or entry.local_only):
                    problems.append(f"intermediate: task '{k}' (domain {d}) cannot come from "
                                    f"the hub ({entry.access}); set intermediate.data_dir")
        problems += self._hub_gaps()
        rs_rp = self.robust.options.get("rs_rp", {})
        task = TASKS.get(self.target.task)
        if rs_rp.get("smoothed_eval") and task and task.family not in ("classification", "multiple_choice"):
            problems.append(f"robust.options.rs_rp.smoothed_eval: the smoothed classifier votes over classes; "
                            f"{self.target.task} is a {task.family} task (allowed: classification and "
                            f"multiple-choice targets)")
        for method in ("adversarial", "rs_rp"):
            layer = self.robust.options.get(method, {}).get("layer")
            depth = encoder_depth(self.model.name)
            if isinstance(layer, int) and depth is not None and layer > depth:
                problems.append(f"robust.options.{method}.layer: {layer} exceeds the depth of {self.model.name} "
                                f"(allowed: 0 = input word embeddings, 1..{depth} = output of that layer)")
        longest = max_positions(self.model.name)
        if longest is not None and self.training.max_length > longest:
            problems.append(f"training.max_length: {self.training.max_length} exceeds the {longest} positions "
                            f"of {self.model.name} (allowed: 8..{longest})")
        t = self.training
        if task and task.family == "qa" and t.doc_stride > t.max_length - t.max_query_length - 4:
            problems.append(f"training.doc_stride: {t.doc_stride} exceeds the context a QA window holds "
                            f"(max_length {t.max_length} - max_query_length {t.max_query_length} - up to 4 "
                            f"special tokens = {t.max_length - t.max_query_length - 4}); windows would skip "
                            f"context (allowed: 1..{max(1, t.max_length - t.max_query_length - 4)})")
        if t.negatives_pool is not None and self.target.task not in POOLED_TARGETS:
            problems.append(f"training.negatives_pool: in-batch negatives are what LAReQA and Mewsli-X "
                            f"fine-tuning trains with; {self.target.task} has none (allowed: null, or a "
                            f"target in {', '.join(POOLED_TARGETS)})")
        continuous = isinstance(self.training.learning_rate, Range) or any(
            isinstance(self.robust.magnitude(m), Range) for m in self.robust.methods)
        if self.search.samples_per_cell > 1 and not continuous:
            problems.append("search.samples_per_cell > 1 needs a continuous knob "
                            "({low, high}); without one every sample of a cell is identical")
        if self.search.asha.enabled and self.search.asha.grace_period > self.training.epochs:
            problems.append(f"search.asha.grace_period ({self.search.asha.grace_period}) exceeds "
                            f"training.epochs ({self.training.epochs})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _hub_gaps(self) -> list[str]:
        """With ``target.data_dir: hub``: every split and language the sweep reads that the hub
        cannot serve (Tatoeba, LAReQA, Mewsli-X; UD-POS's UD 2.7 languages), with where to get it."""
        if self.target.data_dir != "hub":
            return []
        gaps: dict[tuple, list[str]] = {}
        for task, split, lang, _ in TASKS[self.target.task].reads(self.languages, self.target.recipe.enabled):
            if not task.hub_serves(split, lang):
                gaps.setdefault((task.key, split if split in task.hub else None), []).append(
                    lang if split in task.hub else split)
        out = []
        for (key, split), missing in gaps.items():
            task = target_task(key)
            if split:
                out.append(f"target.languages: {key} {split} data for {', '.join(missing)} is not on the hub: "
                           f"{task.hub_gap}; or leave them out of target.languages (allowed from the hub: "
                           f"{', '.join(task.hub_languages)})")
            else:
                files = "; ".join(f"{s}: {task.mirror[s]}" for s in dict.fromkeys(missing) if s in task.mirror)
                out.append(f"target.data_dir: {key} ({', '.join(dict.fromkeys(missing))}) has no hub source that "
                           f"datasets can load (allowed: a mirror directory with the raw files, {files}; "
                           f"{task.source})")
        return out

    @property
    def intermediate_data_dir(self) -> str:
        return self.intermediate.data_dir or self.target.data_dir

    @property
    def languages(self) -> list[str]:
        task = TASKS[self.target.task]
        default = task.demo_languages if self.target.data_dir == "builtin" else task.languages
        return list(self.target.languages or default)
