"""SAELens' on-disk layout (sae-lens 6.x): a folder with `cfg.json` (d_in, d_sae, dtype, device,
apply_b_dec_to_input, normalize_activations, reshape_activations, metadata, architecture, and k /
rescale_acts_by_decoder_norm for "topk") and `sae_weights.safetensors` (W_enc [d_in, d_sae],
b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]). `SAE.load_from_disk(folder)` loads ours;
`load_sae(folder)` loads SAELens' "standard" (ReLU) and "topk" SAEs into a `SparseAutoencoder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from neuroscope.errors import ConfigError
from neuroscope.files import atomic_json, atomic_path
from neuroscope.sae.model import SparseAutoencoder

CFG, WEIGHTS = "cfg.json", "sae_weights.safetensors"
SAELENS_VERSION = "6.54.0"  # the layout written (pyproject's `sae` extra pins this version)
OUR_ARCH = {"topk": "topk", "standard": "relu"}  # SAELens architecture → ours
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


def sae_cfg(sae: SparseAutoencoder, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cfg.json of `sae` as SAELens 6.x writes it (`SAEConfig.to_dict`)."""
    cfg: dict[str, Any] = {
        "d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": str(sae.W_enc.dtype).removeprefix("torch."),
        "device": "cpu", "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": "none",  # any input scale is folded into the weights (see docs/sae.md)
        "reshape_activations": "none",
        "metadata": {"sae_lens_version": SAELENS_VERSION, "sae_lens_training_version": SAELENS_VERSION,
                     **(metadata or {})},
    }
    if sae.architecture == "topk":
        cfg.update(k=sae.k, rescale_acts_by_decoder_norm=sae.rescale_acts_by_decoder_norm)
    cfg["architecture"] = "topk" if sae.architecture == "topk" else "standard"
    return cfg


def save_sae(sae: SparseAutoencoder, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write `sae` into `folder` in SAELens' layout (each file atomically, cfg.json last); returns it."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {name: getattr(sae, name).detach().cpu().contiguous() for name in ("W_dec", "W_enc", "b_dec", "b_enc")}
    with atomic_path(folder / WEIGHTS, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    atomic_json(folder / CFG, sae_cfg(sae, metadata))
    return folder


def _cfg_error(path: Path, msg: str) -> ConfigError:
    """A ConfigError naming the cfg.json."""
    return ConfigError(f"{path}: {msg}")


def read_cfg(folder: Path) -> dict[str, Any]:
    """cfg.json of an SAE folder, pre-6.0 keys (activation_fn topk, hook_point) mapped to 6.x."""
    path = folder / CFG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"{folder}: not an SAE folder (needs {CFG} and {WEIGHTS})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _cfg_error(path, f"not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise _cfg_error(path, "expected a JSON object")
    if "architecture" not in cfg:  # a pre-6.0 SAELens config
        kwargs = cfg.get("activation_fn_kwargs") or {}
        topk = cfg.get("activation_fn") == "topk" and kwargs.get("k") is not None
        cfg["architecture"] = "topk" if topk else "standard"
        if topk:
            cfg["k"] = kwargs["k"]
    return cfg


def load_sae(folder: str | Path, dtype: str | None = None) -> SparseAutoencoder:
    """A SAELens-layout SAE folder ("standard" or "topk" architecture) as a `SparseAutoencoder`
    (eval mode, CPU); other architectures or input normalisations are a ConfigError naming the file."""
    from safetensors.torch import load_file

    folder = Path(folder).expanduser()
    cfg = read_cfg(folder)
    path = folder / CFG
    arch = cfg.get("architecture")
    if arch not in OUR_ARCH:
        raise _cfg_error(path, f"architecture '{arch}' is not supported (supported: {sorted(OUR_ARCH)})")
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int) or cfg[key] <= 0:
            raise _cfg_error(path, f"{key} must be a positive integer, got {cfg.get(key)!r}")
    norm = cfg.get("normalize_activations", "none")
    scale = cfg.get("norm_scaling_factor")  # SAELens folds it when loading a pretrained release
    if norm not in ("none", "expected_average_only_in"):
        raise _cfg_error(path, f"normalize_activations '{norm}' is not supported (none, expected_average_only_in)")
    if cfg.get("reshape_activations", "none") != "none":
        raise _cfg_error(path, f"reshape_activations '{cfg['reshape_activations']}' is not supported")
    name = dtype or str(cfg.get("dtype", "float32")).removeprefix("torch.")
    if name not in DTYPES:
        raise _cfg_error(path, f"dtype '{name}' is not one of {sorted(DTYPES)}")
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ConfigError(f"{folder / WEIGHTS}: not a readable safetensors file ({exc})") from exc
    shapes = {"W_enc": (cfg["d_in"], cfg["d_sae"]), "b_enc": (cfg["d_sae"],),
              "W_dec": (cfg["d_sae"], cfg["d_in"]), "b_dec": (cfg["d_in"],)}
    extra = sorted(set(state) - set(shapes))
    if extra:
        raise ConfigError(f"{folder / WEIGHTS}: tensors {extra} are not part of a {arch} SAE")
    for key, shape in shapes.items():
        if key not in state or tuple(state[key].shape) != shape:
            got = tuple(state[key].shape) if key in state else "missing"
            raise ConfigError(f"{folder / WEIGHTS}: {key} must have shape {shape} (cfg.json), got {got}")
    k = int(cfg.get("k", 1)) if arch == "topk" else 1
    if arch == "topk" and not 0 < k <= cfg["d_sae"]:
        raise _cfg_error(path, f"k must be in 1..d_sae ({cfg['d_sae']}), got {cfg.get('k')!r}")
    sae = SparseAutoencoder(cfg["d_in"], cfg["d_sae"], OUR_ARCH[arch], k,
                            apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
                            rescale_acts_by_decoder_norm=bool(cfg.get("rescale_acts_by_decoder_norm", False))
                            ).to(DTYPES[name])
    with torch.no_grad():
        for key in shapes:
            getattr(sae, key).copy_(state[key])
    if norm == "expected_average_only_in" and scale is not None:
        sae.fold_input_scale(float(scale))
    return sae.eval()
