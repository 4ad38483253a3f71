"""What the two GAN studies (SNcGAN, colorization) share around :class:`dreamlab.loop.TrainingLoop`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dreamlab.checkpoint import Checkpointer
from dreamlab.loop import TrainingLoop
from dreamlab.progress import tensorboard_dir
from dreamlab.results import CurveLog


def gan_training_loop(
    config: Any,
    name: str,
    run_dir: Path,
    objects: Mapping[str, Any],
    check_modules: Mapping[str, torch.nn.Module],
    device: torch.device,
    data_seconds: float,
) -> TrainingLoop:
    """The loop of a GAN study: a curve row every ``config.log_every`` steps, a checkpoint every
    ``config.checkpoint_every`` (only), a stop after ``config.max_train_minutes`` of training (0: none), and the
    data-loading time added to the run's timer."""
    loop = TrainingLoop(
        Checkpointer(run_dir, config),
        objects,
        steps=config.steps,
        eval_every=config.log_every,
        desc=name,
        checkpoint_seconds=math.inf,
        checkpoint_every=config.checkpoint_every,
        max_train_seconds=60 * config.max_train_minutes,
        check_modules=check_modules,
        tensorboard=tensorboard_dir(config, run_dir),
        map_location=device,
    )
    loop.timer.seconds["data"] = loop.timer.seconds.get("data", 0.0) + data_seconds
    return loop


def loss_curve(loop: TrainingLoop) -> CurveLog:
    """The loop's curve less its wall-seconds column: the loss CSVs keep the columns they had before the loop."""
    curve = CurveLog()
    for row in loop.curve.rows:
        curve.append(**{k: v for k, v in row.items() if k != "seconds"})
    return curve
