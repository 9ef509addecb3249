"""The sentiment task: local tokenizer, IMDB layout, the expanded embedding (tiny models, CPU)."""
from __future__ import annotations

import socket

import pytest
import torch

from symsweep import SimpleContext
from symsweep.tasks.sentiment import text as _text
from symsweep.tasks.sentiment.task import (Encoded, ExpandedEmbedding, SentimentConfig, build_model, count_parameters,
                             load_encoded, run, train_epoch)

TINY = dict(dataset="synthetic", synthetic_train=48, synthetic_test=16, vocab_size=120, max_length=16,
            hidden_size=16, num_heads=2, num_layers=1, intermediate_size=32, epochs=2, batch_size=16, lr=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sentiment task tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_config_validates_and_canonicalizes_standard_runs():
    with pytest.raises(ValueError, match="embedding"):
        SentimentConfig(embedding="wide")
    with pytest.raises(ValueError, match="max_length"):
        SentimentConfig(max_length=1000)
    assert SentimentConfig(embedding="standard", fill=1.0).fill == 0.0
    assert SentimentConfig(embedding="expanded", fill=1.0).fill == 1.0


def test_tokenizer_is_trained_locally_and_pads_to_max_length(no_network, tmp_path):
    texts = _text.synthetic_split(64, seed=0).texts
    tok = _text.build_tokenizer(_text.TRAIN, texts, vocab_size=200, lowercase=True)
    vocab = tok.get_vocab()
    assert all(t in vocab for t in _text.SPECIAL_TOKENS)
    ids, mask = _text.encode(tok, ("Great MOVIE.", " ".join(["great"] * 50)), max_length=24)
    assert ids.shape == (2, 24) and ids[0, 0] == tok.token_to_id("[CLS]")
    assert ids[0, -1] == tok.token_to_id("[PAD]") and mask[0, -1] == 0 and mask[1].all()
    # a user's tokenizer folder (vocab.txt, as a saved DistilBERT tokenizer holds) gives the same ids
    ranked = sorted(vocab, key=vocab.get)
    (tmp_path / "vocab.txt").write_text("\n".join(ranked) + "\n")
    ids2, _ = _text.encode(_text.build_tokenizer(str(tmp_path), (), 0, True), ("Great MOVIE.",), 24)
    assert torch.equal(ids2[0], ids[0])
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        _text.build_tokenizer(str(tmp_path / "missing"), (), 0, True)


def test_auto_tokenizer_takes_a_local_distilbert_folder_and_falls_back_to_training(no_network, tmp_path):
    assert _text.resolve_tokenizer(_text.AUTO, None) == _text.TRAIN
    assert _text.resolve_tokenizer(_text.AUTO, str(tmp_path)) == _text.TRAIN        # nothing there
    (tmp_path / "distilbert-base-uncased").mkdir()
    assert _text.resolve_tokenizer(_text.AUTO, str(tmp_path)) == _text.TRAIN        # empty folder
    snapshot = tmp_path / "models--distilbert-base-uncased" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "vocab.txt").write_text("\n".join(_text.SPECIAL_TOKENS + ["great", "movie", "."]) + "\n")
    assert _text.resolve_tokenizer(_text.AUTO, str(tmp_path)) == str(snapshot)    # a hub cache
    saved = tmp_path / "distilbert-base-uncased"
    (saved / "vocab.txt").write_text((snapshot / "vocab.txt").read_text())
    assert _text.resolve_tokenizer(_text.AUTO, str(tmp_path)) == str(saved)       # save_pretrained wins
    assert _text.resolve_tokenizer("/some/folder", str(tmp_path)) == "/some/folder"
    cfg = SentimentConfig(**{**TINY, "tokenizer": _text.AUTO})
    ctx = SimpleContext(data_root=str(tmp_path))
    res = run(cfg, 0, ctx).metrics
    assert res["tokenizer_pretrained"] == 1 and res["vocab_size"] == len(_text.SPECIAL_TOKENS) + 3
    assert run(cfg, 0, SimpleContext()).metrics["tokenizer_pretrained"] == 0


def _write_imdb(root):
    for split in ("train", "test"):
        for label, word in (("pos", "wonderful superb"), ("neg", "awful dreadful")):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(6):
                (folder / f"{i}_7.txt").write_text(f"The film was {word}.<br /><br />Scene {i} {word}.")


