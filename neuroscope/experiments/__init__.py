"""Experiments: what `analyze.py` runs, one module each, registered in `EXPERIMENTS`.

Built-ins are imported when their name is asked for, so the single study never loads torch for
the ablation experiment. A config picks one with `protocol: <name>` (conf/experiment/*.yaml);
without it, the first key of `TRIGGERS` that the config sets picks the experiment (so
`analyze.py 'report.input=[...]'` still makes a report), else the single study runs.
"""

BUILTINS = {
    "study": "neuroscope.experiments.study",
    "dalvi2019": "neuroscope.experiments.dalvi2019",
    "finetune_ablation": "neuroscope.experiments.finetune_ablation",
    "durrani2022": "neuroscope.experiments.durrani2022",
    "report": "neuroscope.experiments.report",
    "features_vs_neurons": "neuroscope.experiments.features_vs_neurons",
    "method_agreement": "neuroscope.experiments.method_agreement",
}
TRIGGERS = {"report.input": "report", "ablation": "dalvi2019", "comparison": "durrani2022"}
DEFAULT = "study"
