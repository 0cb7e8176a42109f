"""Train a model: `python train.py model=<trainable model>`."""

import hydra
from omegaconf import DictConfig

from neuroscope.cli import run
from neuroscope.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run(train, cfg)


if __name__ == "__main__":
    main()