def test_imdb_read_from_standard_layout(tmp_path, no_network):
    _write_imdb(tmp_path)
    split = _text.load_imdb_split(str(tmp_path), "train")
    assert len(split.texts) == 12 and split.labels.tolist() == [1] * 6 + [0] * 6
    assert "<br />" not in split.texts[0]
    cfg = SentimentConfig(**{**TINY, "dataset": "imdb", "epochs": 1})
    result = run(cfg, 0, SimpleContext(data_root=str(tmp_path)))
    assert result.metrics["n_train"] == 12 and result.metrics["n_test"] == 12
    with pytest.raises(FileNotFoundError, match="aclImdb"):
        _text.load_imdb_split(str(tmp_path / "nowhere"), "train")


def test_expanded_embedding_interleaves_and_counts_parameters():
    std = build_model(SentimentConfig(**TINY), vocab_size=100, pad_id=0)
    exp = build_model(SentimentConfig(**{**TINY, "embedding": "expanded", "fill": 0.5}), vocab_size=100, pad_id=0)
    emb = exp.bert.embeddings
    assert isinstance(emb, ExpandedEmbedding)
    h = TINY["hidden_size"]
    frozen = count_parameters(emb.frozen)
    assert count_parameters(exp) == count_parameters(std) + 2 * h * h + h
    assert count_parameters(exp, trainable_only=True) == count_parameters(std) - frozen + 2 * h * h + h
    # the projection sees e_0, fill, e_1, fill, ...
    seen = {}
    emb.project.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))  # returns None: output kept
    emb.eval()
    ids = torch.randint(0, 100, (2, 5))
    out = emb(input_ids=ids)
    assert out.shape == (2, 5, h) and seen["x"].shape == (2, 5, 2 * h)
    assert torch.equal(seen["x"][..., 0::2], emb.frozen(input_ids=ids))
    assert torch.all(seen["x"][..., 1::2] == 0.5)


def test_frozen_embedding_does_not_change_in_training():
    cfg = SentimentConfig(**{**TINY, "embedding": "expanded"})
    data: Encoded = load_encoded(cfg.dataset, None, cfg.tokenizer, cfg.vocab_size, cfg.lowercase, cfg.max_length,
                                 None, None, cfg.synthetic_train, cfg.synthetic_test, cfg.split_seed)
    torch.manual_seed(0)
    model = build_model(cfg, data.vocab_size, data.pad_id)
    frozen_before = {k: v.clone() for k, v in model.bert.embeddings.frozen.state_dict().items()}
    project_before = model.bert.embeddings.project.weight.clone()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)  # weight decay must not touch it either
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    train_epoch(model, data, opt, sched, 16, torch.arange(len(data.train_labels)), torch.device("cpu"))
    for k, v in model.bert.embeddings.frozen.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
    assert not torch.equal(model.bert.embeddings.project.weight, project_before)


@pytest.mark.parametrize("embedding", ["standard", "expanded"])
def test_run_is_reproducible(embedding, no_network):
    cfg = SentimentConfig(**{**TINY, "embedding": embedding})
    a, ctx = run(cfg, 0, SimpleContext()), SimpleContext()
    b = run(cfg, 0, ctx)
    assert a.metrics == b.metrics
    assert [h["step"] for h in ctx.history] == [0, 1]
    assert {"train_loss", "test_acc", "test_loss"} <= set(ctx.history[0])
    assert run(cfg, 1, SimpleContext()).metrics["train_loss"] != a.metrics["train_loss"]


def test_accuracy_curves_aggregate():
    import pandas as pd

    from symsweep.tasks.sentiment.task import TASK
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "status": ["completed"] * 3, "cfg_dataset": "synthetic",
                         "cfg_embedding": ["standard", "standard", "expanded"], "cfg_fill": 0.0})
    history = pd.DataFrame([{"run_id": r, "step": s, "metric": m, "value": v}
                            for r, base in (("a", 0.6), ("b", 0.8), ("c", 0.5)) for s in (0, 1)
                            for m, v in (("test_acc", base + s / 10), ("train_loss", 1.0 - s / 10))])
    curves = TASK.aggregate(runs, history, None)["accuracy_curves"]
    std0 = curves[(curves["embedding"] == "standard") & (curves["epoch"] == 0)].iloc[0]
    assert std0["test_acc_mean"] == pytest.approx(0.7) and std0["n_test_acc"] == 2
    assert len(curves) == 4
