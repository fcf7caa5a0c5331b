"""``builtin:mini-bert``: a small multilingual BERT pretrained on the spot on the miniature world.

Masked language modelling on the union of the languages' corpora (``data.pretraining_corpus``:
independent events per language, nothing parallel), with BERT's recipe (15 % of the words chosen;
of those 80 % ``[MASK]``, 10 % a random word, 10 % kept). The vocabulary is the world's words,
each one token, plus the special tokens; languages share nothing but the special tokens and the
positions, which Dufter & Schütze (2020) found enough for a small, under-parameterised BERT to
become multilingual; K et al. (2020) that depth matters more than shared sub-words, hence 4
layers at width 64.

Built once per storage root, like the stage cache's entries (``trainables.models.resolve_model``
holds a file lock; concurrent trials wait for the first). A fixed number of steps from fixed
seeds; ``pretraining.json`` next to the weights records the steps, the loss at the start and the
end and the seconds it took.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

STEPS = 600
BATCH = 64
LEARNING_RATE = 1e-3
MAX_LENGTH = 32


def build_tokenizer(max_positions: int):
    """A WordPiece tokenizer whose vocabulary is every word of every language, whole."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from trainables.miniature.languages import LANGUAGES, lexicon

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for lang in LANGUAGES for w in lexicon(lang).words.values()})
    vocab = {t: i for i, t in enumerate([*special, *words])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, handle_chinese_chars=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_positions)


def build_mini_bert(out: Path, data_root: Path, config_fields: dict, steps: int = STEPS) -> dict:
    """Pretrain the encoder on ``data_root``'s miniature corpus and write it, with its tokenizer,
    to ``out`` (atomically); returns what ``pretraining.json`` records."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel

    from trainables.miniature.data import write_miniature

    corpus_dir = write_miniature(data_root) / "pretrain"
    texts = [line for path in sorted(corpus_dir.glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line]
    tokenizer = build_tokenizer(config_fields["max_position_embeddings"])
    enc = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding="max_length", return_tensors="pt")
    ids_all, mask_all = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(sorted(tokenizer.all_special_ids))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), **config_fields)
    mlm = BertForMaskedLM(config)
    opt = torch.optim.AdamW(mlm.parameters(), lr=LEARNING_RATE)
    order = torch.Generator().manual_seed(0)
    start, losses = time.time(), []
    mlm.train()
    for _ in range(steps):
        pick = torch.randint(0, len(ids_all), (BATCH,), generator=order)
        ids, mask = ids_all[pick].clone(), mask_all[pick]
        chosen = (torch.rand(ids.shape, generator=order) < 0.15) & ~torch.isin(ids, special)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        roll = torch.rand(ids.shape, generator=order)
        ids[chosen & (roll < 0.8)] = tokenizer.mask_token_id
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        ids[swap] = torch.randint(len(tokenizer.all_special_ids), len(tokenizer), (int(swap.sum()),), generator=order)
        loss = mlm(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    record = {"steps": steps, "batch": BATCH, "learning_rate": LEARNING_RATE, "sentences": len(texts),
              "loss_first_50": sum(losses[:50]) / min(50, len(losses)),
              "loss_last_50": sum(losses[-50:]) / min(50, len(losses)), "seconds": round(time.time() - start, 1)}
    torch.manual_seed(1)
    encoder = BertModel(config)  # with a pooler, as a real BERT checkpoint has one
    encoder.load_state_dict(mlm.bert.state_dict(), strict=False)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tokenizer.save_pretrained(tmp)
    encoder.save_pretrained(tmp)
    (tmp / "pretraining.json").write_text(json.dumps(record, indent=1))
    os.replace(tmp, out)
    return record
