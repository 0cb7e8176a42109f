"""Neuron sources: models whose hidden units are addressable as `site:unit` neurons.

Built-in sources are imported when their name is asked for (`MODELS.get`), so that a study on a
built store never loads torch; a new built-in adds its name here.
"""

BUILTINS = {
    "transformer": "neuroscope.models.transformer",
    "minilm": "neuroscope.models.transformer",
    "nmt_lstm": "neuroscope.models.nmt",
    "nlm_lstm": "neuroscope.models.nlm",
    "probe": "neuroscope.probes.trainable",
    "sae": "neuroscope.sae.training",
    "finetune_transformer": "neuroscope.models.finetune",
}
