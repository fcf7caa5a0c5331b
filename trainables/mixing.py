"""Training on one or several tasks in one stage: the parts, their heads, the domain-wide cap.

A stage trains *parts*: one per task (fine-tuning and recipe stages have one; an intermediate
domain has one per catalogue task, e.g. ``general`` = MNLI + SQuAD + HellaSwag, each in its own
family with its own head on the shared encoder). Every batch holds examples of one part and
goes through that part's head and loss (``MultiTaskModel.active``).

Fairness between domains (``intermediate.*`` in the space file):

- ``max_examples`` caps the *domain*, not each task: ``split_cap`` shares the cap between the
  tasks, in proportion to their sizes (``mixing: proportional``) or equally, giving what a small
  task cannot use to the others (``mixing: uniform``), so every domain trains on the same
  number of examples whatever its task sizes;
- ``mixing`` also sets which part each step trains: ``proportional`` shuffles all batches of
  all parts together (examples-proportional mixing: each task is seen once per epoch);
  ``uniform`` draws the part uniformly at every step (small tasks are revisited, large ones
  subsampled), for the same number of steps per epoch;
- ``max_steps`` gives every domain the same optimiser-step budget (it overrides epochs).

The batches themselves (which examples, in which order, on which rank) come from
``trainables.batching.BatchSchedule``, the sampler of every stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

from trainables.tasks.base import encoder_inputs, run_head
from trainables.tasks.heads import freeze_unread_pooler


@dataclass
class Part:
    """One task of a stage: its key, entry, family and features."""
    key: str
    task: object
    family: object
    features: list
    batch_settings: dict = field(default_factory=dict)
    """Stage settings the family's loss reads from every batch of this part, as 0-d tensors
    (``trainables.batching.collate``): the retrieval target's ``negatives_pool``."""


def split_cap(sizes: list[int], cap: int | None, mixing: str) -> list[int]:
    """How many examples each task keeps under a domain-wide ``cap``."""
    if cap is None or sum(sizes) <= cap:
        return list(sizes)
    if mixing == "proportional":
        total = sum(sizes)
        out = [min(n, math.floor(cap * n / total)) for n in sizes]
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):  # hand out the rounding remainder
            if sum(out) < cap and out[i] < sizes[i]:
                out[i] += 1
        return out
    out, left, open_ = [0] * len(sizes), cap, sorted(range(len(sizes)), key=lambda i: sizes[i])
    while open_:  # equal shares; what a small task cannot use goes to the others
        share, i = left // len(open_), open_[0]
        if sizes[i] <= share:
            out[i], left = sizes[i], left - sizes[i]
            open_.pop(0)
            continue
        extra = left - share * len(open_)
        for k, j in enumerate(open_):
            out[j] = share + (1 if k < extra else 0)
        break
    return out


class MultiTaskModel(nn.Module):
    """One encoder, one head per part; ``active`` picks the head for the next forward."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.head = nn.ModuleDict(heads)
        self.active = next(iter(heads))
        freeze_unread_pooler(encoder, heads.values())

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        return run_head(self.encoder, self.head[self.active], None,
                        encoder_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds))
