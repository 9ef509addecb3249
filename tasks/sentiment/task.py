"""Sentiment analysis with an expanded embedding (paper Sec. 2.3 and 6.3.2).

One run trains a small BERT-style classifier (transformers' BertConfig, random init: 4
layers, hidden 48, 4 heads, intermediate 3072, 512 positions, type vocabulary 2) on IMDB
or a synthetic corpus, with the standard trainable BERT embedding (`embedding: standard`)
or the paper's expanded one (`embedding: expanded`). History per epoch: train loss, test
loss, test accuracy; metrics: final and best test accuracy, final train loss.

Our reading of the paper's FixedBertEmbedding (Sec. 6.3.2): the whole BERT embedding
module (word + position + token-type embeddings, LayerNorm) keeps its random init and is
frozen; its 48-wide output is interleaved with `fill` (zeros in the paper) to 96 wide,
e_0, f, e_1, f, ..., and a trainable Linear(96, 48) maps it back to the hidden size for
the encoder. Everything after the embedding trains in both variants.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from symsweep.tasks.sentiment import text as _text
from symsweep.api import Diverged, RunContext, RunResult, Task
from symsweep.stats import completed, describe_groups


@dataclass(frozen=True)
class SentimentConfig:
    dataset: Literal["imdb", "synthetic"] = "imdb"
    """imdb: <data root>/aclImdb/{train,test}/{pos,neg}/*.txt; synthetic: a seeded generated corpus."""
    embedding: Literal["standard", "expanded"] = "standard"
    """standard: BERT's trainable embedding; expanded: frozen embedding interleaved with `fill`, Linear(2h, h)."""
    fill: float = 0.0
    """Value interleaved with the frozen embedding (the paper: zeros); ignored (stored 0.0) for standard."""
    tokenizer: str = _text.TRAIN
    """"train": WordPiece trained on the training texts; "auto": DistilBERT's own tokenizer (the
    paper's DistilBertTokenizer) from <data root>/distilbert-base-uncased/ (or a hub cache's
    models--distilbert-base-uncased/snapshots/*/) when present, else "train" (the metric
    `tokenizer_pretrained` says which); or a local folder with tokenizer.json / vocab.txt."""
    vocab_size: int = 30522
    """Target vocabulary of a trained tokenizer (DistilBERT's size); the model uses the tokenizer's actual size."""
    lowercase: bool = True
    """Lowercase text (DistilBERT uncased) when training a tokenizer or reading a bare vocab.txt."""
    max_length: int = 256
    """Tokens per review after truncation/padding, [CLS] and [SEP] included."""
    hidden_size: int = 48
    """Transformer width (the paper: 48)."""
    num_layers: int = 4
    """Transformer layers (the paper: 4)."""
    num_heads: int = 4
    """Attention heads per layer (the paper: 4)."""
    intermediate_size: int = 3072
    """Feed-forward width (the paper: 3072)."""
    max_position_embeddings: int = 512
    """Position embeddings (the paper: 512)."""
    type_vocab_size: int = 2
    """Token-type vocabulary (the paper: 2; every token has type 0 here)."""
    dropout: float = 0.1
    """Hidden and attention dropout (BERT's default)."""
    epochs: int = 30
    """Training epochs (the paper: 30)."""
    batch_size: int = 32
    """Minibatch size (the paper: 32)."""
    lr: float = 5e-5
    """Peak AdamW learning rate (the paper leaves it blank; 5e-5 is the HF Trainer default)."""
    weight_decay: float = 0.0
    """AdamW weight decay (HF Trainer default 0)."""
    warmup_ratio: float = 0.0
    """Fraction of the steps with linear warm-up before the linear decay to 0 (HF Trainer default 0)."""
    train_limit: int | None = None
    """Train on a seeded subset of this many reviews (None: all)."""
    test_limit: int | None = None
    """Evaluate on a seeded subset of this many reviews (None: all)."""
    synthetic_train: int = 2000
    """Training reviews of the synthetic corpus."""
    synthetic_test: int = 500
    """Test reviews of the synthetic corpus."""
    split_seed: int = 0
    """Seed of the synthetic corpus and of the subsets: the same for every run seed."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"epochs": (1, 10_000), "batch_size": (1, 65_536), "train_limit": (1, 100_000_000),
                     "test_limit": (1, 100_000_000), "synthetic_train": (1, 10_000_000),
                     "synthetic_test": (1, 10_000_000)}

    def __post_init__(self) -> None:
        if self.embedding not in ("standard", "expanded"):
            raise ValueError(f"embedding must be 'standard' or 'expanded', got {self.embedding!r}")
        if self.dataset not in ("imdb", "synthetic"):
            raise ValueError(f"dataset must be 'imdb' or 'synthetic', got {self.dataset!r}")
        for name in ("epochs", "batch_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "synthetic_train", "synthetic_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        if not 3 <= self.max_length <= self.max_position_embeddings:
            raise ValueError(f"max_length must be in [3, max_position_embeddings={self.max_position_embeddings}], "
                             f"got {self.max_length}")
        if self.vocab_size < len(_text.SPECIAL_TOKENS) + 1:
            raise ValueError(f"vocab_size must be > {len(_text.SPECIAL_TOKENS)}, got {self.vocab_size}")
        if not (self.lr > 0 and 0 <= self.dropout < 1 and 0 <= self.warmup_ratio < 1 and self.weight_decay >= 0):
            raise ValueError("need lr > 0, 0 <= dropout < 1, 0 <= warmup_ratio < 1, weight_decay >= 0")
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or null, got {getattr(self, name)}")
        if self.embedding == "standard":
            # no interleaving: one canonical fill so equal runs get equal ids
            object.__setattr__(self, "fill", 0.0)


# ----------------------------------------------------------------------------- model


class ExpandedEmbedding(nn.Module):
    """The paper's FixedBertEmbedding: frozen embedding -> interleave with `fill` -> Linear(2h, h)."""

    def __init__(self, frozen: nn.Module, hidden_size: int, fill: float):
        super().__init__()
        self.frozen = frozen.requires_grad_(False)
        self.fill = fill
        self.project = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        e = self.frozen(*args, **kwargs)                         # (B, L, h)
        interleaved = torch.stack([e, torch.full_like(e, self.fill)], dim=-1)  # (B, L, h, 2)
        return self.project(interleaved.flatten(-2))           # (B, L, 2h) -> (B, L, h)


def build_model(config: SentimentConfig, vocab_size: int, pad_id: int) -> nn.Module:
    """BertForSequenceClassification (2 labels, random init), its embedding expanded on request."""
    from transformers import BertConfig, BertForSequenceClassification

    bert_config = BertConfig(
        vocab_size=vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        pad_token_id=pad_id, num_labels=2)
    model = BertForSequenceClassification(bert_config)
    if config.embedding == "expanded":
        model.bert.embeddings = ExpandedEmbedding(model.bert.embeddings, config.hidden_size, config.fill)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Encoded:
    train_ids: torch.Tensor
    train_mask: torch.Tensor
    train_labels: torch.Tensor
    test_ids: torch.Tensor
    test_mask: torch.Tensor
    test_labels: torch.Tensor
    vocab_size: int
    pad_id: int
    tokenizer_source: str


def _subset(split: _text.TextSplit, limit: int | None, rng: np.random.Generator) -> _text.TextSplit:
    if limit is None or limit >= len(split.texts):
        return split
    idx = np.sort(rng.permutation(len(split.texts))[:limit])
    return _text.TextSplit(tuple(split.texts[i] for i in idx), split.labels[idx])


@functools.lru_cache(maxsize=2)
def load_encoded(dataset: str, root: str | None, tokenizer: str, vocab_size: int, lowercase: bool,
                 max_length: int, train_limit: int | None, test_limit: int | None,
                 synthetic_train: int, synthetic_test: int, split_seed: int) -> Encoded:
    """Read, subset, tokenize; shared by every run of a worker with the same data settings."""
    if dataset == "imdb":
        train, test = _text.load_imdb_split(root, "train"), _text.load_imdb_split(root, "test")
    else:
        train = _text.synthetic_split(synthetic_train, split_seed)
        test = _text.synthetic_split(synthetic_test, split_seed + 1)
    rng = np.random.default_rng(split_seed)
    train, test = _subset(train, train_limit, rng), _subset(test, test_limit, rng)
    # the tokenizer only ever sees training texts
    source = _text.resolve_tokenizer(tokenizer, root)
    tok = _text.build_tokenizer(source, train.texts, vocab_size, lowercase)
    train_ids, train_mask = _text.encode(tok, train.texts, max_length)
    test_ids, test_mask = _text.encode(tok, test.texts, max_length)
    return Encoded(train_ids, train_mask, torch.from_numpy(train.labels), test_ids, test_mask,
                   torch.from_numpy(test.labels), tok.get_vocab_size(), tok.token_to_id("[PAD]"), source)


# ----------------------------------------------------------------------------- training


def train_epoch(model: nn.Module, data: Encoded, opt, sched, batch_size: int,
                order: torch.Tensor, device: torch.device) -> float:
    model.train()
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        logits = model(input_ids=data.train_ids[idx].to(device),
                       attention_mask=data.train_mask[idx].to(device)).logits
        loss = F.cross_entropy(logits, data.train_labels[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / seen


@torch.no_grad()
def evaluate(model: nn.Module, data: Encoded, device: torch.device, batch: int = 256) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(data.test_labels), batch):
        sl = slice(start, start + batch)
        logits = model(input_ids=data.test_ids[sl].to(device), attention_mask=data.test_mask[sl].to(device)).logits
        labels = data.test_labels[sl].to(device)
        loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
    n = len(data.test_labels)
    return loss / n, correct / n


def run(config: SentimentConfig, seed: int, ctx: RunContext) -> RunResult:
    data = load_encoded(config.dataset, ctx.data_root, config.tokenizer, config.vocab_size, config.lowercase,
                        config.max_length, config.train_limit, config.test_limit, config.synthetic_train,
                        config.synthetic_test, config.split_seed)
    device = torch.device(ctx.device)
    torch.manual_seed(seed)  # model init and dropout; reproducible when called directly
    order_gen = torch.Generator().manual_seed(seed)
    model = build_model(config, data.vocab_size, data.pad_id).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                            weight_decay=config.weight_decay)
    # HF Trainer's default schedule: linear warm-up (none by default), linear decay to 0
    total_steps = config.epochs * math.ceil(len(data.train_labels) / config.batch_size)
    warmup = int(config.warmup_ratio * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / max(1, warmup) if s < warmup
                                              else max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    best_acc, train_loss, test_loss, test_acc = 0.0, math.nan, math.nan, 0.0
    for epoch in range(config.epochs):
        order = torch.randperm(len(data.train_labels), generator=order_gen)
        train_loss = train_epoch(model, data, opt, sched, config.batch_size, order, device)
        if not math.isfinite(train_loss):
            raise Diverged(f"train loss {train_loss} at epoch {epoch}")
        test_loss, test_acc = evaluate(model, data, device)
        best_acc = max(best_acc, test_acc)
        ctx.log(epoch, train_loss=train_loss, test_loss=test_loss, test_acc=test_acc)
    return RunResult(metrics={
        "test_acc": test_acc, "best_test_acc": best_acc, "test_loss": test_loss, "train_loss": train_loss,
        "n_params": count_parameters(model), "n_trainable_params": count_parameters(model, trainable_only=True),
        "vocab_size": data.vocab_size, "n_train": len(data.train_labels), "n_test": len(data.test_labels),
        "tokenizer_pretrained": int(data.tokenizer_source != _text.TRAIN),
    })


# ----------------------------------------------------------------------------- aggregation


def _aggregate(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    """`accuracy_curves`: test accuracy and train loss per epoch, mean/std over seeds."""
    done = completed(runs)
    keys = ["cfg_dataset", "cfg_embedding", "cfg_fill"]
    part = history[history["metric"].isin(["test_acc", "train_loss"])].merge(done[["run_id", *keys]], on="run_id")
    if part.empty:
        return {}
    # mean and std over seeds by the shared rule (symsweep.stats.describe_groups)
    curves = (describe_groups(part, [*keys, "metric", "step"], "value")
              .pivot(index=[*keys, "step"], columns="metric", values=["mean", "std", "n"]))
    curves.columns = [f"{metric}_{stat}" if stat != "n" else f"n_{metric}" for stat, metric in curves.columns]
    curves = curves.reset_index().rename(columns={"step": "epoch"})
    curves.columns = [c[4:] if c.startswith("cfg_") else c for c in curves.columns]
    return {"accuracy_curves": curves}


TASK = Task(
    name="sentiment",
    config_cls=SentimentConfig,
    run=run,
    summary_metrics=("test_acc", "best_test_acc", "train_loss"),
    aggregate=_aggregate,
    baseline={"embedding": "standard"},
    unused_at_baseline=("fill",),  # a standard embedding interleaves nothing
    description="small BERT on IMDB, standard vs expanded (frozen, zero-interleaved) embedding (Sec. 2.3, 6.3.2)",
)
