"""The DRAW study: DRAW (Gregor et al. 2015) with and without attention, and a VAE at the same latent budget.

A notebook runs it as ``run(make_config(DrawConfig, PRESETS, "smoke", run_dir=..., results_dir=...))`` and gets the
result's metrics back; ``load_run(run_dir)`` rebuilds the trained model from the run's checkpoint. Training is a step
function on :class:`dreamlab.loop.TrainingLoop`, which owns resumption (model, Adam, the batch generator and torch's
generator), the curve and the NaN checks; experiments/draw.py is its command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

import torch

from dreamlab.checkpoint import Checkpointer, load_checkpoint
from dreamlab.config import RunConfig, non_negative, positive
from dreamlab.draw.data import SOURCE_CHANNELS, ImageSet, Source, load_image_set
from dreamlab.draw.figures import write_figures
from dreamlab.draw.model import DRAW
from dreamlab.draw.training import evaluate_bound, train_step
from dreamlab.draw.vae import VAE
from dreamlab.grad_monitor import GradientMonitor
from dreamlab.loop import TrainingLoop
from dreamlab.progress import tensorboard_dir
from dreamlab.results import write_result
from dreamlab.runs import UserError, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads


@dataclasses.dataclass
class DrawConfig(RunConfig):
    """DRAW / VAE on binary (Bernoulli, NLL in nats) or colour (L2) images."""

    data: Source = "dsprites"
    data_path: str = ""  # mnist: folder with the IDX files; folder: image folder (e.g. CelebA)
    image_size: int = 32  # images are rendered or resized to image_size x image_size
    channels: int = 0  # 0: taken from the data (1 binary, 3 colour) and recorded
    n_train: int = 50000
    n_test: int = 5000
    model: Literal["draw", "vae"] = "draw"
    attention: bool = True  # DRAW only; recorded as false for the VAE
    glimpses: int = 10  # T
    read_patch: int = 8  # N of the read window
    write_patch: int = 8  # N of the write window
    enc_size: int = 128  # encoder LSTM units
    dec_size: int = 128  # decoder LSTM units
    z_size: int = 10  # latent size per glimpse; the VAE gets glimpses * z_size
    vae_hidden: int = 256  # VAE MLP width (two hidden layers each way)
    likelihood: Literal["", "bernoulli", "l2"] = ""  # empty: bernoulli for binary data, l2 for colour
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float = 10.0  # global gradient-norm clip; 0 disables
    steps: int = 2000
    eval_every: int = 250
    eval_images: int = 1000  # test images for the evaluations logged during training (the final one uses n_test)
    checkpoint_seconds: float = 60.0
    figure_images: int = 8
    autocast: Literal["none", "bf16"] = "none"  # bf16: the training step's forward and loss in bfloat16

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = ("steps", "eval_every", "checkpoint_seconds")

    def validate(self) -> None:
        super().validate()
        positive(self, "n_train", "n_test", "glimpses", "read_patch", "write_patch", "enc_size", "dec_size")
        positive(self, "z_size", "vae_hidden", "batch_size", "lr", "steps", "eval_every", "eval_images")
        positive(self, "figure_images")
        non_negative(self, "grad_clip", "checkpoint_seconds")
        if self.image_size < 4:
            raise UserError(f"--image_size must be at least 4 pixels, got {self.image_size}")
        if self.channels not in (0, SOURCE_CHANNELS[self.data]):
            raise UserError(
                f"--channels {self.channels} does not match the {self.data} images ({SOURCE_CHANNELS[self.data]}); "
                "leave it 0 to take it from the data"
            )

    def check_data_path(self) -> None:
        """The user's data folder exists (checked before a run starts; a config alone may name a future one)."""
        if self.data in ("mnist", "folder") and not (self.data_path and Path(self.data_path).is_dir()):
            what = "the MNIST IDX files" if self.data == "mnist" else "images"
            raise UserError(f"--data {self.data} needs --data_path, a folder of {what}; {self.data_path!r} is not one")


PRESETS = {
    "smoke": {
        "image_size": 16,
        "n_train": 256,
        "n_test": 64,
        "glimpses": 3,
        "read_patch": 3,
        "write_patch": 3,
        "enc_size": 32,
        "dec_size": 32,
        "z_size": 4,
        "vae_hidden": 32,
        "batch_size": 32,
        "steps": 6,
        "eval_every": 3,
        "eval_images": 64,
        "figure_images": 4,
    },
    # The committed dSprites comparison: about 10-15 CPU minutes per model on a shared laptop core.
    "fast": {},
    # The colour-DRAW post's setup on coloured sprites: L2 loss, one window shared by R, G and B.
    "colour": {"data": "coloured_sprites", "n_train": 20000, "n_test": 2000, "steps": 1000},
    # Gregor et al. 2015, binarized MNIST with attention: 64 glimpses, read 2x2, write 5x5, 256 LSTM units, z 100.
    "paper": {
        "data": "mnist",
        "image_size": 28,
        "n_train": 60000,
        "n_test": 10000,
        "glimpses": 64,
        "read_patch": 2,
        "write_patch": 5,
        "enc_size": 256,
        "dec_size": 256,
        "z_size": 100,
        "batch_size": 64,
        "steps": 200000,
        "eval_every": 5000,
    },
}


def resolve_config(config: DrawConfig, images: ImageSet) -> DrawConfig:
    """Fill the fields the data decides (channels, likelihood)."""
    channels = images.shape[0]
    likelihood = config.likelihood or ("bernoulli" if images.binary else "l2")
    attention = config.attention and config.model == "draw"
    return dataclasses.replace(config, channels=channels, likelihood=likelihood, attention=attention)


