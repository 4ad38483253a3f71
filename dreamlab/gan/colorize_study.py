"""The deepcolor study: line-art colorization with colour hints, a U-Net trained with L1 + adversarial loss.

A notebook runs it as ``run(make_config(ColorizeConfig, PRESETS, "smoke", run_dir=..., results_dir=...))`` and gets
the result's metrics back; ``load_run(run_dir)`` rebuilds the trained colorizer from the run's checkpoint. Training is
a step function on :class:`dreamlab.loop.TrainingLoop`; experiments/colorize.py is its command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch

from dreamlab.checkpoint import load_checkpoint
from dreamlab.config import RunConfig, in_range, non_negative, positive
from dreamlab.figures import save_figure
from dreamlab.gan.colorize import (
    ColorizationTrainer,
    blank_hint,
    inference_hint,
    line_art,
    to_unit_range,
    training_hint,
)
from dreamlab.gan.data import tensor_to_images
from dreamlab.gan.plots import curves_figure
from dreamlab.gan.runs import gan_training_loop, loss_curve
from dreamlab.results import StageTimer, write_result
from dreamlab.runs import UserError, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads


@dataclasses.dataclass
class ColorizeConfig(RunConfig):
    """deepcolor: colour line art from a sparse, blurred colour hint."""

    data: Literal["sprites", "folder"] = "sprites"  # sprites (embedded) | folder
    data_root: str = ""
    n_images: int = 4000  # sprites to render (data=sprites)
    background: tuple[int, ...] = (240, 240, 240)  # sprites on near-white paper, as drawings are (data=sprites)
    held_out: float = 0.1
    image_size: int = 32  # 64 in the paper preset; 32 keeps a run within ~25 min on a shared 2-core CPU
    width: int = 16
    depth: int = 3
    batch_size: int = 16
    steps: int = 2000
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    whiteouts: int = 30  # random white squares per training hint
    whiteout_size: int = 5  # 10 at 64x64 (paper preset): the post's 10x10 patches, same share of the image at 32
    hint_blur: int = 0  # box blur side; 0 = the post's 100/256 of the image side
    hint_intensity: float = 0.3  # inference hints keep this fraction of each colour's distance from white
    canny_low: int = 20  # low thresholds suit clean rendered images; raise them for photographs
    canny_high: int = 60
    max_train_minutes: float = 25.0  # stop (checkpointed, resumable) after this much training time; 0 = no limit
    checkpoint_every: int = 100
    log_every: int = 20
    colour_lines: str = ""  # a black-on-white line-art image to colour after training
    colour_hint: str = ""  # a colour image whose faded blur is the hint for colour_lines (blank when empty)

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "steps",
        "max_train_minutes",
        "checkpoint_every",
        "log_every",
        "colour_lines",
        "colour_hint",
    )

    def validate(self) -> None:
        super().validate()
        positive(self, "n_images", "image_size", "width", "depth", "batch_size", "steps", "lr", "whiteout_size")
        positive(self, "checkpoint_every", "log_every")
        non_negative(self, "l1_weight", "whiteouts", "hint_blur", "canny_low", "canny_high", "max_train_minutes")
        in_range(self, "hint_intensity", 0.0, 1.0)
        if not 0.0 <= self.beta1 < 1.0:
            raise UserError(f"--beta1 must be in [0, 1), got {self.beta1}")
        if not 0.0 < self.held_out < 1.0:
            raise UserError(f"--held_out must be a fraction in (0, 1), got {self.held_out}")
        if len(self.background) != 3 or not all(0 <= level <= 255 for level in self.background):
            raise UserError(f"--background must be three grey levels in 0..255 (R,G,B), got {self.background}")
        if self.canny_low > self.canny_high:
            raise UserError(f"--canny_low {self.canny_low} must not exceed --canny_high {self.canny_high}")
        if self.image_size % 2**self.depth or self.image_size < 8:
            raise UserError(
                f"--image_size must be >= 8 and divisible by 2**depth = {2**self.depth}, got {self.image_size}"
            )
        if self.whiteout_size > self.image_size:
            raise UserError(f"--whiteout_size {self.whiteout_size} exceeds the {self.image_size}-pixel images")
        if self.data == "sprites":
            n_train = self.n_images - max(1, round(self.held_out * self.n_images))
            if self.batch_size > n_train:
                raise UserError(f"--batch_size {self.batch_size} exceeds the {n_train} training images")

    def check_files(self) -> None:
        """The user's files exist (checked before a run starts; a config alone may name future ones)."""
        if self.data == "folder" and not (self.data_root and Path(self.data_root).is_dir()):
            raise UserError(f"--data folder needs --data_root, an existing folder of images; got {self.data_root!r}")
        for flag in ("colour_lines", "colour_hint"):
            path = getattr(self, flag)
            if path and cv2.imread(path) is None:
                raise UserError(f"--{flag} {path} is missing or not an image")
        if self.colour_hint and not self.colour_lines:
            raise UserError("--colour_hint is the hint for --colour_lines: give the line art too")


