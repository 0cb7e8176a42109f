"""The rankings an ablation experiment is given (`ablation.rankings.<name>`), read and checked
before any work: no torch here, so the config validator can read them too.

Accepted, per name:
- a path to a JSON file holding either a results.json object with a `ranking` list (a study's
  run folder, e.g. `<run>/studies/after/upos/results.json`) or a plain JSON list of neuron ids;
- a non-empty list of neuron ids written into the config.

A neuron id is `"site:unit"` with a whole-number unit (e.g. `"layer3:117"`); ids are unique.
Whether each site is one of the model's is checked against the model's hook points
(`unknown_sites`) once the model is loaded, still before any study.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from neuroscope.errors import ConfigError

FORMS = ("a path of a results.json with a `ranking` list or of a JSON list of neuron ids, "
         "or a list of neuron ids such as ['layer2:5', 'layer1:0']")


def _ids(items: Any, key: str, where: str) -> list[str]:
    """The checked neuron ids of a ranking list (`where` says where the list came from)."""
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{key}: {where}expected a non-empty list of neuron ids; give {FORMS}")
    ids: list[str] = []
    seen: set[str] = set()
    for i, nid in enumerate(items):
        if not isinstance(nid, str):
            raise ConfigError(f"{key}: {where}entry {i} is {nid!r}, not a neuron id 'site:unit' (e.g. 'layer2:5')")
        site, _, unit = nid.rpartition(":")
        if not site or not unit.isdigit():
            raise ConfigError(f"{key}: {where}entry {i} '{nid}' is not a neuron id 'site:unit' (e.g. 'layer2:5')")
        if nid in seen:
            raise ConfigError(f"{key}: {where}neuron '{nid}' appears twice; a ranking names each neuron once")
        seen.add(nid)
        ids.append(nid)
    return ids


def read_ranking(value: Any, key: str) -> list[str]:
    """The neuron ids of one `ablation.rankings.<name>` entry (see the module doc), or a `ConfigError`
    naming `key`."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key}: {path} does not exist (or is not a file); give {FORMS}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{key}: {path} is not a JSON file ({str(exc).splitlines()[0]}); give {FORMS}") from exc
        if isinstance(data, dict):
            if "ranking" not in data:
                raise ConfigError(f"{key}: {path} has no `ranking` (a results.json of a study with a method); "
                                  f"give {FORMS}")
            return _ids(data["ranking"], key, f"{path}: `ranking`: ")
        if isinstance(data, list):
            return _ids(data, key, f"{path}: ")
        raise ConfigError(f"{key}: {path} holds a JSON {type(data).__name__}; give {FORMS}")
    if isinstance(value, list | tuple):
        return _ids(list(value), key, "")
    raise ConfigError(f"{key}: got {value!r}; give {FORMS}")


def read_rankings(value: Any, key: str = "ablation.rankings") -> dict[str, list[str]]:
    """Every entry of `ablation.rankings` ({name: path or ids}; null or {} for none), checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected {{name: ranking}} (e.g. '+{key}.upos=<run>/results.json'), got {value!r}")
    return {str(name): read_ranking(v, f"{key}.{name}") for name, v in value.items()}


def unknown_sites(ranking: Iterable[str], widths: Mapping[str, int]) -> str | None:
    """What is wrong with a ranking's ids for a model whose sites have `widths` (None: all fine)."""
    for nid in ranking:
        site, _, unit = nid.rpartition(":")
        if site not in widths:
            return f"neuron '{nid}' names no site of the model; its sites: {', '.join(sorted(widths))}"
        if int(unit) >= widths[site]:
            return f"neuron '{nid}': unit out of range (site {site} has {widths[site]} units)"
    return None
