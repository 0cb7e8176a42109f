"""Features vs neurons: the same properties studied on a site's neurons and on the latents of SAEs
trained on that site, side by side (conf/experiment/features_vs_neurons.yaml):

    python train.py model=sae sae.site=layer2 task.file=ud_ewt:train seed=0      # one SAE per seed
    python analyze.py experiment=features_vs_neurons 'features.saes=[<run0>/sae,<run1>/sae]'

Per property: oracle accuracy, k-sparse F1 (evaluation.k_sparse), minimal subset (count, share, seed
spread), selectivity, and the share of classes that one unit alone serves (k=1 F1 ≥
`features.monosemantic_f1`), for the neurons and for each SAE; several SAEs (seeds) give the spread a
difference must exceed. Each study is written as `<output_dir>/studies/<side>/<property>/results.json`.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neuroscope.config import to_dict
from neuroscope.errors import ConfigError
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.files import atomic_write
from neuroscope.pipeline import property_task, study, timed
from neuroscope.registry import EXPERIMENTS
from neuroscope.reporting.results import write_results
from neuroscope.reporting.tables import write_tables

log = logging.getLogger(__name__)
METRICS = ("oracle", "minimal_share", "minimal_n", "selectivity", "monosemantic_share")


def sides(site: str, saes: list[str]) -> dict[str, dict[str, Any]]:
    """{side name: (model.sae, store.sites)}: the site's neurons, then each SAE's latents alone."""
    out: dict[str, dict[str, Any]] = {"neurons": {"sae": None, "sites": [site]}}
    for i, folder in enumerate(saes):
        out[f"sae{i}"] = {"sae": {site: str(folder)}, "sites": [f"{site}.sae"]}
    return out


def side_cfg(cfg: DictConfig, side: dict[str, Any]) -> DictConfig:
    """The run's config with one side's store sites."""
    return OmegaConf.merge(cfg, {"store": {"sites": side["sites"]}})


def summarize(res: dict[str, Any], threshold: float) -> dict[str, Any]:
    """What the comparison reads of one study."""
    out: dict[str, Any] = {"n_units": res["store"]["n_neurons"], "oracle": res.get("oracle", {}).get("accuracy"),
                           "selectivity": res.get("selectivity")}
    ms = res.get("minimal_subset") or {}
    out.update(minimal_n=ms.get("n_neurons"), minimal_share=ms.get("share"),
               minimal_n_sd=ms.get("n_neurons_sd"), minimal_share_sd=ms.get("share_sd"))
    ks = res.get("k_sparse") or {}
    if ks:
        out["k_sparse_f1"] = ks.get("mean_f1", {})
        out["union_accuracy"] = {k: v.get("accuracy") for k, v in (ks.get("union") or {}).items()}
        firsts = [c.get("1", {}).get("f1") for c in (ks.get("classes") or {}).values()]
        firsts = [f for f in firsts if f is not None]
        out["monosemantic_share"] = (sum(f >= threshold for f in firsts) / len(firsts)) if firsts else None
    return out


def spread(values: list[float | None]) -> dict[str, float | None]:
    """Mean and sample sd over the SAEs (sd None for one SAE)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "sd": None}
    return {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else None}


