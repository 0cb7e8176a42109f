"""SAE latents as a site: `model.sae={layer2: <folder>}` adds the site `layer2.sae` (one neuron per
latent, `layer2.sae:1234`), computed from the base store's `layer2` shard by shard, so the model is
never loaded for it. The result is an ordinary store: every method, evaluation and report reads it.

The derived store is its own folder `<base>+sae-<key>` (key: the base store's key and each SAE's
weights); the base store's shard files are hard-linked into it (copied where links are refused), and
each shard's latents are written beside them, whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.files import atomic_json, atomic_path, locked, writing
from neuroscope.hashing import cached_sha256
from neuroscope.progress import stage
from neuroscope.store import ActivationStore
from neuroscope.store.store import MANIFEST, npy_problem

log = logging.getLogger(__name__)
SUFFIX = ".sae"  # site `layer2` → latent site `layer2.sae`


class LatentEncoder(Protocol):
    """What a latent site needs of an SAE: its width, what identifies it, and its encoder."""

    d_in: int
    d_sae: int

    def fingerprint(self) -> dict[str, Any]: ...

    def encode_numpy(self, x: np.ndarray) -> np.ndarray: ...  # [tokens, d_in] → [tokens, d_sae]


def latent_site(site: str) -> str:
    """The name of the latent site of an SAE on `site`."""
    return f"{site}{SUFFIX}"


def folder_fingerprint(folder: str | Path) -> dict[str, Any]:
    """An SAE folder (SAELens layout) identified by the content of its two files."""
    folder = Path(folder)
    return {"cfg.json": cached_sha256(folder / "cfg.json"),
            "sae_weights.safetensors": cached_sha256(folder / "sae_weights.safetensors")}


def split_sae(node: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A model config node without its `sae` key, and that key as {site: folder} ({} when unset)."""
    node = dict(node)
    saes = node.pop("sae", None) or {}
    if not isinstance(saes, Mapping):
        raise ConfigError(f"model.sae: expected {{site: SAE folder}}, e.g. model.sae={{layer2: runs/sae/sae}}; got {saes!r}")
    return node, {str(k): str(v) for k, v in saes.items()}


class FolderEncoder:
    """An SAE folder (SAELens layout, ours or SAELens') as a `LatentEncoder`."""

    def __init__(self, folder: Path) -> None:
        from neuroscope.sae.saelens import load_sae  # torch, only when latents must be computed

        self.folder = folder
        self.sae = load_sae(folder).eval()
        self.d_in, self.d_sae = (int(n) for n in self.sae.W_enc.shape)  # [d_in, d_sae]

    def fingerprint(self) -> dict[str, Any]:
        return {"folder": str(self.folder), **folder_fingerprint(self.folder)}

    def encode_numpy(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.sae.encode(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def check_entry(base: ActivationStore, site: str, folder: Path) -> None:
    """A `model.sae.<site>` entry names a site of the store and an SAE folder."""
    if site not in base.units:
        raise ConfigError(f"model.sae.{site}: the store has no site '{site}'; sites: {base.sites}")
    if not (folder / "cfg.json").is_file() or not (folder / "sae_weights.safetensors").is_file():
        raise ConfigError(f"model.sae.{site}: {folder} is not an SAE folder (cfg.json + sae_weights.safetensors)")


def load_encoders(saes: Mapping[str, str], base: ActivationStore) -> dict[str, LatentEncoder]:
    """The SAE of each `model.sae` entry, checked against the base store's site widths."""
    out = {}
    for site, folder in saes.items():
        path = Path(folder).expanduser()
        check_entry(base, site, path)
        enc = FolderEncoder(path)
        if enc.d_in != base.units[site]:
            raise ConfigError(f"model.sae.{site}: the SAE reads {enc.d_in} units, site '{site}' has {base.units[site]}")
        out[site] = enc
    return out


def derived_key(base: ActivationStore, prints: Mapping[str, Mapping[str, Any]]) -> str:
    """The key of the base store with latents of SAEs identified by `prints` ({site: fingerprint})."""
    blob = json.dumps({"base": base.manifest.get("key"), "saes": prints}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def with_latents(base: ActivationStore, saes: Mapping[str, str]) -> tuple[ActivationStore, bool]:
    """The store of `base` plus a latent site per SAE folder; (store, reused). Found without loading
    an SAE when it was built before; else built beside the base store."""
    for site, folder in saes.items():
        check_entry(base, site, Path(folder).expanduser())
    prints = {site: folder_fingerprint(Path(folder).expanduser()) for site, folder in saes.items()}
    path = base.path.parent / f"{base.path.name}+sae-{derived_key(base, prints)}"
    with writing(path, "store.root"), locked(path):
        if (path / MANIFEST).exists():
            store = ActivationStore(path)
            if not store.damaged():
                return store, True
            log.warning("latent store %s is damaged; rebuilding it", path)
            shutil.rmtree(path)
        build_latents(base, load_encoders(saes, base), path, prints)
    return ActivationStore(path), False


def build_latents(base: ActivationStore, encoders: Mapping[str, LatentEncoder], path: Path,
                  prints: Mapping[str, Any] | None = None) -> None:
    """Write the derived store at `path`: the base shards linked, each encoder's latents computed from
    its site shard by shard; the manifest is written last."""
    t0 = time.perf_counter()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    added = {latent_site(site): enc.d_sae for site, enc in encoders.items()}
    clash = sorted(set(added) & set(base.units))
    if clash:
        raise ConfigError(f"model.sae: the store already has the site(s) {clash}")
    with stage("SAE latents", total=len(base.shards)) as step:
        for i in range(len(base.shards)):
            _latent_shard(base, encoders, added, path, i)
            step()
    with atomic_path(path / "offsets.npy", suffix=".npy") as tmp_offsets:
        np.save(tmp_offsets, base.offsets)
    manifest = {k: v for k, v in base.manifest.items() if k != "labels"}
    atomic_json(path / MANIFEST, {
        **manifest,
        "key": f"{base.manifest.get('key')}+sae-{derived_key(base, prints or {})}",
        "sites": [*base.sites, *added],
        "units": {**base.units, **added},
        "labels": {},
        "base_store": base.path.name,
        "sae": {latent_site(site): {"site": site, "d_sae": enc.d_sae, **enc.fingerprint()}
                for site, enc in encoders.items()},
        "latent_seconds": round(time.perf_counter() - t0, 3),
    })


def _latent_shard(base: ActivationStore, encoders: Mapping[str, LatentEncoder], added: Mapping[str, int],
                  path: Path, i: int) -> None:
    """Shard `i` of the derived store: base files linked, latents computed; kept if already whole."""
    shard = base.shards[i]
    final = path / shard["dir"]
    rows = shard["end"] - shard["start"]
    if final.exists() and not any(npy_problem(final / f"{s}.npy", (rows, n), base.dtype)
                                  for s, n in {**base.units, **added}.items()):
        return  # kept from an interrupted build
    shutil.rmtree(final, ignore_errors=True)
    tmp = path / f"{shard['dir']}.tmp"
    tmp.mkdir()
    try:
        for site in base.sites:
            _link(base.path / shard["dir"] / f"{site}.npy", tmp / f"{site}.npy")
        for site, enc in encoders.items():
            x = base.shard_block(i, [site])  # [rows, d_in] float32
            z = enc.encode_numpy(x).astype(base.dtype, copy=False)  # [rows, d_sae]
            np.save(tmp / f"{latent_site(site)}.npy", z)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _link(src: Path, dst: Path) -> None:
    """Hard-link a base shard file into the derived store (a copy where the file system refuses)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
