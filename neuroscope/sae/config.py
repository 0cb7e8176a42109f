"""The `sae.*` settings of `python train.py model=sae sae.site=layer2` (conf/model/sae.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from neuroscope.errors import ConfigError
from neuroscope.sae.model import ARCHITECTURES


@dataclass(frozen=True)
class SAEConfig:
    """What to train: which site, the architecture and its sparsity, and the optimisation."""

    site: str
    architecture: str = "topk"        # topk | relu
    k: int = 32                       # topk: latents active per token
    l1_coefficient: float = 5.0       # relu: weight of Σ z_i ‖W_dec,i‖ (inputs normalised: E‖x‖² = d_in)
    expansion: int = 8                # d_sae = expansion × d_in
    lr: float = 4e-4
    batch_tokens: int = 4096
    max_tokens: int | None = None     # stop after this many training tokens (null: trainer.max_epochs)
    aux_k: int | None = None          # dead latents in the auxiliary loss (null: d_in // 2)
    aux_coefficient: float = 1 / 32   # weight of the auxiliary loss (Gao et al. 2024)
    dead_tokens: int = 200_000        # a latent silent for this many training tokens counts as dead
    normalize: bool = True            # train on x·s with E‖s·x‖² = d_in; s is folded into the saved SAE
    buffer_tokens: int = 65_536       # tokens shuffled together (shards are read in random order)
    stats_tokens: int = 100_000       # train tokens for the data mean (b_dec) and the scale s
    seed: int = 0

    @classmethod
    def from_dict(cls, node: Mapping[str, Any] | None) -> SAEConfig:
        """Checked settings; a missing site, an unknown key or a bad value is a ConfigError naming `sae.<key>`."""
        node = dict(node or {})
        known = {f.name for f in fields(cls)}
        for key in node:
            if key not in known:
                raise ConfigError(f"sae.{key}: not a setting of the SAE; known: {sorted(known)}")
        if not node.get("site"):
            raise ConfigError("sae.site: which site of the store to train on, e.g. `python train.py model=sae sae.site=layer2`")
        cfg = cls(**node)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise a ConfigError naming the first bad setting."""
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"sae.architecture: '{self.architecture}' is not one of {list(ARCHITECTURES)}")
        ints = {"k": self.k, "expansion": self.expansion, "batch_tokens": self.batch_tokens,
                "dead_tokens": self.dead_tokens, "buffer_tokens": self.buffer_tokens,
                "stats_tokens": self.stats_tokens, "max_tokens": self.max_tokens, "aux_k": self.aux_k}
        for key, value in ints.items():
            if value is None and key in ("max_tokens", "aux_k"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"sae.{key}: expected a positive integer, got {value!r}")
        for key in ("lr", "l1_coefficient", "aux_coefficient"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (key == "lr" and value == 0):
                raise ConfigError(f"sae.{key}: expected a non-negative number{' > 0' if key == 'lr' else ''}, got {value!r}")
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"sae.normalize: expected true or false, got {self.normalize!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"sae.seed: expected an integer, got {self.seed!r}")

    def d_sae(self, d_in: int) -> int:
        """Number of latents for a site of `d_in` units; a k above it is a ConfigError."""
        d_sae = self.expansion * d_in
        if self.architecture == "topk" and self.k > d_sae:
            raise ConfigError(f"sae.k: {self.k} latents active of only {d_sae} (sae.expansion {self.expansion} × {d_in} units)")
        return d_sae

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)
