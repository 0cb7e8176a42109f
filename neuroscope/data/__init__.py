"""Data root, corpus look-up and download, readers of token-level corpora."""

from neuroscope.data.root import CorpusFile, data_roots, locate

__all__ = ["CorpusFile", "data_roots", "locate"]
