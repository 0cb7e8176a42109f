"""What the activation store needs from a model: named sites, their widths, per-word activations."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from neuroscope.errors import ConfigError


@runtime_checkable
class NeuronSource(Protocol):
    """A model whose units are neurons `site:unit`; `extract` gives one row per word."""

    sites: list[str]  # in neuron order, e.g. ["embeddings", "layer1", ...]
    units: dict[str, int]  # site -> number of units

    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words in the batch, in order, units]} for a batch of word-tokenized sentences."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity of the model and extraction settings (part of the store's cache key)."""
        ...

    # Optional (not part of the protocol check): `extract_batches(batches)` yields exactly what
    # `extract` returns for each batch, in order, overlapping a GPU's forward with host copies.


def read_checkpoint(path: str | Path, arch: str, key: str = "model.checkpoint") -> Any:
    """The content of a checkpoint file written by `train.py model=<arch>` (a dict when it is one),
    loaded without unpickling code; a missing or unsafe file is a `ConfigError` naming `key`."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{key}: {p} does not exist; train one with `python train.py model={arch}`")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, objects refused by weights_only
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # torch's first line, not its essay
        raise ConfigError(f"{key}: {p} cannot be loaded as a safe torch checkpoint ({reason})") from exc
    return ckpt


# --- device, dtype and host copies (docs/scale/gpu.md) ----------------------------------------------

DTYPES = ("float32", "bfloat16", "float16")  # model.dtype: the weights' and the forward's dtype
def torch_dtype(dtype: str, device: torch.device, key: str = "model.dtype") -> torch.dtype:
    """The checked `torch.dtype` of `model.dtype` (float32 | bfloat16 | float16); a dtype the device
    cannot run (tried on a small linear, layer norm, GELU and softmax) is a `ConfigError` naming `key`."""
    if dtype not in DTYPES:
        raise ConfigError(f"{key}: expected one of {', '.join(DTYPES)}, got '{dtype}'")
    dt = getattr(torch, dtype)
    try:  # what a transformer layer needs, in that dtype, on that device
        x = torch.ones(2, 4, dtype=dt, device=device)
        y = torch.nn.functional.linear(x, torch.ones(3, 4, dtype=dt, device=device))
        torch.nn.functional.layer_norm(y, (3,)).softmax(-1)
        torch.nn.functional.gelu(y)
    except (RuntimeError, NotImplementedError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{key}: {dtype} cannot run on {device} with this torch ({torch.__version__}): {reason}; "
                          "use model.dtype=float32 (or bfloat16)") from exc
    return dt


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """`tensor` on `device`; to a CUDA device from pinned memory without blocking the host."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class HostCopies:
    """Activations already on the host (CPU): nothing to copy, nothing to wait for."""

    ahead = 0  # batches launched before the oldest one is handed over

    def start(self, acts: dict[str, Tensor]) -> Any:
        """Begin handing `acts` to the host; returns a handle for `finish`."""
        return acts

    def finish(self, handle: Any) -> dict[str, Tensor]:
        """The host tensors of a `start`ed batch, once they are complete."""
        return handle


class CudaHostCopies(HostCopies):
    """Device-to-host copies on a side CUDA stream into pinned buffers, `non_blocking`: the copy of
    batch i waits (on the device) for its forward, and the host waits for it only after batch
    i+1's forward has been launched."""

    ahead = 1

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)

    def start(self, acts: dict[str, Tensor]) -> Any:
        computed = torch.cuda.current_stream(self.device).record_event()  # after the forward's kernels
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(computed)
            host = {site: torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
                    for site, t in acts.items()}
            copied = self.stream.record_event()
        return acts, host, copied  # acts stay referenced (their memory not reused) until the copy is done

    def finish(self, handle: Any) -> dict[str, Tensor]:
        _, host, copied = handle
        copied.synchronize()
        return host


def host_copies(device: torch.device) -> HostCopies:
    """The hand-over of activations from `device` to the host: overlapped on CUDA, direct elsewhere."""
    return CudaHostCopies(device) if device.type == "cuda" else HostCopies()


def pipelined(batches: Iterable[list[list[str]]], forward: Callable[[list[list[str]]], dict[str, Tensor]],
              copies: HostCopies) -> Iterator[dict[str, Tensor]]:
    """`forward(batch)` (under `torch.inference_mode`) for each batch, handed to the host by `copies`,
    yielded in order; batch i+1's forward is launched before batch i is waited for when `copies.ahead`
    is 1. Inference mode is not held across a yield."""
    pending: deque[Any] = deque()
    for batch in batches:
        with torch.inference_mode():
            pending.append(copies.start(forward(batch)))
        while len(pending) > copies.ahead:
            yield copies.finish(pending.popleft())
    while pending:
        yield copies.finish(pending.popleft())