PRESETS = {
    "smoke": {"n_images": 200, "steps": 10, "width": 8, "batch_size": 8, "checkpoint_every": 5, "log_every": 5},
    "fast": {},
    "paper": {
        "n_images": 20000,
        "image_size": 64,
        "depth": 4,
        "whiteout_size": 10,
        "steps": 20000,
        "width": 64,
        "batch_size": 32,
        "max_train_minutes": 0.0,
    },
}


def load_images(config: ColorizeConfig) -> np.ndarray:
    """The colour images a config names, (n, S, S, 3) uint8: rendered sprites or the user's folder."""
    if config.data == "sprites":
        from dreamlab.data.sprites import ColouredSprites

        sprites = ColouredSprites(
            config.n_images, seed=config.seed, size=config.image_size, background=config.background
        )
        images = sprites.images
    else:
        from dreamlab.data.images import ImageFolder

        images = ImageFolder(config.data_root, config.image_size).images
    return np.asarray(images)


def read_image(path: str, size: int, grey: bool) -> np.ndarray:
    """A user's image resized to ``size``, as a grey (line art) or RGB (hint) uint8 array."""
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path!r} (missing or not an image)")
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def run_paths(config: ColorizeConfig) -> tuple[str, Path, Path]:
    """The result name, the run directory (checkpoint) and the folder of the result and figures."""
    suffix = "" if config.preset == "fast" else f"_{config.preset}"
    name = config.name or f"colorize_{config.data}{suffix}"
    return name, Path(config.run_dir or f"runs/gan/{name}"), Path(config.results_dir) / "gan"


def build_trainer(config: ColorizeConfig, device: torch.device, dtype: torch.dtype) -> ColorizationTrainer:
    """The U-Net, the patch discriminator and their optimisers, as the config describes them."""
    return ColorizationTrainer(
        config.width,
        config.depth,
        l1_weight=config.l1_weight,
        lr=config.lr,
        betas=(config.beta1, 0.999),
        device=device,
        dtype=dtype,
        log_grads=config.log_grads,
    )


def run(config: ColorizeConfig) -> dict:
    """Train (or resume), evaluate on the held-out images, colour the user's line art if given; return the metrics."""
    config.check_files()
    name, run_dir, out = run_paths(config)
    # The coloured line art is written beside the line art given.
    outputs = [out, *([Path(config.colour_lines).resolve().parent] if config.colour_lines else [])]
    with run_directory(run_dir, *outputs):
        return _run(config, name, run_dir, out)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[ColorizationTrainer, ColorizeConfig]:
    """The colorizer a run trained, with the weights of its last checkpoint, and its config
    (``trainer.colorize(lines, hints)`` colours line art, both in [-1, 1] from :func:`to_unit_range`)."""
    saved = load_checkpoint(Path(run_dir) / "checkpoint.pt", map_location=device)
    fields = {f.name for f in dataclasses.fields(ColorizeConfig)}
    values = {k: v for k, v in saved["config"].items() if k in fields}
    values["background"] = tuple(values.get("background", ColorizeConfig.background))
    config = ColorizeConfig(**values)
    trainer = build_trainer(config, torch.device(device), resolve_dtype(config.dtype))
    trainer.load_state_dict(saved["state"]["trainer"])
    return trainer, config


