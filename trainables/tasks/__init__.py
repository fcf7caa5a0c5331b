"""Target tasks (zero-shot evaluation targets), one registry entry per task.

A task names its family (which decides the head, the inputs and the metric), its languages
exactly as XTREME-R lists them, its hub source and its local-mirror layout. The walking
skeleton implements the sentence-pair classification family (``pair_classification``) and the
XNLI entry; later issues add the rest of the XTREME-R suite here, each as one more entry.

Local-mirror layout (the XTREME download layout): ``{data_dir}/{task}/{split}-{lang}.tsv``
with English ``train``/``dev`` and per-language ``test`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.registry import unknown


@dataclass(frozen=True)
class TargetTask:
    key: str
    family: str
    """Module under ``trainables.tasks`` that builds inputs, head and metric."""
    languages: tuple[str, ...]
    """Evaluation languages (ISO 639-1), as the benchmark lists them."""
    labels: tuple[str, ...]
    metric: str
    hub_id: str
    """Hub dataset id; the language is the hub config."""
    demo_languages: tuple[str, ...] = ()
    """Languages the built-in demo data covers (``data_dir: builtin``)."""


TASKS: dict[str, TargetTask] = {
    "xnli": TargetTask(
        key="xnli",
        family="pair_classification",
        languages=("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr",
                   "ur", "vi", "zh"),
        labels=("entailment", "neutral", "contradiction"),
        metric="accuracy",
        hub_id="facebook/xnli",
        demo_languages=("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "zh"),
    ),
}


def target_task(key: str) -> TargetTask:
    if key not in TASKS:
        raise KeyError(unknown("target task", key, TASKS))
    return TASKS[key]
