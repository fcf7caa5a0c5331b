"""The batch sampler of every training stage: which examples, in which order, on which rank.

``BatchSchedule``: each rank takes an equal shard of every part per epoch
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

``collate`` turns a batch of one part into tensors (its family's collation).
"""

from __future__ import annotations

import math
import random

import torch

from trainables.mixing import Part
from trainables.performance import MEGABATCH


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
    """The padded batch of ``indices`` of ``part``'s features, with the part's batch settings."""
    batch = part.family.collate([part.features[i] for i in indices], pad_id)
    return {**batch, **{k: torch.tensor(v) for k, v in part.batch_settings.items()}}
