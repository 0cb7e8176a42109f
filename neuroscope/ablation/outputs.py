"""Reading and rebuilding a hooked module's output (a tensor, a tuple, an LSTM's (output, state))."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from neuroscope.errors import ConfigError


def split_output(output: Any, kind: str) -> tuple[Tensor, Any]:
    """The hidden-state tensor of a module output and a function rebuilding the output around it."""
    if kind == "lstm":
        out, state = output
        if isinstance(out, PackedSequence):
            return out.data, lambda d, st: (out._replace(data=d), st)
        return out, lambda d, st: (d, st)
    if isinstance(output, Tensor):
        return output, lambda d, st: d
    if isinstance(output, tuple):
        return output[0], lambda d, st: (d, *output[1:])
    if hasattr(output, "last_hidden_state"):
        raise ConfigError("ablation: hooking a whole model output is not supported; hook a layer")
    raise ConfigError(f"ablation: cannot read the output of a {type(output).__name__} site")
