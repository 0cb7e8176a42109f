"""Every config group composes (hydra.compose), and its infrastructure targets instantiate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from neuroscope.registry import MODELS, TASKS
from tests.conftest import REPO

CONF = REPO / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_cfg(name: str, overrides: list[str]) -> object:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("option", options("model"))
def test_model_configs_name_registered_models(option: str) -> None:
    cfg = compose_cfg("analyze", [f"model={option}", "output_dir=/tmp/x"])
    assert cfg.model.name in MODELS


@pytest.mark.parametrize("option", options("task"))
def test_task_configs_name_registered_tasks(option: str) -> None:
    cfg = compose_cfg("analyze", [f"task={option}", "output_dir=/tmp/x"])
    assert cfg.task.name in TASKS
    assert set(cfg.task) >= {"name", "params", "file", "files", "split", "control", "unknown_label"}


@pytest.mark.parametrize("option", options("logger"))
def test_logger_configs_instantiate_offline(option: str, tmp_path: Path) -> None:
    from neuroscope.reporting.loggers import make_logger

    cfg = compose_cfg("analyze", [f"logger={option}", f"output_dir={tmp_path}"])
    logger = make_logger(cfg.logger)
    if option == "none":
        assert logger is None
    else:
        assert logger is not None and Path(logger.save_dir) == tmp_path
        if option == "wandb":
            assert cfg.logger.offline is True
            import wandb

            wandb.finish()


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_configs_instantiate(option: str, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [f"trainer={option}", f"output_dir={tmp_path}"])
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.max_epochs >= 1


@pytest.mark.parametrize("option", options("data"))
def test_data_configs_compose(option: str) -> None:
    cfg = compose_cfg("analyze", [f"data={option}", "output_dir=/tmp/x"])
    assert {"root", "download"} <= set(cfg.data)


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_configs_override_groups(option: str) -> None:
    cfg = compose_cfg("analyze", [f"experiment={option}", "output_dir=/tmp/x"])
    assert cfg.model.name in MODELS and cfg.task.name in TASKS
    OmegaConf.resolve(cfg.store)


@pytest.mark.parametrize("launcher", ["basic", "joblib", "parallel"])
def test_launchers_compose(launcher: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    target = cfg.hydra.launcher._target_
    assert ("Joblib" in target) == (launcher != "basic")


def test_default_is_a_whole_lca_study_and_method_none_extracts_only() -> None:
    cfg = compose_cfg("analyze", ["output_dir=/tmp/x"])
    assert cfg.model.name == "minilm" and cfg.task.name == "upos" and cfg.method.name == "lca"
    assert not compose_cfg("analyze", ["output_dir=/tmp/x", "method=none"]).method
    assert compose_cfg("analyze", ["output_dir=/tmp/x", "~method"]).get("method") is None
    assert cfg.task.file == "ud_ewt:dev" and cfg.seed == 0
