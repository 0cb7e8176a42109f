"""On-disk activation store: sharded memory-mapped arrays plus a JSON manifest."""

from neuroscope.store.extract import extract, store_key
from neuroscope.store.store import ActivationStore, cache_dir

__all__ = ["ActivationStore", "cache_dir", "extract", "store_key"]
