"""neuroscope: neuron-level interpretation of neural NLP models.

    import neuroscope as ns
    r = ns.study(task="upos", logger="none")      # the CLI's study, in this process
    r.results["oracle"], r.ranking[:10], r.figure("subsets")
"""

import os

# OpenBLAS (NumPy's BLAS) workers spin for 2^28 cycles (~0.1 s) after each call by default, which
# on a small machine starves the reads and element-wise steps between the probe's matrix
# products (measured: a streamed epoch 1.8x slower). 2^20 cycles still spans consecutive calls.
# Takes effect only if NumPy is not loaded yet, and a value set by the user wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"
__all__ = ["Results", "experiment", "load_results", "study"]


def __getattr__(name: str) -> object:
    """The API (`neuroscope.api`) on first use: `import neuroscope` stays free of Hydra and NumPy."""
    if name in __all__:
        from neuroscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'neuroscope' has no attribute '{name}'")
