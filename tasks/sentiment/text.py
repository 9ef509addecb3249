"""Text data for the sentiment task: IMDB from a local folder, a synthetic corpus, a tokenizer.

Nothing here reaches a network. The tokenizer is either trained here from the training
texts (a DistilBERT-compatible, lowercase WordPiece vocabulary) or read from a local
folder that holds a `tokenizer.json` or a `vocab.txt` (e.g. a saved DistilBERT tokenizer).
`auto` takes DistilBERT's own tokenizer (the paper's) from the data root when it is there
and trains one otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TRAIN = "train"  # the `tokenizer` value that trains a WordPiece vocabulary from the training texts
AUTO = "auto"    # DistilBERT's tokenizer from the data root if present, else TRAIN
# Where `auto` looks under the data root: a save_pretrained folder, or a Hugging Face hub
# cache's snapshots of distilbert-base-uncased (either holds vocab.txt / tokenizer.json).
DISTILBERT_FOLDERS = ("distilbert-base-uncased", "models--distilbert-base-uncased/snapshots/*")


@dataclass(frozen=True)
class TextSplit:
    texts: tuple[str, ...]
    labels: np.ndarray  # int64, 1 = positive


# ----------------------------------------------------------------------------- IMDB


def imdb_dir(root: str | None) -> Path:
    """The `aclImdb` folder under the data root, or an error that says what is expected."""
    if root is None:
        raise FileNotFoundError("dataset imdb needs --data-root (or SYMSWEEP_DATA) holding aclImdb/; "
                                "use dataset: synthetic to run without it")
    path = Path(root) / "aclImdb"
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            if not (path / split / label).is_dir():
                raise FileNotFoundError(f"IMDB folder {path / split / label} not found: expected "
                                        "<data root>/aclImdb/{train,test}/{pos,neg}/*.txt")
    return path


def load_imdb_split(root: str | None, split: str) -> TextSplit:
    """Reviews of one split, sorted by file name within each label (a fixed order)."""
    path = imdb_dir(root) / split
    texts, labels = [], []
    for label, name in ((1, "pos"), (0, "neg")):
        for f in sorted((path / name).glob("*.txt")):
            # the files hold <br /> tags; they become spaces, not tokens
            texts.append(f.read_text(encoding="utf-8", errors="replace").replace("<br />", " "))
            labels.append(label)
    return TextSplit(tuple(texts), np.asarray(labels, dtype=np.int64))


# ----------------------------------------------------------------------------- synthetic

_POSITIVE = ("great excellent wonderful superb delightful brilliant moving charming "
             "enjoyable masterful touching hilarious gripping beautiful memorable").split()
_NEGATIVE = ("awful terrible boring dreadful dull clumsy tedious lifeless annoying "
             "pointless forgettable bland painful messy horrible").split()
_NEUTRAL = ("the movie film plot actor actress director scene story camera music ending "
            "character script cast it was is this a and of with very quite rather really "
            "overall second half first act sequel studio screen").split()


def synthetic_split(n: int, seed: int) -> TextSplit:
    """n short reviews: neutral filler with 2-4 words of the label's polarity and 0-1 of the other.

    Balanced labels; fully determined by (n, seed). Learnable in a few epochs by a small model,
    which is what a smoke run needs; it says nothing about IMDB.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    texts = []
    for label in labels:
        own, other = (_POSITIVE, _NEGATIVE) if label == 1 else (_NEGATIVE, _POSITIVE)
        words = list(rng.choice(_NEUTRAL, size=rng.integers(8, 20)))
        words += list(rng.choice(own, size=rng.integers(2, 5)))
        words += list(rng.choice(other, size=rng.integers(0, 2)))
        rng.shuffle(words)
        texts.append(" ".join(words) + ".")
    return TextSplit(tuple(texts), labels)


# ----------------------------------------------------------------------------- tokenizer


def _holds_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()


def resolve_tokenizer(source: str, root: str | None) -> str:
    """What `build_tokenizer` will read: `auto` becomes the first DistilBERT folder under the
    data root that holds a tokenizer (DISTILBERT_FOLDERS), else "train"; anything else is kept."""
    if source != AUTO:
        return source
    if root is not None:
        for pattern in DISTILBERT_FOLDERS:
            for folder in sorted(Path(root).glob(pattern)):
                if _holds_tokenizer(folder):
                    return str(folder)
    return TRAIN


def build_tokenizer(source: str, train_texts: tuple[str, ...], vocab_size: int, lowercase: bool):
    """A `tokenizers.Tokenizer` with [CLS] ... [SEP] post-processing.

    source: "train" (WordPiece trained on train_texts, the BERT/DistilBERT normalizer and
    pre-tokenizer, `lowercase`) or a local folder holding tokenizer.json or vocab.txt.
    """
    from tokenizers import BertWordPieceTokenizer, Tokenizer, processors

    if source == TRAIN:
        tok = BertWordPieceTokenizer(lowercase=lowercase, clean_text=True, strip_accents=None)
        tok.train_from_iterator(list(train_texts), vocab_size=vocab_size, min_frequency=2,
                                special_tokens=SPECIAL_TOKENS, show_progress=False)
        tok = tok._tokenizer
        # training does not install BERT's post-processor (only loading a vocab does): add it
        tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                       ("[CLS]", tok.token_to_id("[CLS]")))
        return tok
    folder = Path(source)
    if (folder / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    if (folder / "vocab.txt").is_file():
        return BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=lowercase)._tokenizer
    raise FileNotFoundError(f"tokenizer folder {folder} has neither tokenizer.json nor vocab.txt "
                            f"(or use tokenizer: {TRAIN!r} to train one from the training texts)")


def encode(tokenizer, texts: tuple[str, ...], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, truncated and padded to exactly max_length ([CLS] ... [SEP] [PAD]...)."""
    pad_id = tokenizer.token_to_id("[PAD]")
    if pad_id is None:
        raise ValueError("the tokenizer has no [PAD] token")
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(length=max_length, pad_id=pad_id, pad_token="[PAD]")
    out = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in out], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in out], dtype=torch.long)
    return ids, mask
