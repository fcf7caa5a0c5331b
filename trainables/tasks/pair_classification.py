"""Sentence-pair classification (XNLI format): inputs, collation and accuracy.

Inputs are ``tokenizer(premise, hypothesis)`` truncated to ``max_length`` and padded per
batch to the longest sequence (dynamic padding); the head classifies the first token.
"""

from __future__ import annotations

import torch


def encode(tokenizer, examples, max_length: int) -> list[dict]:
    enc = tokenizer([e.premise for e in examples], [e.hypothesis for e in examples],
                    truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{**{k: enc[k][i] for k in keys}, "labels": e.label} for i, e in enumerate(examples)]


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
    batch = {}
    for key, fill in (("input_ids", pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
        if key in features[0]:
            batch[key] = torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features])
    batch["labels"] = torch.tensor([f["labels"] for f in features])
    return batch


def accuracy(predictions: list[int], labels: list[int]) -> float:
    if not labels:
        raise ValueError("accuracy of an empty evaluation set")
    return sum(int(p == y) for p, y in zip(predictions, labels)) / len(labels)
