#!/usr/bin/env bash
# Create (idempotently) the private virtualenv used to benchmark NeuroX 1.0.9.
#
# NeuroX 1.0.9 hard-pins an ancient stack (torch==1.8.1, transformers==4.6.1,
# numpy==1.19.5, ...) that cannot be installed on Python 3.11.  Its extractor
# only needs torch, transformers, numpy, h5py and tqdm, and it runs unchanged on
# the modern versions pinned below, so NeuroX is installed with --no-deps.
# NeuroX never enters the project's own dependencies: it lives only here.
# Its interpretation module (linear probes, bench/neurox_probe.py) also imports
# scipy, scikit-learn and imbalanced-learn, pinned below with the rest.
#
# torch==2.13.0 is installed first and alone: that pin resolves to the local
# CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
#
# Usage: bash bench/neurox_env.sh   (prints the venv's python path last)
# Env:   NEUROX_VENV (venv path), NEUROX_PYTHON (base interpreter, 3.11)
set -euo pipefail

VENV="${NEUROX_VENV:-$HOME/.cache/neuroscope/bench-neurox-venv}"
BASE_PY="${NEUROX_PYTHON:-python3}"
TORCH="torch==2.13.0"
NEUROX="neurox==1.0.9"
DEPS=(transformers==5.23.0 tokenizers==0.23.3 huggingface_hub==2.4.0
      safetensors==0.8.0 h5py==3.16.0 numpy==2.4.6 tqdm==4.70.1
      scipy==1.17.1 scikit-learn==1.9.1 imbalanced-learn==0.14.2)
SPEC="$TORCH $NEUROX ${DEPS[*]}"
STAMP="$VENV/.neurox-bench-spec"
PY="$VENV/bin/python"

if [[ -x "$PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" ]] \
   && "$PY" -c "import neurox.data.extraction.transformers_extractor, neurox.interpretation.linear_probe" 2>/dev/null; then
  echo "neurox venv up to date: $VENV" >&2
else
  echo "building neurox venv: $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  [[ -x "$PY" ]] || "$BASE_PY" -m venv "$VENV"
  "$PY" -m pip install -q "$TORCH"
  "$PY" -m pip install -q --no-deps "$NEUROX"
  echo "(pip's report that neurox's pins are unmet is expected)" >&2
  # torch repeated so the resolver can never swap it for another build.
  "$PY" -m pip install -q "$TORCH" "${DEPS[@]}"
  "$PY" - <<'EOF'
import torch
import neurox.data.extraction.transformers_extractor  # noqa: F401
import neurox.interpretation.linear_probe  # noqa: F401
assert torch.version.cuda is None, f"CUDA torch was installed: {torch.__version__}"
EOF
  echo "$SPEC" > "$STAMP"
fi
echo "$PY"