def _run(config: ColorizeConfig, name: str, run_dir: Path, out: Path) -> dict:
    set_threads(config.threads)
    rng = seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    data_timer = StageTimer()
    blur = config.hint_blur or None

    with data_timer.stage("data"):
        images = load_images(config)
        lines = np.stack([line_art(im, config.canny_low, config.canny_high) for im in images])
        order = np.random.default_rng(config.seed).permutation(len(images))
        n_held = max(1, round(config.held_out * len(images)))
        held, train = order[:n_held], order[n_held:]
        lines_t, targets_t = to_unit_range(lines), to_unit_range(images)

    trainer = build_trainer(config, device, dtype)
    loop = gan_training_loop(
        config,
        name,
        run_dir,
        {"trainer": trainer, "rng": rng},
        {"U-Net": trainer.generator, "discriminator": trainer.discriminator},
        device,
        data_timer.seconds["data"],
    )
    timer = loop.timer

    def step(_: int) -> dict[str, float]:
        index = rng.choice(train, config.batch_size, replace=False)
        hints = np.stack([training_hint(images[i], rng, config.whiteouts, config.whiteout_size, blur) for i in index])
        return trainer.step(lines_t[index], to_unit_range(hints), targets_t[index])

    loop.run(step)
    step_reached = loop.step
    curve = loss_curve(loop)

    with timer.stage("evaluate"):
        size = images.shape[1]
        hints = {
            "hint": np.stack([inference_hint(images[i], config.hint_intensity, blur) for i in held]),
            "no_hint": np.stack([blank_hint(size, size)] * len(held)),
        }
        outputs = {k: trainer.colorize(lines_t[held], to_unit_range(h)) for k, h in hints.items()}
        truth = images[held].astype(np.float64)
        # Mean absolute error per channel value on the 0-255 scale; the hint itself is the trivial baseline.
        metrics = {f"held_out_mae_{k}": float(np.abs(tensor_to_images(o) - truth).mean()) for k, o in outputs.items()}
        metrics["held_out_mae_of_hint_itself"] = float(np.abs(hints["hint"] - truth).mean())
        metrics.update(
            steps=step_reached,
            steps_planned=config.steps,
            held_out_images=len(held),
            train_seconds=timer.seconds.get("train", 0.0),
        )

    with timer.stage("figures"):
        rows = min(6, len(held))
        panels = {
            "original": images[held[:rows]],
            "line art": np.repeat(lines[held[:rows], :, :, None], 3, axis=3),
            "hint (0.3)": hints["hint"][:rows],
            "output": tensor_to_images(outputs["hint"][:rows]),
            "no hint": hints["no_hint"][:rows],
            "output, no hint": tensor_to_images(outputs["no_hint"][:rows]),
        }
        fig, axes = plt.subplots(rows, len(panels), figsize=(1.6 * len(panels), 1.6 * rows), squeeze=False)
        for r in range(rows):
            for c, (title, column) in enumerate(panels.items()):
                axes[r, c].imshow(column[r], interpolation="nearest")
                axes[r, c].axis("off")
                if r == 0:
                    axes[r, c].set_title(title, fontsize=8)
        save_figure(fig, out / f"{name}_examples.png")
        steps = curve.column("step")
        save_figure(
            curves_figure({"L1": (steps, curve.column("l1"))}, "colorization L1 (training)", "L1"),
            out / f"{name}_l1.png",
        )
        save_figure(
            curves_figure(
                {"D loss": (steps, curve.column("d_loss")), "G adversarial": (steps, curve.column("g_adversarial"))},
                "colorization adversarial losses",
                "loss",
            ),
            out / f"{name}_adversarial.png",
        )
        curve.to_csv(out / f"{name}_curve.csv")

    if config.colour_lines:
        user_lines = read_image(config.colour_lines, size, grey=True)
        user_hint = (
            inference_hint(read_image(config.colour_hint, size, grey=False), config.hint_intensity, blur)
            if config.colour_hint
            else blank_hint(size, size)
        )
        coloured = trainer.colorize(to_unit_range(user_lines[None]), to_unit_range(user_hint[None]))
        target = Path(config.colour_lines).with_name(Path(config.colour_lines).stem + "_coloured.png")
        cv2.imwrite(str(target), cv2.cvtColor(tensor_to_images(coloured)[0], cv2.COLOR_RGB2BGR))
        print(f"coloured {config.colour_lines} -> {target}")

    path = write_result(
        "gan",
        name,
        experiment="colorize",
        config=config,
        metrics=metrics,
        wall_seconds=timer.total,
        stages=timer.seconds,
        results_dir=config.results_dir,
    )
    print(f"{name}: {metrics}\nresult: {path}")
    return metrics
