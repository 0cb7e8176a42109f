"""Which MiniLM neurons encode part of speech? The default study, from a script or a notebook.

Run from any folder after the README's set-up: `python docs/examples/api_quickstart.py`
(a few minutes on 2 CPU cores; the activation store is built on the first run, then reused).
"""

import neuroscope as ns

# The same config as `python analyze.py model=minilm task=upos method=lca logger=none`;
# any key of the configuration reference is a keyword argument (dicts set nested keys).
r = ns.study(model="minilm", task="upos", method="lca", logger="none", evaluation={"seeds": 1})

print(f"probe on all {r['store']['n_neurons']} neurons: accuracy {r['oracle']['accuracy']:.3f}")
print("ten best neurons:", ", ".join(r.ranking[:10]))

# Accuracy of probes retrained on the top / random / bottom k % of the ranking.
for k, top in r["subsets"]["top"].items():
    rnd, bottom = r["subsets"]["random"][k], r["subsets"]["bottom"][k]
    print(f"{k:>4} %  top {top['accuracy']:.3f}  random {rnd['accuracy']:.3f}  bottom {bottom['accuracy']:.3f}")
print(f"minimal subset: {r['minimal_subset']['n_neurons']} neurons")

fig = r.figure("subsets")  # a matplotlib Figure: displays inline in Jupyter
fig.savefig(r.run_dir / "subsets_from_python.png")
print("report:", r.report_path)

# A finished run (from the CLI or from here) opens again without running anything.
again = ns.load_results(r.run_dir)
assert again.ranking == r.ranking
