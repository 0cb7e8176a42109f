"""SAE latents as a site: `<site>.sae` columns equal the encoder applied to the base site, the base
columns are untouched, the derived store is found again without encoding, and bad entries are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.sae.site import build_latents, split_sae, with_latents
from neuroscope.store import ActivationStore, extract
from tests.fakes import HashNeurons
from tests.test_store import SENTENCES


class ReluEncoder:
    """A known encoder: relu(x W + b), [tokens, d_in] → [tokens, d_sae]."""

    def __init__(self, d_in: int, d_sae: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(d_in, d_sae)).astype(np.float32)  # [d_in, d_sae]
        self.b = rng.normal(size=d_sae).astype(np.float32)
        self.d_in, self.d_sae, self.calls = d_in, d_sae, 0

    def fingerprint(self) -> dict[str, Any]:
        return {"fake": "relu"}

    def encode_numpy(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.maximum(x @ self.w + self.b, 0)


@pytest.fixture()
def base(tmp_path: Path) -> ActivationStore:
    store, _ = extract(HashNeurons(units=5), SENTENCES, tmp_path / "stores", shard_tokens=37, batch_tokens=16,
                       progress=False)
    return store


def test_latent_site_equals_the_encoder_on_the_base_site(base: ActivationStore, tmp_path: Path) -> None:
    enc = ReluEncoder(5, 12)
    path = tmp_path / "stores" / "derived"
    build_latents(base, {"layer1": enc}, path)
    store = ActivationStore(path)
    assert store.sites == ["embeddings", "layer1", "layer1.sae"] and store.units["layer1.sae"] == 12
    assert store.damaged() == [] and len(store.shards) == len(base.shards) > 1
    np.testing.assert_array_equal(store.read(base.neurons), base.read())  # base columns untouched
    want = enc.encode_numpy(base.read(["layer1"]))  # [tokens, 12]
    np.testing.assert_allclose(store.read(["layer1.sae"]), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(store.read(["layer1.sae:3"])[:, 0], want[:, 3], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(store.offsets, base.offsets)
    assert store.manifest["sae"]["layer1.sae"]["d_sae"] == 12 and store.manifest["base_store"] == base.path.name


def test_an_interrupted_build_keeps_its_whole_shards(base: ActivationStore, tmp_path: Path) -> None:
    path = tmp_path / "stores" / "derived"
    enc = ReluEncoder(5, 4)
    build_latents(base, {"layer1": enc}, path)
    (path / "manifest.json").unlink()
    (path / base.shards[-1]["dir"] / "layer1.sae.npy").write_bytes(b"damaged")
    again = ReluEncoder(5, 4)
    build_latents(base, {"layer1": again}, path)
    assert again.calls == 1  # only the damaged shard is encoded again
    np.testing.assert_allclose(ActivationStore(path).read(["layer1.sae"]), enc.encode_numpy(base.read(["layer1"])),
                               rtol=1e-6, atol=1e-6)


def test_config_entries_are_checked(base: ActivationStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model.sae.layer9: the store has no site 'layer9'"):
        with_latents(base, {"layer9": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"model.sae.layer1: .* is not an SAE folder"):
        with_latents(base, {"layer1": str(tmp_path / "nothing")})
    with pytest.raises(ConfigError, match=r"model.sae: expected \{site: SAE folder\}"):
        split_sae({"name": "minilm", "sae": "runs/sae"})
    assert split_sae({"name": "minilm", "sae": None}) == ({"name": "minilm"}, {})
    with pytest.raises(ConfigError, match="already has the site"):
        build_latents(base, {"layer1": ReluEncoder(5, 3)}, tmp_path / "d1")
        build_latents(ActivationStore(tmp_path / "d1"), {"layer1": ReluEncoder(5, 3)}, tmp_path / "d2")


def test_a_view_of_some_sites_reads_their_columns_under_their_names(base: ActivationStore, tmp_path: Path) -> None:
    build_latents(base, {"layer1": ReluEncoder(5, 7)}, tmp_path / "d")
    full = ActivationStore(tmp_path / "d")
    view = full.view(["layer1.sae", "embeddings"])
    assert view.sites == ["layer1.sae", "embeddings"] and view.n_neurons == 12
    assert view.neurons[:2] == ["layer1.sae:0", "layer1.sae:1"] and view.neurons[7] == "embeddings:0"
    np.testing.assert_array_equal(view.read(), full.read(view.neurons))
    np.testing.assert_array_equal(np.concatenate([b for _, b in view.iter_shards()]), view.read())
    assert full.sites == ["embeddings", "layer1", "layer1.sae"]  # the store itself is unchanged
    from neuroscope.errors import StoreError

    with pytest.raises(StoreError, match=r"store.sites: \['layer9'\]: not sites of this store"):
        full.view(["layer9"])
