"""Shared fixtures: repo paths, the offline data mirror, tiny models and composed configs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixture_corpus import grammar_vocabulary

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEUROSCOPE_DATA", REPO.parent / "shared" / "data")).resolve()
UD_DEV = SHARED_DATA / "ud" / "en_ewt-ud-dev.conllu"

TINY_CONLLU = """\
# sent_id = 1
1\tThe\tthe\tDET\tDT\tDefinite=Def|PronType=Art\t2\tdet\t_\t_
2\tcats\tcat\tNOUN\tNNS\tNumber=Plur\t3\tnsubj\t_\t_
3\tsleep\tsleep\tVERB\tVBP\tMood=Ind|Tense=Pres\t0\troot\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tA\ta\tDET\tDT\tDefinite=Ind|PronType=Art\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\tNumber=Sing\t3\tnsubj\t_\t_
3-4\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
3\tca\tcan\tAUX\tMD\tVerbForm=Fin\t5\taux\t_\t_
4\tn't\tnot\tPART\tRB\t_\t5\tadvmod\t_\t_
5\trun\trun\tVERB\tVB\tVerbForm=Inf\t0\troot\t_\t_
6\t.\t.\tPUNCT\t.\t_\t5\tpunct\t_\t_

"""


def tiny_conllu(path: Path, copies: int = 10) -> Path:
    """A CoNLL-U file of `2 * copies` short sentences (every split gets some). Every copy repeats the
    same 2 sentences, so every split holds train's sentences: use tests.fixture_corpus.distinct_conllu
    unless a test's known answer needs exactly this corpus (its multiword token, its 100 tokens, ...)."""
    path.write_text(TINY_CONLLU * copies)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's ~/.cache or W&B account from tests."""
    monkeypatch.setenv("NEUROSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _run_folders() -> set[str]:
    """What the repo's outputs/ and multirun/ hold, two levels down (Hydra's `<app>/<time>` folders)."""
    return {str(p.relative_to(REPO)) for top in ("outputs", "multirun") if (REPO / top).is_dir()
            for p in [*(REPO / top).glob("*"), *(REPO / top).glob("*/*")]}


@pytest.fixture(scope="session", autouse=True)
def _no_run_folders_in_the_repo() -> Iterator[None]:
    """Fail the session when tests added entries to the repo's outputs/ or multirun/: a CLI run in
    a test sets hydra.run.dir / hydra.sweep.dir (or its cwd) inside a tmp dir."""
    before = _run_folders()
    yield
    added = sorted(_run_folders() - before)
    if added:
        pytest.fail(f"tests left Hydra run folders in the repo: {added[:10]}; give each CLI run a "
                    "hydra.run.dir / hydra.sweep.dir under tmp_path", pytrace=False)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (2 layers x 16) with a WordPiece vocabulary, saved as a local HF folder. The
    vocabulary also holds the words of the fixture grammar (tests/fixture_corpus.py)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = "the a cats cat dog dogs sleep run runs can not . , ca n't hello world".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##believ", "##ably", "##s"] + words
    n_base = len(vocab)
    vocab += grammar_vocabulary(vocab)  # appended: the ids and weights above stay as they were
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=64)
    import torch

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=n_base, hidden_size=16, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=32, max_position_embeddings=64))
    model.resize_token_embeddings(len(vocab), mean_resizing=False)  # rows for the grammar's words
    folder = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
