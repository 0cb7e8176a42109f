"""On-disk activation store: sharded memory-mapped arrays plus a JSON manifest."""

from neuroscope.store.extract import corpus_store, extract, open_or_build, store_key
from neuroscope.store.store import ActivationStore, cache_dir

__all__ = ["ActivationStore", "cache_dir", "corpus_store", "extract", "open_or_build", "store_key"]
