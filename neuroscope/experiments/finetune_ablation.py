"""Does the fine-tuned classifier need its linguistic neurons? The ablation experiment on a
fine-tuned checkpoint, given rankings found on its encoder (conf/experiment/finetune_ablation.yaml)."""

from __future__ import annotations

from neuroscope.experiments.dalvi2019 import Dalvi2019
from neuroscope.registry import EXPERIMENTS


@EXPERIMENTS.register("finetune_ablation")
class FinetuneAblation(Dalvi2019):
    """The same measurement as `dalvi2019` (SST-2 accuracy instead of BLEU or perplexity); its
    config gives `ablation.rankings` of studies of the fine-tuned encoder and zero mode only."""

    name = "finetune_ablation"
