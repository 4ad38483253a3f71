"""DRAW (Gregor et al. 2015) with and without attention, and a VAE at the same latent budget.

python experiments/draw.py --preset fast                              # dSprites 32x32, attention
python experiments/draw.py --preset fast --no-attention               # same budget, whole-image read/write
python experiments/draw.py --preset fast --model vae                  # one-shot VAE, latent = glimpses * z_size
python experiments/draw.py --preset colour                            # coloured sprites, L2 loss, shared window
python experiments/draw.py --preset paper --data_path ~/data/mnist    # the paper's MNIST model (80.97 nats)

Runs checkpoint to runs/draw/<name>/ and resume when started again with the same arguments (``--steps`` may grow).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import ClassVar, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import RunConfig, non_negative, parse_config, positive
from dreamlab.draw.data import SOURCE_CHANNELS, ImageSet, Source, load_image_set
from dreamlab.draw.model import DRAW
from dreamlab.draw.training import evaluate_bound, train_step
from dreamlab.draw.vae import VAE
from dreamlab.draw.visualize import attention_frames, glimpse_strip, tile, to_rgb
from dreamlab.figures import save_figure, save_gif
from dreamlab.grad_monitor import GradientMonitor
from dreamlab.results import CurveLog, StageTimer, write_result
from dreamlab.runs import UserError, check_finite_module, cli, run_directory
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


def save_image(grid: np.ndarray, path: Path, title: str) -> None:
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(max(3.0, width / 80), max(2.0, height / 80 + 0.4)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    save_figure(fig, path)


@torch.no_grad()
def write_figures(
    model: DRAW | VAE, config: DrawConfig, images: ImageSet, device: torch.device, dtype: torch.dtype, prefix: Path
) -> list[Path]:
    """Reconstructions, samples and, for DRAW, per-glimpse canvases and attention animations."""
    model.eval()
    count = min(config.figure_images, len(images.test))
    targets = images.batch("test", slice(0, count), device, dtype)
    generator = torch.Generator(device=device).manual_seed(config.seed + 2)
    recon = model(targets, generator=generator)
    samples = model.generate(max(count, 16), generator=generator)
    target_np = targets.float().cpu().numpy()
    written = []

    def sigmoid_np(logits: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(logits).float().cpu().numpy()

    pairs = np.concatenate([to_rgb(target_np, 2), to_rgb(sigmoid_np(recon.final_logits), 2)])
    save_image(
        tile(pairs, count), prefix.with_name(prefix.name + "_reconstructions.png"), "test images / reconstructions"
    )
    written.append(prefix.with_name(prefix.name + "_reconstructions.png"))
    sample_grid = tile(to_rgb(sigmoid_np(samples.final_logits), 2), 8)
    save_image(sample_grid, prefix.with_name(prefix.name + "_samples.png"), "samples from the prior")
    written.append(prefix.with_name(prefix.name + "_samples.png"))
    if isinstance(model, VAE):
        return written

    recon_canvases = sigmoid_np(recon.canvases)
    sample_canvases = sigmoid_np(samples.canvases[:, :count])
    path = prefix.with_name(prefix.name + "_glimpses_reconstruction.png")
    save_image(
        glimpse_strip(recon_canvases, target_np), path, "sigmoid(c_t) for t = 1..T while reconstructing; target last"
    )
    written.append(path)
    path = prefix.with_name(prefix.name + "_glimpses_samples.png")
    save_image(glimpse_strip(sample_canvases), path, "sigmoid(c_t) for t = 1..T while generating")
    written.append(path)

    fps = max(2.0, config.glimpses / 4)
    read_windows = recon.read_windows.detach() if recon.read_windows is not None else None
    write_windows = recon.write_windows.detach() if recon.write_windows is not None else None
    frames = attention_frames(
        recon_canvases, write_windows, config.write_patch, target_np, read_windows, config.read_patch
    )
    path = prefix.with_name(prefix.name + "_attention.gif")
    save_gif(np.concatenate([frames, frames[-1:].repeat(int(fps), axis=0)]), path, fps=fps)
    written.append(path)
    sample_windows = samples.write_windows.detach() if samples.write_windows is not None else None
    if sample_windows is not None:
        sample_windows = type(sample_windows)(*(t[:, :count] for t in sample_windows.as_tuple()))
    frames = attention_frames(sample_canvases, sample_windows, config.write_patch, columns=count)
    path = prefix.with_name(prefix.name + "_generation.gif")
    save_gif(np.concatenate([frames, frames[-1:].repeat(int(fps), axis=0)]), path, fps=fps)
    written.append(path)
    return written


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(DrawConfig, PRESETS, argv, description=__doc__)
    config.check_data_path()
    name = config.name or default_name(config)
    run_dir = Path(config.run_dir or f"runs/draw/{name}")
    out_dir = Path(config.results_dir) / "draw"
    with run_directory(run_dir, out_dir):
        return run(config, name, run_dir, out_dir)


def run(config: DrawConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    """Train (or resume) in ``run_dir``, evaluate the bound, and write the result and figures to ``out_dir``."""
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
    curve, timer = CurveLog(), StageTimer()
    checkpointer = Checkpointer(run_dir, config)
    step = 0
    state = checkpointer.load(map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        check_finite_module(model, f"{config.model} in checkpoint {checkpointer.path}")
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        curve.load_state_dict(state["curve"])
        timer.load_state_dict(state["timer"])
        step = int(state["step"])
        print(f"resumed {run_dir} at step {step}")

    def save() -> None:
        checkpointer.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "curve": curve.state_dict(),
                "timer": timer.state_dict(),
                "step": step,
            }
        )

    def test_batches(start: int, stop: int) -> torch.Tensor:
        return images.batch("test", slice(start, stop), device, dtype)

    def evaluate(count: int) -> dict[str, float]:
        eval_generator.manual_seed(config.seed + 1)  # the same posterior noise at every evaluation
        return evaluate_bound(model, test_batches, count, config.likelihood, 256, eval_generator)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {config.model} attention={config.attention} {images.shape} {config.likelihood}, {n_params} params")
    last_save = time.perf_counter()
    window: list[dict[str, float]] = []
    while step < config.steps:
        with timer.stage("train"):
            batch = images.batch("train", rng.integers(0, len(images.train), config.batch_size), device, dtype)
            window.append(train_step(model, optimizer, batch, config.likelihood, config.grad_clip, monitor=monitor))
        step += 1
        if step % config.eval_every == 0 or step == config.steps:
            with timer.stage("evaluate"):
                test = evaluate(min(config.eval_images, len(images.test)))
            train = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            window.clear()
            curve.append(
                step=step,
                train_loss=train["loss"],
                train_kl=train["kl"],
                grad_norm=train["grad_norm"],
                test_bound=test["bound"],
                test_kl=test["kl"],
                seconds=round(timer.total, 1),
            )
            curve.to_csv(out_dir / f"{name}_curve.csv")
            print(
                f"step {step}/{config.steps}  train {train['loss']:.2f}  test bound {test['bound']:.2f} "
                f"(kl {test['kl']:.2f})  {timer.total:.0f}s",
                flush=True,
            )
        if time.perf_counter() - last_save > config.checkpoint_seconds or step == config.steps:
            save()
            last_save = time.perf_counter()
    check_finite_module(model, f"{config.model} at step {step}")

    with timer.stage("evaluate"):
        test = evaluate(len(images.test))
        eval_generator.manual_seed(config.seed + 1)
        train_subset = evaluate_bound(
            model,
            lambda a, b: images.batch("train", slice(a, b), device, dtype),
            min(len(images.train), len(images.test)),
            config.likelihood,
            256,
            eval_generator,
        )
    with timer.stage("figures"):
        figures = write_figures(model, config, images, device, dtype, out_dir / name)
    nll_defined = images.binary and config.likelihood == "bernoulli"
    metrics = {
        "test_nll_nats": test["bound"] if nll_defined else None,
        "test_reconstruction": test["reconstruction"],
        "test_kl_nats": test["kl"],
        "test_loss": test["bound"],
        "train_loss_on_test_sized_subset": train_subset["bound"],
        "loss_kind": "bernoulli NLL bound (nats)" if nll_defined else f"{config.likelihood} reconstruction + KL",
        "latent_dims_total": config.glimpses * config.z_size,
        "parameters": n_params,
        "steps": step,
        "train_images_seen": step * config.batch_size,
        "train_seconds": round(timer.seconds.get("train", 0.0), 1),
        "seconds_per_step": round(timer.seconds.get("train", 0.0) / max(step, 1), 4),
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


if __name__ == "__main__":
    main()
