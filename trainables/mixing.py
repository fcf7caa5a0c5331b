"""Training on one or several tasks in one stage: the parts, their heads and the batch schedule.

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

``BatchSchedule`` is the sampler. Each rank takes an equal shard of every part per epoch
(indices shuffled from (seed, epoch, part), padded by repetition to a multiple of the world
size, as ``DistributedSampler`` does) and every rank draws the same sequence of parts, so under
DDP all ranks run the same head at each step. Unused heads get no gradient: with several parts
the model is wrapped with ``find_unused_parameters``.

Length grouping (``training.group_by_length``, on by default; ``trainables.performance``): given
each part's feature lengths, the shuffled order is cut into mega-batches of ``MEGABATCH``
global batches, each sorted by length (longest first; ties keep the shuffled order) and cut
into global batches; every rank takes every world-th example of a global batch, so all ranks
pad to about the same width and wait for each other less; the order of the global batches is
shuffled (seeded, the same on every rank). The number of steps, the examples each rank sees
per epoch and the determinism are those of the ungrouped schedule.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from torch import nn

from trainables.performance import MEGABATCH


@dataclass
class Part:
    key: str
    task: object
    family: object
    features: list


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

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        kwargs = {"attention_mask": attention_mask}
        kwargs["inputs_embeds" if inputs_embeds is not None else "input_ids"] = (
            inputs_embeds if inputs_embeds is not None else input_ids)
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.head[self.active](self.encoder(**kwargs).last_hidden_state, attention_mask)


class BatchSchedule:
    """Per epoch: the same list of (part index, this rank's feature indices) on every rank."""

    def __init__(self, sizes: list[int], per_worker: int, world: int, rank: int, seed: int, mixing: str,
                 lengths: list[list[int]] | None = None):
        self.sizes, self.per_worker, self.world, self.rank = sizes, per_worker, world, rank
        self.seed, self.mixing, self.lengths = seed, mixing, lengths
        if lengths is not None and [len(x) for x in lengths] != list(sizes):
            raise ValueError("BatchSchedule: one length per feature of every part")

    def _shard(self, part: int, epoch: int) -> list[list[int]]:
        n = self.sizes[part]
        order = list(range(n))
        rng = random.Random(f"{self.seed}/{epoch}/{part}")
        rng.shuffle(order)
        per_rank = math.ceil(n / self.world)
        order += order[:per_rank * self.world - n]  # pad by repetition, as DistributedSampler does
        if self.lengths is None:
            mine = order[self.rank::self.world]
            return [mine[i:i + self.per_worker] for i in range(0, len(mine), self.per_worker)]
        lens, width = self.lengths[part], self.per_worker * self.world  # a global batch
        batches = []
        for s in range(0, len(order), width * MEGABATCH):
            group = sorted(order[s:s + width * MEGABATCH], key=lambda i: -lens[i])  # stable
            batches += [group[i:i + width] for i in range(0, len(group), width)]
        rng.shuffle(batches)
        return [b[self.rank::self.world] for b in batches]

    def steps_per_epoch(self) -> int:
        return sum(math.ceil(math.ceil(n / self.world) / self.per_worker) for n in self.sizes)

    def epoch(self, epoch: int) -> list[tuple[int, list[int]]]:
        shards = [self._shard(p, epoch) for p in range(len(self.sizes))]
        rng = random.Random(f"{self.seed}/{epoch}/mix")
        if self.mixing == "proportional" or len(shards) == 1:
            out = [(p, b) for p, batches in enumerate(shards) for b in batches]
            if len(shards) > 1:
                rng.shuffle(out)
            return out
        out, cursor = [], [0] * len(shards)
        for _ in range(self.steps_per_epoch()):
            p = rng.randrange(len(shards))
            out.append((p, shards[p][cursor[p] % len(shards[p])]))
            cursor[p] += 1
        return out


def collate(part: Part, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    return part.family.collate([part.features[i] for i in indices], pad_id)
