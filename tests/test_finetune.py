"""Fine-tuning on sentence classification: the TSV reader's errors, the GLUE archive download, the
Lightning loop on a tiny BERT end to end (train.py → hf_model → a neuron source)."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from neuroscope.data.corpora import CORPORA, corpus_file
from neuroscope.data.glue import TextClassificationData, encode_labels, read_tsv, sort_labels
from neuroscope.data.root import CorpusFile, locate, sha256sum
from neuroscope.errors import ConfigError, DataError
from neuroscope.training import train
from tests.conftest import REPO


def write_tsv(path: Path, rows: list[tuple[str, str]], header: str = "sentence\tlabel") -> Path:
    path.write_text(header + "\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def sentiment_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """Texts whose label is decided by one word (cats → 1, dogs → 0) among random filler."""
    rng = random.Random(seed)
    filler = "the a can not hello world . ,".split()
    rows = []
    for _ in range(n):
        y = rng.randint(0, 1)
        words = [rng.choice(filler) for _ in range(rng.randint(1, 5))]
        words.insert(rng.randint(0, len(words)), "cats" if y else "dogs")
        rows.append((" ".join(words), str(y)))
    return rows


def test_read_tsv_columns_lines_and_errors(tmp_path: Path) -> None:
    ok = read_tsv(write_tsv(tmp_path / "ok.tsv", [("a good film ", "1"), ("bad", "0")]))
    assert ok.texts == ["a good film", "bad"] and ok.labels == ["1", "0"] and ok.lines == [2, 3]
    with pytest.raises(DataError, match=r"no_col.tsv:1: no column \['label'\]"):
        read_tsv(write_tsv(tmp_path / "no_col.tsv", [("x", "1")], header="sentence\tpolarity"))
    bad = tmp_path / "fields.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nno label here\n")
    with pytest.raises(DataError, match=r"fields.tsv:3: 1 tab-separated fields, the header has 2"):
        read_tsv(bad)
    with pytest.raises(DataError, match=r"empty label"):
        read_tsv(write_tsv(tmp_path / "nolabel.tsv", [("text", " ")]))
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_tsv(tmp_path / "empty.tsv")
    unseen = read_tsv(write_tsv(tmp_path / "dev.tsv", [("x", "0"), ("y", "2")]))
    with pytest.raises(DataError, match=r"dev.tsv:3: label '2' is not among the training labels \['0', '1'\]"):
        encode_labels(unseen, ["0", "1"])
    assert sort_labels({"10", "9", "1"}) == ["1", "9", "10"] and sort_labels({"pos", "neg"}) == ["neg", "pos"]


def test_glue_names_and_the_zip_member_download(tmp_path: Path) -> None:
    assert corpus_file("glue_sst2:dev").relpath == "glue/SST-2/dev.tsv"
    assert CORPORA["glue_sst2"]["train"].member == "SST-2/train.tsv"
    assert CORPORA["ud_ewt"]["train"].sha256  # the bigger probing corpus is pinned too
    src = write_tsv(tmp_path / "train.tsv", [("fine", "1"), ("bad", "0")])
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(src, "SST-2/train.tsv")
        zf.writestr("SST-2/dev.tsv", "sentence\tlabel\n")
    spec = CorpusFile("glue/TOY/train.tsv", archive.as_uri(), sha256sum(src), "SST-2/train.tsv")
    got = locate(spec, tmp_path / "root")
    assert got == tmp_path / "root" / "glue/TOY/train.tsv" and got.read_bytes() == src.read_bytes()
    wrong = CorpusFile("glue/x.tsv", archive.as_uri(), None, "SST-2/missing.tsv")
    with pytest.raises(DataError, match="zip archive holding 'SST-2/missing.tsv'"):
        locate(wrong, tmp_path / "root2")
    assert not list((tmp_path / "root2").rglob("*.tmp"))  # nothing half-written


def test_datamodule_holds_out_val_and_keeps_test_apart(tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    train_f = write_tsv(tmp_path / "train.tsv", sentiment_rows(50, 0))
    test_f = write_tsv(tmp_path / "dev.tsv", sentiment_rows(7, 1))
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    dm = TextClassificationData(str(train_f), str(test_f), val_size=10, batch_size=8, seed=3, tokenizer=tok)
    assert dm.read_classes() == ["0", "1"]
    dm.setup()
    assert dm.sizes() == {"train": 40, "val": 10, "test": 7}
    batch = next(iter(dm.val_dataloader()))
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["labels"].shape[0] == 10
    assert (batch["input_ids"][:, 0] == tok.cls_token_id).all()  # right-padded, specials added
    with pytest.raises(ConfigError, match="data.val_size"):
        TextClassificationData(str(train_f), val_size=50, tokenizer=tok).setup()


def test_train_finetunes_a_tiny_bert_and_saves_a_studyable_model(tmp_path: Path, tiny_bert: Path) -> None:
    train_f = write_tsv(tmp_path / "train.tsv", sentiment_rows(400, 0))
    test_f = write_tsv(tmp_path / "dev.tsv", sentiment_rows(100, 1))
    out = tmp_path / "run"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=finetune_sst2", f"model.path={tiny_bert}", "model.lr=3e-3", "model.warmup=0.1",
            f"data.train={train_f}", f"data.test={test_f}", "data.val_size=50", "data.batch_size=16",
            "trainer.max_epochs=4", "trainer.val_check_interval=1.0", "trainer.enable_progress_bar=false",
            "logger=csv", f"output_dir={out}",
        ])
    res = train(cfg)
    assert res["model"] == "finetune_transformer"
    assert res["test"]["accuracy"] >= 0.9 and res["val"]["accuracy"] >= 0.9  # one word decides the label
    assert json.loads((out / "results.json").read_text())["hf_model"] == str(out / "hf_model")
    from transformers import AutoConfig

    saved = AutoConfig.from_pretrained(out / "hf_model")
    assert saved.id2label == {0: "0", 1: "1"}
    from neuroscope.models.transformer import TransformerNeurons

    src = TransformerNeurons(str(out / "hf_model"))  # the fine-tuned encoder as a neuron source
    assert src.extract([["the", "cats"]])["layer2"].shape == (2, 16)
    assert not list(out.glob(".hf_model.*"))

    # in-model ablation of the classifier: silencing a whole layer's output must cost accuracy
    from neuroscope.analysis import analyze

    ranking = [f"layer2:{u}" for u in range(16)] + [f"layer1.mlp:{u}" for u in range(32)]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        acfg = compose(config_name="analyze", overrides=[
            "experiment=finetune_ablation", f"model.path={tiny_bert}", f"checkpoints=[{res['checkpoint']}]",
            f"ablation.rankings={{layer2_first: {json.dumps(ranking)}}}", "ablation.shares=[0,33.4]",
            "ablation.random_draws=2", f"data.train={train_f}", f"data.test={test_f}", "data.val_size=50",
            "logger=none", "report=none", f"output_dir={tmp_path / 'ablation'}"])
    block = analyze(acfg)["ablation"]
    assert block["metric"] == "accuracy" and block["data"] == "sst2 test"
    assert block["baseline"] == pytest.approx(res["test"]["accuracy"])  # the same model, the same split
    assert block["curves"]["layer2_first_top"]["33.4"] < block["baseline"] - 0.2  # layer 2 silenced: the head is blind


def test_finetune_needs_classification_data(tiny_bert: Path, tmp_path: Path) -> None:
    import torch

    from neuroscope.models.finetune import FinetuneModule

    with pytest.raises(ConfigError, match="missing.ckpt does not exist"):
        FinetuneModule.load_trained(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(ConfigError, match="is not a finetune_transformer checkpoint"):
        FinetuneModule.load_trained(tmp_path / "plain.ckpt")

    module = FinetuneModule(str(tiny_bert))
    with pytest.raises(ConfigError, match="data=sst2"):
        module.make_datamodule({"name": "multi30k"})
    with pytest.raises(ConfigError, match="model=transformer model.path="):
        module.fingerprint()


def test_collate_pads_right_or_left_with_a_matching_mask() -> None:
    from neuroscope.data.glue import collate

    items = [{"ids": [5, 6, 7], "label": 1}, {"ids": [8], "label": 0}]
    right = collate(items, pad_id=0)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and right["labels"].tolist() == [1, 0]
    left = collate(items, pad_id=0, left=True)  # e.g. XLNet, whose classifier reads the last position
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]] and left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
