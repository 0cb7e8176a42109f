"""A sparse autoencoder trained by `train.py` with Lightning on one site of an activation store
(built if missing), streamed from the store:

    python train.py model=sae sae.site=layer2 [sae.architecture=relu] [task.file=ud_ewt:train]

Train tokens are the task corpus' train split; dev picks the best epoch (val/fvu), test gives the
held-out metrics of results.json. The run folder gets `sae/` in SAELens' layout (docs/sae.md).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from neuroscope.config import build
from neuroscope.errors import ConfigError
from neuroscope.probes.saved import store_meta
from neuroscope.registry import MODELS
from neuroscope.sae.config import SAEConfig
from neuroscope.sae.data import SiteData, site_stats
from neuroscope.sae.metrics import HeldOut
from neuroscope.sae.model import SparseAutoencoder
from neuroscope.sae.saelens import save_sae
from neuroscope.store import ActivationStore, corpus_store
from neuroscope.tasks import load_task

SPLIT_NAMES = ("train", "dev", "test")


def aux_latents(pre: Tensor, dead: Tensor, k_aux: int) -> tuple[Tensor, float]:
    """AuxK (Gao et al. 2024): the top-`k_aux` pre-activations among dead latents (others zero),
    and the loss scale min(dead / k_aux, 1) that keeps a few dead latents from dominating."""
    n_dead = int(dead.sum())
    k = min(k_aux, n_dead)
    masked = pre.masked_fill(~dead, float("-inf"))
    values, idx = torch.topk(masked, k=k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, idx, values), min(n_dead / k_aux, 1.0)


class SAEModule(pl.LightningModule):
    """The SAE of one store site with its data, losses (MSE, L1 for relu, AuxK on dead latents) and
    held-out metrics; monitored on dev FVU."""

    monitor = ("val/fvu", "min")

    def __init__(self, store: ActivationStore, site: str, split: np.ndarray, cfg: SAEConfig,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__()
        if site not in store.units:
            raise ConfigError(f"sae.site: the store has no site '{site}'; sites: {store.sites}")
        split = np.asarray(split)
        if len(split) != store.n_tokens:
            raise ConfigError(f"task: {len(split)} split ids for a store of {store.n_tokens} tokens")
        for i, name in enumerate(SPLIT_NAMES):
            if not (split == i).any():
                raise ConfigError(f"task.split: the {name} split has no tokens (the SAE trains on train, "
                                  "picks its epoch on dev and reports test)")
        self.store, self.site, self.split, self.cfg, self.info = store, site, split, cfg, dict(info or {})
        d_in = store.units[site]
        self.sae = SparseAutoencoder(d_in, cfg.d_sae(d_in), cfg.architecture, cfg.k, seed=cfg.seed)
        self.k_aux = min(cfg.aux_k or max(d_in // 2, 1), self.sae.d_sae)
        mean, sq, n = site_stats(store, site, split == 0, cfg.stats_tokens, cfg.seed)
        scale = math.sqrt(d_in / sq) if cfg.normalize and sq > 0 else 1.0
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))  # x·scale: E‖x‖² = d_in
        self.register_buffer("since_fired", torch.zeros(self.sae.d_sae, dtype=torch.long))  # training tokens
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.long))
        with torch.no_grad():
            self.sae.b_dec.copy_(torch.from_numpy(mean).float() * scale)  # b_dec starts at the data mean
        self.stats_tokens = n
        self._held: HeldOut | None = None

    def make_datamodule(self, data_cfg: Mapping[str, Any] | None = None) -> SiteData:
        """The site's train / dev / test batches (train.py calls it)."""
        return SiteData(self.store, self.site, self.split, self.cfg.batch_tokens, self.cfg.seed,
                        self.cfg.buffer_tokens, lambda: self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the SAE's parameters at `sae.lr`."""
        return torch.optim.Adam(self.sae.parameters(), lr=self.cfg.lr)

    def on_train_batch_start(self, batch: Tensor, batch_idx: int) -> int | None:
        """Stop the run once `sae.max_tokens` training tokens were seen."""
        if self.cfg.max_tokens is not None and int(self.tokens_seen) >= self.cfg.max_tokens:
            self.trainer.should_stop = True
            return -1  # ends the epoch; should_stop ends the run
        return None

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """MSE (+ L1 for relu) + AuxK on dead latents; updates the dead-latent counters."""
        x = batch * self.scale
        pre = self.sae.pre_activations(x)
        z = self.sae.activate(pre)
        x_hat = self.sae.decode(z)
        mse = ((x_hat - x) ** 2).sum(-1).mean()
        loss = mse
        if self.cfg.architecture == "relu":
            l1 = (z * self.sae.W_dec.norm(dim=1)).sum(-1).mean()
            loss = loss + self.cfg.l1_coefficient * l1
            self.log("train/l1", l1)
        dead = self.since_fired >= self.cfg.dead_tokens  # silent for dead_tokens before this batch
        aux = x.new_zeros(())
        if dead.any():
            acts, weight = aux_latents(pre, dead, self.k_aux)
            residual = (x - x_hat).detach()
            aux = weight * ((acts @ self.sae.W_dec - residual) ** 2).sum(-1).mean()
            loss = loss + self.cfg.aux_coefficient * aux
        with torch.no_grad():
            self.since_fired += len(x)
            self.since_fired[(z != 0).any(0)] = 0
            self.tokens_seen += len(x)
        self.log_dict({"train/loss": loss, "train/mse": mse, "train/aux": aux,
                       "train/l0": (z != 0).float().sum(-1).mean(), "train/dead": dead.float().sum()})
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Unit-norm decoder rows: step along the sphere..."""
        self.sae.project_decoder_grad()

    def on_train_batch_end(self, outputs: Any, batch: Tensor, batch_idx: int) -> None:
        """...and back onto it."""
        self.sae.normalize_decoder()

    def _held_out_step(self, batch: Tensor) -> None:
        """Add a held-out batch to the running metrics."""
        x = batch * self.scale
        z = self.sae.encode(x)
        if self._held is None:
            self._held = HeldOut(self.sae.d_in, self.sae.d_sae)
        self._held.add(x, self.sae.decode(z), z)

    def _log_held_out(self, prefix: str) -> None:
        """Log the pass's metrics as `<prefix>/<name>` and start afresh."""
        held, self._held = self._held, None
        if held is not None:
            self.log_dict({f"{prefix}/{k}": v for k, v in held.result().items()})

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        """Accumulate dev metrics."""
        self._held_out_step(batch)

    def on_validation_epoch_end(self) -> None:
        """Log val/fvu, val/mean_l0, val/dead, val/dense."""
        self._log_held_out("val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        """Accumulate test metrics."""
        self._held_out_step(batch)

    def on_test_epoch_end(self) -> None:
        """Log test/fvu, test/mean_l0, test/dead, test/dense."""
        self._log_held_out("test")

    def raw_sae(self) -> SparseAutoencoder:
        """A copy of the SAE that reads raw activations (the input scale folded into its weights)."""
        sae = copy.deepcopy(self.sae).cpu().eval()
        sae.fold_input_scale(float(self.scale))
        return sae

    def export(self, out_dir: str | Path) -> dict[str, Any]:
        """Save the SAE (best dev epoch) as `<out_dir>/sae` in SAELens' layout: {"sae": its folder, ...}."""
        meta = {"hook_name": self.site, "model_name": self.info.get("model"),
                "neuroscope": {**self.info, "site": self.site, "config": self.cfg.to_dict(),
                               "norm_scaling_factor_folded": float(self.scale),
                               "train_tokens_seen": int(self.tokens_seen)}}
        folder = save_sae(self.raw_sae(), Path(out_dir) / "sae", meta)
        return {"sae": str(folder), "site": self.site, "d_in": self.sae.d_in, "d_sae": self.sae.d_sae,
                "architecture": self.cfg.architecture}


def checked_source(source: Any, site: str) -> Any:
    """The built source model, refused before extraction when it has no site `site`."""
    sites = list(getattr(source, "sites", None) or [])
    if sites and site not in sites:
        raise ConfigError(f"sae.site: the store has no site '{site}'; sites: {sites}")
    return source


@MODELS.register("sae")
def sae(source: Mapping[str, Any] | None = None, task: Mapping[str, Any] | None = None,
        data_root: str | None = None, download: bool = False, store: Mapping[str, Any] | None = None,
        autoencoder: Mapping[str, Any] | None = None) -> SAEModule:
    """Build (or reuse) the store of `source` over the task corpus and an SAE to train on a site of it."""
    cfg = SAEConfig.from_dict(autoencoder)
    if not source or "name" not in source:
        raise ConfigError("model.source: the model whose site the SAE reads, e.g. model.source.name=minilm")
    if not task or "name" not in task:
        raise ConfigError("task: the corpus and its train/dev/test split, e.g. `python train.py model=sae task=sentences`")
    corpus = load_task(dict(task), data_root, download=download)
    node = dict(source)
    built, _ = corpus_store(lambda: checked_source(build(MODELS, node, "model.source"), cfg.site), node, corpus,
                            {"root": "~/.cache/neuroscope/stores", **dict(store or {})})
    info = {"model": str(node["name"]), "task": corpus.name, "task_config": dict(task), "seed": cfg.seed,
            **store_meta(built)}
    return SAEModule(built, cfg.site, corpus.split, cfg, info)