def compare(per_side: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Neurons vs the SAEs' mean ± sd for each metric, and whether the difference exceeds 2 sd."""
    neurons = per_side["neurons"]
    latents = [v for k, v in per_side.items() if k != "neurons"]
    out: dict[str, Any] = {}
    for m in METRICS:
        s = spread([v.get(m) for v in latents])
        n = neurons.get(m)
        diff = None if n is None or s["mean"] is None else s["mean"] - n
        out[m] = {"neurons": n, "latents": s["mean"], "latents_sd": s["sd"], "difference": diff,
                  "exceeds_spread": None if diff is None or s["sd"] is None else abs(diff) > 2 * s["sd"]}
    ks = sorted({k for v in per_side.values() for k in (v.get("k_sparse_f1") or {})}, key=float)
    out["k_sparse_f1"] = {k: {"neurons": (neurons.get("k_sparse_f1") or {}).get(k),
                              **{f"latents_{f}": v for f, v in spread(
                                  [(x.get("k_sparse_f1") or {}).get(k) for x in latents]).items()}} for k in ks}
    return out


def run_features(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Study every property on the neurons and on each SAE's latents; returns the run's results.json."""
    t0 = time.perf_counter()
    feat = to_dict(cfg.features)
    site, saes = str(feat["site"]), [str(s) for s in feat["saes"]]
    threshold = float(feat.get("monosemantic_f1", 0.8))
    base_task = to_dict(cfg.task)
    method = to_dict(cfg.method)
    model = {k: v for k, v in to_dict(cfg.model).items() if k != "sae"}
    plan = sides(site, saes)
    properties: dict[str, Any] = {}
    studies: dict[str, Any] = {}
    for prop in feat["properties"]:
        name, task_cfg = property_task(base_task, prop)
        per_side = {}
        for side, spec in plan.items():
            folder = out_dir / "studies" / side / name
            node = {**model, "sae": spec["sae"]} if spec["sae"] else model
            res = timed(study, side_cfg(cfg, spec), task_cfg, node, dict(method), None, folder)
            write_results(res, folder)
            write_tables(res, folder)
            per_side[side] = summarize(res, threshold)
            studies[f"{side}/{name}"] = {"seconds": res["timings"]["total_seconds"], **per_side[side]}
            log.info("%s / %s: oracle %.3f, minimal subset %s of %s", name, side, per_side[side]["oracle"] or 0,
                     per_side[side]["minimal_n"], per_side[side]["n_units"])
        properties[name] = {"sides": per_side, "comparison": compare(per_side)}
    return {
        "model": model["name"], "task": base_task["name"], "method": method["name"], "seed": int(cfg.seed),
        "features": {"site": site, "saes": saes, "monosemantic_f1": threshold, "properties": properties},
        "studies": studies,
        "timings": {"studies_seconds": round(sum(s["seconds"] for s in studies.values()), 3),
                    "experiment_seconds": round(time.perf_counter() - t0, 3)},
    }


@EXPERIMENTS.register("features_vs_neurons")
class FeaturesVsNeurons(Experiment):
    """A site's neurons against the latents of SAEs on it, property by property."""

    name = "features_vs_neurons"

    def check(self, cfg: DictConfig) -> list[str]:
        feat = to_dict(cfg.get("features")) or {}
        problems = []
        if not feat.get("site"):
            problems.append("features.site: name the site the SAEs were trained on, e.g. layer2")
        saes = feat.get("saes")
        if not isinstance(saes, list) or not saes:
            problems.append("features.saes: give the SAE folders, e.g. 'features.saes=[runs/sae0/sae,runs/sae1/sae]'")
        else:
            for i, folder in enumerate(saes):
                path = Path(str(folder)).expanduser()
                if not (path / "cfg.json").is_file():
                    problems.append(f"features.saes[{i}]: {path} is not an SAE folder (no cfg.json)")
        if not feat.get("properties"):
            problems.append("features.properties: list the properties, e.g. [{name: upos}]")
        method = to_dict(cfg.get("method")) or {}
        if not method.get("name") or method["name"] == "none":
            problems.append("method: features and neurons are ranked by a labelled ranker, e.g. method=lca")
        return problems

    def write(self, outcome: Outcome, cfg: DictConfig, out_dir: Path) -> Outcome:
        """features.csv and features.png beside the usual outputs."""
        from neuroscope.reporting.features import features_figure, features_table
        from neuroscope.reporting.tables import csv_text

        block = outcome.results["features"]
        atomic_write(out_dir / "features.csv", csv_text(*features_table(block)))
        if (to_dict(cfg.get("report")) or {}).get("enabled"):
            outcome.figures["features"] = features_figure(block, out_dir / "features.png")
        return super().write(outcome, cfg, out_dir)

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        if cfg.store.get("sites"):
            raise ConfigError("store.sites: the experiment chooses the sites of each side; leave it unset")
        return Outcome(run_features(cfg, out_dir))
