"""MkDocs hook: the configuration reference, generated from conf/ at every build so it cannot drift.

`docs/configuration.md` holds the marker `<!-- config-reference -->`; this hook replaces it with one
section per top-level config (conf/analyze.yaml, conf/train.yaml) and per config group
(conf/<group>/*.yaml, e.g. conf/hydra/launcher/): every key with its default as written in the file
and the file's YAML comments as its description. A key the line reader finds that YAML does not
(or the reverse, at the top level) stops the build, so a layout it cannot read is never documented
wrongly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError

MARKER = "<!-- config-reference -->"
PAGE = "configuration.md"
TOP_LEVEL = ("analyze.yaml", "train.yaml")
KEY = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_/][\w./@-]*(?: /?[\w./@-]+)?):(?:\s+|$)(?P<rest>.*)$")
ITEM = re.compile(r"^(?P<indent>\s*)-\s+(?P<rest>.*)$")


@dataclass
class Row:
    """One documented line: a key (dotted path) or a list item, its value text and description."""

    key: str
    value: str
    description: str
    indent: int


@dataclass
class Block:
    """Rows under one optional heading (a stand-alone comment line in the file)."""

    heading: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class ConfigFile:
    """What a config file documents: its header comment, its rows in blocks, the `@package` line."""

    path: Path
    header: str
    package: str | None
    blocks: list[Block]


def split_comment(text: str) -> tuple[str, str]:
    """(value, comment) of a YAML line's rest, a `#` after whitespace outside quotes opening the comment."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip(), text[i + 1:].strip()
    return text.strip(), ""


def parse(path: Path) -> ConfigFile:
    """Read one config file line by line: keys as dotted paths, list items, comments as descriptions."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header: list[str] = []  # the file's leading comment, line by line
    package = None
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        text = lines[i].lstrip("#").strip()
        if text.startswith("@package"):
            package = text.split(None, 1)[1] if " " in text else ""
        elif lines[i].strip():
            header.append(text)
        i += 1
    blocks = [Block("")]
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    pending: list[str] = []
    last: Row | None = None
    counts: dict[str, int] = {}
    for n, line in enumerate(lines[i:], start=i + 1):
        if not line.strip():
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if last is not None and last.description and indent > last.indent:
                last.description += " " + text  # continues the previous line's comment
            elif indent == 0 and not pending:
                blocks.append(Block(text))
                last = None
            else:
                pending.append(text)
            continue
        while stack and stack[-1][0] >= indent and not (stack[-1][0] == indent and stripped.startswith("-")):
            stack.pop()
        parent = ".".join(k for _, k in stack)
        key = KEY.match(line)
        item = ITEM.match(line)
        if key and not key["dash"]:
            value, comment = split_comment(key["rest"])
            path_key = f"{parent}.{key['key']}" if parent else key["key"]
            stack.append((indent, key["key"]))
        elif item:
            value, comment = split_comment(item["rest"])
            counts[parent] = counts.get(parent, 0) + 1
            path_key = f"{parent}[{counts[parent] - 1}]"
        else:
            raise PluginError(f"{path}:{n}: the configuration reference cannot read this line: {line!r}")
        last = Row(path_key, value, " ".join([*pending, comment]).strip(), indent)
        pending = []
        blocks[-1].rows.append(last)
    return ConfigFile(path, "\n".join(header), package, [b for b in blocks if b.rows or b.heading])


def mapping_paths(data: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every mapping key in loaded YAML (list items excluded)."""
    paths: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            paths.add(p)
            paths |= mapping_paths(v, p)
    return paths


def check(cfg: ConfigFile) -> None:
    """The line reader and YAML agree: its keys exist in the YAML, the YAML's top-level keys were read."""
    loaded = yaml.safe_load(cfg.path.read_text(encoding="utf-8")) or {}
    found = {r.key for b in cfg.blocks for r in b.rows if "[" not in r.key}
    missing = found - mapping_paths(loaded)
    unread = {str(k) for k in loaded} - {k.split(".")[0] for k in found}
    if missing or unread:
        raise PluginError(f"{cfg.path}: configuration reference out of step with YAML: "
                          f"read but not in YAML {sorted(missing)}, in YAML but not read {sorted(unread)}")


def escape(text: str) -> str:
    """Comment text as literal Markdown: `code spans` kept, elsewhere <, >, *, _, [, ], | escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\*_\[\]|])", r"\\\1", parts[i]).replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts)  # pipes inside code spans do not split table cells


def cell(text: str, code: bool = False) -> str:
    """Text for a Markdown table cell: a value as code, a description escaped."""
    if not code:
        return escape(text)
    if not text:
        return ""
    if "`" in text:
        return "<code>" + text.replace("&", "&amp;").replace("<", "&lt;") + "</code>"
    return f"`{text}`"


def render_file(cfg: ConfigFile) -> list[str]:
    """Markdown for one config file: its header comment, package note, then its key tables."""
    out = ["<br>\n".join(escape(line) for line in cfg.header.splitlines()), ""] if cfg.header else []
    if cfg.package is not None:
        out += [f"`# @package {cfg.package}`: its keys are set from the config root, not inside its group.", ""]
    for block in cfg.blocks:
        if block.heading:
            out += [f"*{escape(block.heading)}*", ""]
        if block.rows:
            out += ["| key | default | description |", "|---|---|---|"]
            out += [f"| `{r.key}` | {cell(r.value, code=True)} | {cell(r.description)} |" for r in block.rows]
            out.append("")
    return out


def defaults_of(conf: Path, name: str) -> dict[str, str]:
    """Group -> default option in a top-level config's defaults list (null for none)."""
    data = yaml.safe_load((conf / name).read_text(encoding="utf-8")) or {}
    out: dict[str, str] = {}
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            for k, v in entry.items():
                out[str(k).replace("override ", "").strip()] = str(v)
    return out


def render(conf: Path) -> str:
    """The whole reference: top-level configs, then every group and its options."""
    out: list[str] = []
    uses = {name: defaults_of(conf, name) for name in TOP_LEVEL}
    for name in TOP_LEVEL:
        cfg = parse(conf / name)
        check(cfg)
        script = name.replace(".yaml", ".py")
        out += [f"## `{script}`: `conf/{name}`", ""] + render_file(cfg)
    groups = sorted({p.parent for p in conf.rglob("*.yaml")} - {conf})
    for folder in groups:
        group = folder.relative_to(conf).as_posix()
        options = sorted(folder.glob("*.yaml"))
        used = [f"`{s.replace('.yaml', '.py')}` (default `{d[group]}`)" for s, d in uses.items() if group in d]
        out += [f"## `{group}`", ""]
        out += [f"Options: {', '.join(f'`{o.stem}`' for o in options)}. Choose one with "
                f"`{group}=<option>`. Used by {', '.join(used) if used else 'no top-level default list'}.", ""]
        readme = folder / "README.md"
        if readme.exists():
            out += [readme.read_text(encoding="utf-8").strip(), ""]
        for option in options:
            cfg = parse(option)
            check(cfg)
            out += [f"### `{group}={option.stem}`", "", f"File: `conf/{group}/{option.name}`", ""]
            out += render_file(cfg)
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker of the configuration page with the reference rendered from conf/."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs/{PAGE}: the marker {MARKER} is missing")
    conf = Path(config["config_file_path"]).resolve().parent / "conf"
    return markdown.replace(MARKER, render(conf))
