"""The task-family interface, the shared heads' plumbing and the tokenised-feature cache.

A *family* (one module under ``trainables.tasks``) knows one kind of task end to end:

==================  =====================================================================
``load``            raw examples of one split and language, from a local mirror (the
                    formats the benchmark ships) or the hub; errors name file and line
``encode``          examples -> features (plain dicts of int lists; no padding)
``collate``         features -> a padded batch (dynamic padding: the longest in the batch)
``head``            the module on top of the encoder (``head(encoder, task)``; the benchmark's
                    heads per architecture are in ``trainables.tasks.heads``)
``loss``            head outputs + batch -> scalar training loss
``raw``             head outputs -> one picklable raw output per feature (gathered across
                    ranks at evaluation)
``decode``          examples + features + raw outputs -> predictions, one per example
``score``           predictions vs gold -> the official metrics (``trainables.scoring``)
``write``           predictions and gold in the official evaluator's folder layout
==================  =====================================================================

Robust methods only see ``model(input_ids/inputs_embeds, attention_mask, token_type_ids)``
and ``family.loss(outputs, batch)``, so every method works with every family.

Feature cache: tokenising XQuAD or PAN-X for 40 languages costs more than a tiny model's
whole training, and every trial of a sweep tokenises the same files with the same tokenizer.
``cached_features`` stores each (tokenizer, family, task, split, language, lengths, source
file) combination once as an Arrow IPC file under the storage root and memory-maps it on
reuse; the key includes the source file's size and mtime, so an edited file is re-read.
What a stage gets back is an ``ArrowFeatures`` view of the mapped file, not Python lists: rows
are converted when a batch asks for them (what a full ``to_pylist`` costs per row anyway),
so a stage starts without copying its data, the pages are shared by every
trial on a node through the OS page cache, and sequence lengths (for length-grouped batches
and length-sorted evaluation) are read from the Arrow list offsets without touching rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from trainables.config import Encoding  # what a family's encode reads (the stage's encoding settings)
from trainables.tasks.heads import freeze_unread_pooler

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")




@runtime_checkable
class TaskFamily(Protocol):
    """What every family module's ``FAMILY`` object provides (the table above);
    ``tests/test_contracts.py`` runs every family through it."""

    name: str

    def load(self, task, split: str, lang: str, data_dir: str) -> list:
        """The examples of one split and language; a data error names the file and line."""

    def augment(self, example, fn: Callable[[str], str]):
        """``example`` with its text fields (those RS-DA rewrites) passed through ``fn``."""

    def encode(self, tokenizer, examples, cfg: Encoding, train: bool) -> list[dict]:
        """Examples -> unpadded features (``train``: with labels)."""

    def collate(self, features, pad_id: int) -> dict[str, torch.Tensor]:
        """Features -> a padded batch."""

    def head(self, encoder: nn.Module, task) -> nn.Module:
        """The module on top of ``encoder`` for ``task`` (it may depend on the architecture)."""

    def loss(self, outputs, batch) -> torch.Tensor:
        """The scalar training loss of a batch."""

    def raw(self, outputs, batch) -> list:
        """One picklable raw output per feature."""

    def decode(self, task, examples, features, raw) -> list:
        """One prediction per example."""

    def score(self, task, lang: str, examples, predictions) -> dict[str, float]:
        """The official metrics, in percent."""

    def write(self, task, lang: str, examples, predictions, pred_dir: Path, label_dir: Path) -> Any:
        """Predictions and gold in the official evaluator's layout."""


