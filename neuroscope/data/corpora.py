"""Public corpora known by name: their files under a data root and their upstream homes."""

from __future__ import annotations

from neuroscope.data.root import CorpusFile

_UD_EWT = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/master"
_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
_MULTI30K = "https://github.com/multi30k/dataset/raw/master/data/task1/raw"

# sha256 values are those of the verified offline mirror; a changed upstream file fails loudly.
CORPORA: dict[str, dict[str, CorpusFile]] = {
    "ud_ewt": {
        "train": CorpusFile(
            "ud/en_ewt-ud-train.conllu",
            f"{_UD_EWT}/en_ewt-ud-train.conllu",
            "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
        ),
        "dev": CorpusFile(
            "ud/en_ewt-ud-dev.conllu",
            f"{_UD_EWT}/en_ewt-ud-dev.conllu",
            "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
        ),
        "test": CorpusFile("ud/en_ewt-ud-test.conllu", f"{_UD_EWT}/en_ewt-ud-test.conllu"),
    },
    "glue_sst2": {  # GLUE's SST-2: a header `sentence<TAB>label`, then one example a line (dev is labelled)
        "train": CorpusFile("glue/SST-2/train.tsv", _GLUE_SST2,
                            "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", "SST-2/train.tsv"),
        "dev": CorpusFile("glue/SST-2/dev.tsv", _GLUE_SST2,
                          "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", "SST-2/dev.tsv"),
    },
    "multi30k": {
        f"{split}.{lang}": CorpusFile(f"multi30k/{split}.{lang}.gz", f"{_MULTI30K}/{split}.{lang}.gz", sha)
        for (split, lang), sha in {
            ("train", "en"): "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
            ("train", "de"): "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
            ("val", "en"): "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
            ("val", "de"): "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
            ("test_2016_flickr", "en"): "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
            ("test_2016_flickr", "de"): "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
        }.items()
    },
}


def corpus_file(name: str) -> CorpusFile:
    """`"ud_ewt:dev"` → its CorpusFile; any other string is a path (absolute or under the data root)."""
    if ":" in name and not name.startswith(("/", "~", ".")):
        corpus, _, part = name.partition(":")
        if corpus in CORPORA and part in CORPORA[corpus]:
            return CORPORA[corpus][part]
    for files in CORPORA.values():  # a known relpath keeps its upstream URL
        for f in files.values():
            if f.relpath == name:
                return f
    return CorpusFile(name)
