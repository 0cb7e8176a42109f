"""Token batches of one site of an activation store, streamed (never the whole split in RAM): for
training, shards in a random order per epoch and tokens shuffled within a buffer; for held-out
passes, in store order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytorch_lightning as pl
import torch

from neuroscope.store import ActivationStore


def shard_rows(store: ActivationStore, mask: np.ndarray) -> list[np.ndarray]:
    """Per shard, the rows (within the shard) of the tokens selected by `mask` [tokens]."""
    return [np.nonzero(mask[s["start"]:s["end"]])[0] for s in store.shards]


class SiteTokens(torch.utils.data.IterableDataset):
    """[batch_tokens, d_in] float32 batches of `site` over the tokens of `mask`. Shuffled: shards in a
    random order, a buffer of `buffer_tokens` filled from them, shuffled, and its first half
    served (the rest stays to mix with the next shards); the order depends on (seed, epoch())."""

    def __init__(self, store: ActivationStore, site: str, mask: np.ndarray, batch_tokens: int,
                 shuffle: bool = False, seed: int = 0, buffer_tokens: int = 65_536,
                 epoch: Callable[[], int] = lambda: 0) -> None:
        super().__init__()
        self.store, self.site, self.batch_tokens = store, site, int(batch_tokens)
        self.rows = shard_rows(store, np.asarray(mask, dtype=bool))
        self.n_tokens = int(sum(len(r) for r in self.rows))
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), epoch
        self.buffer_tokens = max(int(buffer_tokens), 2 * self.batch_tokens)

    def __len__(self) -> int:
        """Batches per pass (the last may be short)."""
        return -(-self.n_tokens // self.batch_tokens)

    def blocks(self, order: list[int]) -> Iterator[np.ndarray]:
        """[rows, d_in] of each shard in `order` that has selected tokens."""
        for i in order:
            if len(self.rows[i]):
                yield self.store.shard_block(i, [self.site], rows=self.rows[i])

    def __iter__(self) -> Iterator[torch.Tensor]:
        """One pass over the tokens: shuffled by (seed, epoch) or in store order."""
        if not self.shuffle:  # store order, one shard in memory at a time
            carry = self._empty()
            for block in self.blocks(list(range(len(self.rows)))):
                out = np.concatenate([carry, block])
                whole = len(out) - len(out) % self.batch_tokens
                carry = out[whole:]
                yield from self._batches(out[:whole])
            yield from self._batches(carry)
            return
        rng = np.random.default_rng([self.seed, int(self.epoch())])
        buf = self._empty()
        carry = self._empty()  # tokens short of a whole batch, served with the next half-buffer
        for block in self.blocks(rng.permutation(len(self.rows)).tolist()):
            buf = np.concatenate([buf, block])
            if len(buf) >= self.buffer_tokens:
                buf = buf[rng.permutation(len(buf))]
                half = len(buf) // 2
                out, buf = np.concatenate([carry, buf[:half]]), buf[half:]
                whole = len(out) - len(out) % self.batch_tokens
                carry = out[whole:]
                yield from self._batches(out[:whole])
        rest = np.concatenate([carry, buf])
        yield from self._batches(rest[rng.permutation(len(rest))])

    def _empty(self) -> np.ndarray:
        """[0, d_in] float32."""
        return np.zeros((0, self.store.units[self.site]), dtype=np.float32)

    def _batches(self, x: np.ndarray) -> Iterator[torch.Tensor]:
        """`x` cut into batches of `batch_tokens` rows (the last may be short)."""
        for lo in range(0, len(x), self.batch_tokens):
            yield torch.from_numpy(np.ascontiguousarray(x[lo:lo + self.batch_tokens]))


def site_stats(store: ActivationStore, site: str, mask: np.ndarray, max_tokens: int, seed: int
               ) -> tuple[np.ndarray, float, int]:
    """(mean [d_in], E‖x‖², tokens used) over up to `max_tokens` tokens of `mask`, drawn from random
    shards until enough are read (one shard at a time in memory)."""
    ds = SiteTokens(store, site, mask, batch_tokens=8192)
    order = np.random.default_rng([int(seed), 7]).permutation(len(ds.rows)).tolist()
    total = np.zeros(store.units[site], dtype=np.float64)
    sq, n = 0.0, 0
    for block in ds.blocks(order):
        block = block[: max_tokens - n].astype(np.float64)
        total += block.sum(0)
        sq += float((block ** 2).sum())
        n += len(block)
        if n >= max_tokens:
            break
    if n == 0:
        return total, 0.0, 0
    return total / n, sq / n, n


class SiteData(pl.LightningDataModule):
    """Train batches (shuffled) and dev / test batches (in order) of one site."""

    def __init__(self, store: ActivationStore, site: str, split: np.ndarray, batch_tokens: int, seed: int,
                 buffer_tokens: int, epoch: Callable[[], int]) -> None:
        super().__init__()
        self.store, self.site, self.split = store, site, np.asarray(split)
        self.batch_tokens, self.seed, self.buffer_tokens, self.epoch = batch_tokens, seed, buffer_tokens, epoch

    def _loader(self, part: int, shuffle: bool) -> torch.utils.data.DataLoader:
        """Batches of split `part` (0 train, 1 dev, 2 test), in this process."""
        ds = SiteTokens(self.store, self.site, self.split == part, self.batch_tokens, shuffle, self.seed,
                        self.buffer_tokens, self.epoch)
        return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        """Shuffled train batches."""
        return self._loader(0, True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        """Dev batches in store order."""
        return self._loader(1, False)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        """Test batches in store order."""
        return self._loader(2, False)
