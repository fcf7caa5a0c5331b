"""English intermediate tasks, grouped by domain.

A sweep's intermediate axis names *domains*; each domain resolves to one or more catalogue
entries whose training sets are mixed. Domain ``none`` means "no intermediate stage": the
pretrained encoder goes straight to target-task fine-tuning.

Every entry here is a sentence-pair classification (NLI-format) task, the one task family
the walking skeleton trains; entries keep their hub id and licence so the same key loads the
real data from the hub or a local mirror. ``demo`` entries also have a built-in,
deterministic synthetic version (``trainables.demo_data``) so the embedded default runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.registry import unknown


@dataclass(frozen=True)
class IntermediateTask:
    key: str
    """Registry key used in space files."""
    domain: str
    format: str
    """Task format; decides the head (only ``nli`` so far)."""
    labels: tuple[str, ...]
    """Label names, in the order the head's logits use."""
    hub_id: str | None
    """Hugging Face dataset id, or None where the data may only come from a local path."""
    hub_config: str | None
    hub_fields: tuple[str, str, str]
    """(premise, hypothesis, label) column names in the hub dataset."""
    license: str
    access: str
    """"open", or what access requires (e.g. credentialed PhysioNet access for MedNLI)."""
    demo: bool
    """True when ``trainables.demo_data`` has a built-in synthetic version."""


CATALOG: dict[str, IntermediateTask] = {
    t.key: t
    for t in [
        IntermediateTask(
            "mnli", "general", "nli", ("entailment", "neutral", "contradiction"),
            "nyu-mll/glue", "mnli", ("premise", "hypothesis", "label"),
            "OANC/CC BY-SA 3.0 mix (see GLUE card)", "open", demo=True,
        ),
        IntermediateTask(
            "contract_nli", "legal", "nli", ("entailment", "contradiction", "not_mentioned"),
            "kiddothe2b/contract-nli", "contractnli_a", ("premise", "hypothesis", "label"),
            "CC BY 4.0", "open (script-only on the hub: use a local mirror)", demo=True,
        ),
        IntermediateTask(
            "mednli", "medical", "nli", ("entailment", "contradiction", "neutral"),
            None, None, ("sentence1", "sentence2", "gold_label"),
            "PhysioNet Credentialed Health Data License 1.5.0",
            "credentialed (PhysioNet): local path only, never mirror it openly", demo=True,
        ),
        IntermediateTask(
            "scitail", "science", "nli", ("entails", "neutral"),
            "allenai/scitail", "tsv_format", ("premise", "hypothesis", "label"),
            "Apache 2.0", "open", demo=False,
        ),
    ]
}

# Domain -> default task keys. "none" trains no intermediate model.
DOMAINS: dict[str, tuple[str, ...]] = {"none": ()}
for _task in CATALOG.values():
    DOMAINS[_task.domain] = DOMAINS.get(_task.domain, ()) + (_task.key,)


def intermediate_task(key: str) -> IntermediateTask:
    if key not in CATALOG:
        raise KeyError(unknown("intermediate task", key, CATALOG))
    return CATALOG[key]