def build_model(config: DrawConfig) -> DRAW | VAE:
    """The DRAW model or the VAE baseline of a resolved config (channels known)."""
    shape = (config.channels, config.image_size, config.image_size)
    if config.model == "vae":
        return VAE(*shape, latent_size=config.glimpses * config.z_size, hidden_size=config.vae_hidden)
    return DRAW(
        *shape,
        glimpses=config.glimpses,
        enc_size=config.enc_size,
        dec_size=config.dec_size,
        z_size=config.z_size,
        attention=config.attention,
        read_patch=config.read_patch,
        write_patch=config.write_patch,
    )


def default_name(config: DrawConfig) -> str:
    variant = "vae" if config.model == "vae" else ("draw_attention" if config.attention else "draw_no_attention")
    return f"{config.data}_{variant}_{config.preset}"


def run_paths(config: DrawConfig) -> tuple[str, Path, Path]:
    """The result name, the run directory (checkpoint) and the folder of the result and figures."""
    name = config.name or default_name(config)
    return name, Path(config.run_dir or f"runs/draw/{name}"), Path(config.results_dir) / "draw"


def run(config: DrawConfig) -> dict:
    """Train (or resume) in the run directory, evaluate the bound, write the result and figures; return the metrics."""
    config.check_data_path()
    name, run_dir, out_dir = run_paths(config)
    with run_directory(run_dir, out_dir):
        return _run(config, name, run_dir, out_dir)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[DRAW | VAE, DrawConfig]:
    """The model a run trained, with weights of its last checkpoint, and its config (channels, likelihood resolved)."""
    saved = load_checkpoint(Path(run_dir) / "checkpoint.pt", map_location=device)
    fields = {f.name for f in dataclasses.fields(DrawConfig)}
    config = DrawConfig(**{k: v for k, v in saved["config"].items() if k in fields})
    model = build_model(config).to(device, resolve_dtype(config.dtype))
    model.load_state_dict(saved["state"]["model"])
    return model.eval(), config


def _run(config: DrawConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    set_threads(config.threads)
    rng = seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    images = load_image_set(
        config.data,
        size=config.image_size,
        n_train=config.n_train,
        n_test=config.n_test,
        seed=config.seed,
        path=config.data_path,
    )
    config = resolve_config(config, images)
    model = build_model(config).to(device=device, dtype=dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    monitor = GradientMonitor(model) if config.log_grads else None
    eval_generator = torch.Generator(device=device)
    loop = TrainingLoop(
        Checkpointer(run_dir, config),
        {"model": model, "optimizer": optimizer, "numpy_rng": rng},
        steps=config.steps,
        eval_every=config.eval_every,
        desc=name,
        checkpoint_seconds=config.checkpoint_seconds,
        check_modules={config.model: model},
        tensorboard=tensorboard_dir(config, run_dir),
        map_location=device,
    )

    def bound(split: str, count: int) -> dict[str, float]:
        eval_generator.manual_seed(config.seed + 1)  # the same posterior noise at every evaluation
        batches = lambda start, stop: images.batch(split, slice(start, stop), device, dtype)  # noqa: E731
        return evaluate_bound(model, batches, count, config.likelihood, 256, eval_generator)

    def step(_: int) -> dict[str, float]:
        batch = images.batch("train", rng.integers(0, len(images.train), config.batch_size), device, dtype)
        numbers = train_step(
            model, optimizer, batch, config.likelihood, config.grad_clip, monitor=monitor, autocast=config.autocast
        )
        return {"train_loss": numbers["loss"], "train_kl": numbers["kl"], "grad_norm": numbers["grad_norm"]}

    def evaluate(_: int) -> dict[str, float]:
        test = bound("test", min(config.eval_images, len(images.test)))
        return {"test_bound": test["bound"], "test_kl": test["kl"]}

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {config.model} attention={config.attention} {images.shape} {config.likelihood}, {n_params} params")
    loop.run(step, evaluate, on_row=lambda row: loop.curve.to_csv(out_dir / f"{name}_curve.csv"))
    timer = loop.timer
    with timer.stage("evaluate"):
        test = bound("test", len(images.test))
        train_subset = bound("train", min(len(images.train), len(images.test)))
    with timer.stage("figures"):
        figures = write_figures(model, config, images, out_dir / name, device, dtype)
    nll_defined = images.binary and config.likelihood == "bernoulli"
    steps = loop.step
    metrics = {
        "test_nll_nats": test["bound"] if nll_defined else None,
        "test_reconstruction": test["reconstruction"],
        "test_kl_nats": test["kl"],
        "test_loss": test["bound"],
        "train_loss_on_test_sized_subset": train_subset["bound"],
        "loss_kind": "bernoulli NLL bound (nats)" if nll_defined else f"{config.likelihood} reconstruction + KL",
        "latent_dims_total": config.glimpses * config.z_size,
        "parameters": n_params,
        "steps": steps,
        "train_images_seen": steps * config.batch_size,
        "train_seconds": round(timer.seconds.get("train", 0.0), 1),
        "seconds_per_step": round(timer.seconds.get("train", 0.0) / max(steps, 1), 4),
        "figures": [p.name for p in figures],
    }
    path = write_result(
        "draw",
        name,
        experiment="draw",
        config=config,
        metrics=metrics,
        wall_seconds=timer.total,
        stages=timer.seconds,
        results_dir=config.results_dir,
    )
    print(f"{name}: test {metrics['loss_kind']} {test['bound']:.2f} (kl {test['kl']:.2f}); result {path}")
    return metrics