def pad_inputs(features: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the model inputs of ``features`` to the longest one (dynamic padding)."""
    width = max(len(f["input_ids"]) for f in features)
    batch = {}
    for key, fill in zip(MODEL_INPUTS, (None, 0, 0)):
        if key in features[0]:
            fill = pad_id if key == "input_ids" else fill
            batch[key] = torch.tensor([list(f[key]) + [fill] * (width - len(f[key])) for f in features])
    return batch


def pad_sequences(rows: Sequence[Sequence[int]], fill: int) -> torch.Tensor:
    """``rows`` right-padded with ``fill`` to the longest, as one tensor."""
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [fill] * (width - len(r)) for r in rows])


def feature_length(f: dict) -> int:
    """Padded width a feature needs: its tokens, the longest choice (multiple choice), the
    longer of query and passage (retrieval training pairs)."""
    ids = f.get("input_ids")
    if ids is None:
        return max(feature_length(v) for v in f.values() if isinstance(v, dict))
    if len(ids) and isinstance(ids[0], (list, tuple)):
        return max(len(c) for c in ids)
    return len(ids)


def feature_lengths(features: Sequence[dict]) -> list[int]:
    """The input length of every feature (read from the Arrow offsets for ``ArrowFeatures``)."""
    if isinstance(features, ArrowFeatures):
        return features.lengths()
    return [feature_length(f) for f in features]


class ArrowFeatures(Sequence):
    """A read-only sequence of feature dicts over a (memory-mapped) Arrow table."""

    def __init__(self, table, path: str | None = None):
        self.table, self.path = table, path
        self._columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        self._lengths = None

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return {name: col[i].as_py() for name, col in self._columns.items()}

    def lengths(self) -> list[int]:
        """``feature_length`` of every row; from the list offsets when the rows are flat."""
        if self._lengths is None:
            import pyarrow as pa
            import pyarrow.compute as pc

            ids = self._columns.get("input_ids")
            if ids is not None and pa.types.is_list(ids.type) and pa.types.is_integer(ids.type.value_type):
                self._lengths = pc.list_value_length(ids).to_pylist()
            else:
                self._lengths = [feature_length(f) for f in self]
        return self._lengths


def tokenizer_inputs(enc, i: int) -> dict:
    """The model-input lists of row ``i`` of a tokenizer's batch output."""
    return {k: list(enc[k][i]) for k in MODEL_INPUTS if k in enc}


def roberta_format(tokenizer) -> bool:
    """Whether the tokenizer builds pairs RoBERTa's way, ``<s> A </s></s> B </s>`` (XLM-R,
    RoBERTa), rather than BERT's ``[CLS] A [SEP] B [SEP]``: two more special tokens for a pair than
    for one sequence, not one. The XTREME-R scripts key two input details on this model type
    (``--model_type xlmr``): tagging ends a sentence with two separators (``run_tag.py``'s
    ``sep_token_extra``), and LAReQA and Mewsli-X lowercase their text (``train_lareqa.sh``'s and
    ``train_mewslix.sh``'s ``--do_lower_case`` for XLM-R)."""
    return tokenizer.num_special_tokens_to_add(pair=True) - tokenizer.num_special_tokens_to_add(pair=False) == 2


def encoder_inputs(input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> dict:
    """The encoder's keyword arguments for a batch (token ids or, from robust methods, embeddings)."""
    kwargs = {"attention_mask": attention_mask}
    if inputs_embeds is not None:
        kwargs["inputs_embeds"] = inputs_embeds
    else:
        kwargs["input_ids"] = input_ids
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    return kwargs


def run_head(encoder: nn.Module, head: nn.Module, layer: int | None, kwargs: dict):
    """The encoder, then ``head`` on what it reads (``trainables.tasks.heads``): hidden layer
    ``layer`` (``None``: the last), or the encoder's pooler applied to it."""
    pooled = getattr(head, "reads", "hidden") == "pooled"
    if layer is None:
        out = encoder(**kwargs)
        x = out.pooler_output if pooled else out.last_hidden_state  # the encoder applies its pooler itself
    else:
        x = encoder(**kwargs, output_hidden_states=True).hidden_states[layer]
        x = encoder.pooler(x) if pooled else x
    return head(x, kwargs["attention_mask"])


class TaskModel(nn.Module):
    """A pretrained encoder with a family's head on top.

    ``layer`` picks the hidden layer the head reads (``None``: the last); retrieval reads a
    chosen layer. The forward signature is what robust methods call. The encoder's pooler
    trains only if the head reads it (``heads.freeze_unread_pooler``)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, layer: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.layer = layer
        freeze_unread_pooler(encoder, [head])

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        return run_head(self.encoder, self.head, self.layer,
                        encoder_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds))


def source_stamp(paths: Sequence[Path]) -> list:
    """Identity of source files for cache keys: path, size and mtime of each."""
    out = []
    for p in paths:
        st = Path(p).stat()
        out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return out


def tokenizer_fingerprint(tokenizer) -> str:
    """Changes whenever the tokenizer's vocabulary or settings change."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    extra = json.dumps([type(tokenizer).__name__, tokenizer.model_max_length,
                        getattr(tokenizer, "padding_side", None)])
    return hashlib.sha1((text + extra).encode()).hexdigest()[:16]


def cached_features(cache_dir: str | None, key: dict,
                    build: Callable[[], list[dict]]) -> Sequence[dict]:
    """``build()`` once per ``key`` and written as Arrow; every call (the first too, so both
    take the same path) returns an ``ArrowFeatures`` view of the memory-mapped file."""
    if cache_dir is None:
        return build()
    import pyarrow as pa

    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"{digest}.arrow"
    if not path.is_file():
        features = build()
        if not features:
            return features
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(features)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, path)  # atomic: concurrent trials may build the same entry
        (path.with_suffix(".json")).write_text(json.dumps(key, sort_keys=True, default=str))
    source = pa.memory_map(str(path))  # stays open while the view lives; pages are shared
    return ArrowFeatures(pa.ipc.open_file(source).read_all(), str(path))
