"""Seed every random generator a run touches (Python, NumPy, torch) from the config's seed."""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int, torch: bool | None = None) -> int:
    """Same effect as Lightning's `seed_everything(seed, workers=True)`, without its log line.
    torch is seeded when it is loaded already or `torch=True` (then it is imported); a study on a
    built store never imports it."""
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch or (torch is None and "torch" in sys.modules):
        import torch as _torch

        _torch.manual_seed(seed)
    return seed
