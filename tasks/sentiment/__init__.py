"""Sentiment analysis with an expanded BERT embedding (paper Sec. 2.3, 6.3): `task` trains
the model, `text` reads IMDB (or makes a synthetic corpus) and builds the tokenizer."""
from symsweep.tasks.sentiment.task import TASK

__all__ = ["TASK"]
