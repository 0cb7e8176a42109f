"""neuroscope: neuron-level interpretation of neural NLP models."""

import os

# OpenBLAS (NumPy's BLAS) workers spin for 2^28 cycles (~0.1 s) after each call by default, which
# on a small machine starves the reads and element-wise steps between the probe's matrix
# products (measured: a streamed epoch 1.8x slower). 2^20 cycles still spans consecutive calls.
# Takes effect only if NumPy is not loaded yet, and a value set by the user wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"
