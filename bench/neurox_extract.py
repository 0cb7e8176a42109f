"""Time NeuroX 1.0.9's transformers extractor; print one JSON line of results.

Run inside the venv made by ``bench/neurox_env.sh``::

    python bench/neurox_extract.py --model DIR --sentences FILE --out DIR \
        [--aggregation last|first|average] [--dtype float32|float16] [--threads N]

It calls ``neurox.data.extraction.transformers_extractor.extract_representations``
exactly as its CLI does (device cpu, embeddings included, every layer kept),
writing ``OUT/activations.hdf5`` (hdf5 is picked from the file name, as the CLI
default ``--output_type autodetect`` does; the library function's own default
is json).  The model is loaded beforehand with NeuroX's own
``get_model_and_tokenizer`` so that ``load_seconds`` and ``seconds``
(extraction + writing) are timed apart.  NeuroX's per-sentence prints go to
/dev/null.  NeuroX has no dtype option and always stores float32:
``--dtype float16`` patches its HDF5 writer to store float16 ("stock": false).
``--threads`` sets torch's CPU thread count (not a NeuroX option; with 2
threads on a 2-core machine a busy neighbour can make runs several times slower).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

T_IMPORT = time.perf_counter()
import h5py  # noqa: E402
import torch  # noqa: E402
from neurox.data import writer as nx_writer  # noqa: E402
from neurox.data.extraction import transformers_extractor as nx  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T_IMPORT


def store_float16() -> None:
    """Make NeuroX's HDF5 writer create float16 datasets instead of float32."""
    original_open = nx_writer.HDF5ActivationsWriter.open

    def open_f16(self: Any) -> None:
        original_open(self)
        create = self.activations_file.create_dataset

        def create_f16(name: str, shape: Any = None, dtype: Any = None, **kw: Any) -> Any:
            return create(name, shape, dtype="float16" if dtype == "float32" else dtype, **kw)

        self.activations_file.create_dataset = create_f16

    nx_writer.HDF5ActivationsWriter.open = open_f16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="local transformers model folder")
    ap.add_argument("--sentences", required=True, help="one whitespace-tokenized sentence per line")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--aggregation", choices=["last", "first", "average"], default="last")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    lines = Path(args.sentences).read_text(encoding="utf-8").splitlines()
    n_words = sum(len(line.split()) for line in lines)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "activations.hdf5"
    if args.dtype == "float16":
        store_float16()

    quiet = contextlib.redirect_stdout(open(os.devnull, "w"))
    t0 = time.perf_counter()
    with quiet:
        loaded = nx.get_model_and_tokenizer(args.model, device="cpu")
    load_seconds = time.perf_counter() - t0
    nx.get_model_and_tokenizer = lambda *a, **k: loaded  # reuse, don't reload

    t0 = time.perf_counter()
    with quiet:
        nx.extract_representations(
            args.model, args.sentences, str(out_file), device="cpu",
            aggregation=args.aggregation, output_type="hdf5",
        )
    seconds = time.perf_counter() - t0

    with h5py.File(out_file, "r") as f:
        shapes = [f[k].shape for k in f if k != "sentence_to_index"]
    n_bytes = sum(p.stat().st_size for p in out_dir.glob("activations*.hdf5"))
    result: dict[str, Any] = {
        "tool": "neurox", "version": "1.0.9",
        "n_sentences": len(lines), "n_tokens": n_words,
        "seconds": round(seconds, 3), "load_seconds": round(load_seconds, 3),
        "import_seconds": round(IMPORT_SECONDS, 3),
        "tokens_per_s": round(n_words / seconds, 1),
        "bytes": n_bytes, "bytes_per_token": round(n_bytes / n_words, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "layers": shapes[0][0], "neurons_per_token": shapes[0][0] * shapes[0][2],
        "sentences_written": len(shapes), "tokens_written": sum(s[1] for s in shapes),
        "aggregation": args.aggregation, "dtype": args.dtype, "stock": args.dtype == "float32",
        "output_type": "hdf5", "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
