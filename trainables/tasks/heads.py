"""Task heads as the benchmark's models put them on the encoder.

XTREME-R fine-tunes with transformers' task classes, so its heads are theirs, chosen by the
checkpoint's architecture:

=====================  ==============================================  =========================================
family                 BERT-format checkpoints (mBERT ...)              RoBERTa-format checkpoints (XLM-R ...)
=====================  ==============================================  =========================================
classification         ``BertForSequenceClassification``: the           ``XLMRobertaForSequenceClassification``
(``run_classify.py``)  checkpoint's pooler (dense + tanh on [CLS]),     (``RobertaClassificationHead``): on <s>,
                       dropout, linear                                  dropout, a *new* dense + tanh, dropout,
                                                                        linear; the checkpoint's pooler unused
multiple choice        ``BertForMultipleChoice``: pooler, dropout,      ``XLMRobertaForMultipleChoice``: the same,
(``run_xcopa.py``)     linear to one score per choice                   on XLM-R's pooler
retrieval training     ``BertForRetrieval`` (``third_party/bert.py``): the pooled output, L2-normalised; the
(LAReQA, Mewsli-X)     in-batch logits are cosine x a learnable scale that starts at 100
tagging, QA            a linear layer per token (tagging after dropout), in the families' modules
=====================  ==============================================  =========================================

Dropout is the config's ``classifier_dropout`` when set, else ``hidden_dropout_prob``, and new
linear layers are initialised as ``PreTrainedModel._init_weights`` does (normal with the
config's ``initializer_range``, zero bias), as in those classes.

A head declares what it reads: ``reads = "hidden"`` (the chosen layer's hidden states) or
``"pooled"`` (the encoder's pooler applied to them). ``TaskModel`` feeds it accordingly.
Encoders without a pooler (architectures that have none, e.g. DistilBERT) get the first-token
variants of these heads: a documented departure, as the benchmark has no such model.

The pooler travels with the encoder: every stage loads it (``trainables.models.load_encoder``)
and saves it, and a stage whose heads do not read it keeps it frozen (``freeze_unread_pooler``:
no gradient, so DDP sees no unused parameter and the weights pass unchanged). A target stage
after an intermediate QA stage thus reads the checkpoint's pretrained pooler, not a new one.
"""

from __future__ import annotations

import torch
from torch import nn

ROBERTA_TYPES = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "xmod"})
"""``config.model_type`` of the architectures whose sequence classifier is ``RobertaClassificationHead``."""
LOGIT_SCALE_INIT = 100.0
"""``BertForRetrieval``'s ``logit_scale`` at initialisation."""


def pooler_of(encoder: nn.Module) -> nn.Module | None:
    """The encoder's pooler, or ``None`` where the architecture has none."""
    return getattr(encoder, "pooler", None)


def freeze_unread_pooler(encoder: nn.Module, heads) -> None:
    """Train the pooler only when one of ``heads`` reads it (see the module docstring)."""
    pooler = pooler_of(encoder)
    if pooler is not None:
        pooler.requires_grad_(any(getattr(h, "reads", "hidden") == "pooled" for h in heads))


def head_dropout(config) -> float:
    """The classifier dropout transformers' task classes use."""
    p = getattr(config, "classifier_dropout", None)
    return p if p is not None else getattr(config, "hidden_dropout_prob", 0.1)


def new_linear(config, n_in: int, n_out: int) -> nn.Linear:
    """A linear layer initialised as ``PreTrainedModel._init_weights`` initialises one."""
    layer = nn.Linear(n_in, n_out)
    nn.init.normal_(layer.weight, mean=0.0, std=getattr(config, "initializer_range", 0.02))
    nn.init.zeros_(layer.bias)
    return layer


def sentence_reads(encoder: nn.Module) -> str:
    """What a sentence-level head of the benchmark reads on this encoder: the pooled output,
    or (no pooler) the hidden states, of which it takes the first token (``first_or_pooled``)."""
    return "pooled" if pooler_of(encoder) is not None else "hidden"


def first_or_pooled(x: torch.Tensor, reads: str) -> torch.Tensor:
    """The sentence vector a head gets: ``x`` itself when pooled, else its first token."""
    return x if reads == "pooled" else x[:, 0]


class LinearHead(nn.Module):
    """Dropout and a linear layer on the pooled output (``reads="pooled"``) or on the first
    token's hidden state (``reads="hidden"``)."""

    def __init__(self, config, num_outputs: int, reads: str):
        super().__init__()
        self.reads = reads
        self.dropout = nn.Dropout(head_dropout(config))
        self.linear = new_linear(config, config.hidden_size, num_outputs)

    def forward(self, x, attention_mask):
        return self.linear(self.dropout(first_or_pooled(x, self.reads)))


class RobertaStyleHead(nn.Module):
    """``RobertaClassificationHead``: on the first token, dropout, dense + tanh, dropout, linear."""
    reads = "hidden"

    def __init__(self, config, num_outputs: int):
        super().__init__()
        self.dropout = nn.Dropout(head_dropout(config))
        self.dense = new_linear(config, config.hidden_size, config.hidden_size)
        self.out_proj = new_linear(config, config.hidden_size, num_outputs)

    def forward(self, hidden, attention_mask):
        x = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        return self.out_proj(self.dropout(x))


def sequence_classifier(encoder: nn.Module, num_labels: int) -> nn.Module:
    """The head ``AutoModelForSequenceClassification`` would put on this encoder."""
    config = encoder.config
    if config.model_type in ROBERTA_TYPES:
        return RobertaStyleHead(config, num_labels)
    return LinearHead(config, num_labels, sentence_reads(encoder))


def choice_scorer(encoder: nn.Module) -> nn.Module:
    """The head ``AutoModelForMultipleChoice`` would put on this encoder: one score per choice."""
    return LinearHead(encoder.config, 1, sentence_reads(encoder))


class RetrievalHead(nn.Module):
    """``BertForRetrieval``'s encoding: the pooled output (the first token's hidden state where
    the encoder has no pooler), L2-normalised and multiplied by the square root of a learnable
    scale, so that the dot product of a query and a candidate is ``logit_scale x cosine``, the
    benchmark's in-batch logit. Evaluation re-normalises (ranking by cosine, as it does)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.reads = sentence_reads(encoder)
        self.logit_scale = nn.Parameter(torch.tensor([LOGIT_SCALE_INIT]))

    def forward(self, x, attention_mask):
        x = first_or_pooled(x, self.reads)
        return nn.functional.normalize(x.float(), dim=-1) * self.logit_scale.float().sqrt()
