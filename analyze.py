"""Run an interpretation study: `python analyze.py model=minilm task=upos [method=...]`."""

import hydra
from omegaconf import DictConfig

from neuroscope.analysis import analyze
from neuroscope.cli import run


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    run(analyze, cfg)


if __name__ == "__main__":
    main()
