"""The SNcGAN study: conditional GANs on labelled images (SNcGAN and its baselines), judged by an attribute classifier.

A notebook runs it as ``run(make_config(SNcGANConfig, PRESETS, "smoke", run_dir=..., results_dir=...))`` and gets
the result's metrics back; ``load_run(run_dir)`` rebuilds the trained GAN from the run's checkpoint. Training is a
step function on :class:`dreamlab.loop.TrainingLoop` (resumption, the loss curve, the time limit, NaN checks);
generator snapshots are taken every ``eval_every`` steps and judged after training by a classifier trained on the
real images (cached per run under a fingerprint of what it depends on). experiments/sncgan.py is its command line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from dreamlab.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dreamlab.config import RunConfig, config_dict, in_range, non_negative, positive
from dreamlab.figures import save_figure
from dreamlab.gan.conditioning import AttributeCodec, attribute_sweep, slerp
from dreamlab.gan.data import LabelledImages, tensor_to_images
from dreamlab.gan.evaluation import (
    AttributeClassifier,
    attribute_accuracy,
    feature_fid,
    train_attribute_classifier,
)
from dreamlab.gan.plots import curves_figure, labelled_grid
from dreamlab.gan.runs import gan_training_loop, loss_curve
from dreamlab.gan.training import GANTrainer, linear_decay
from dreamlab.results import CurveLog, StageTimer, write_result
from dreamlab.runs import UserError, check_finite_module, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads

DEFAULT_SPRITE_BACKGROUND = 128
DEFAULT_SPRITE_ROTATION = 360.0


@dataclasses.dataclass
class SNcGANConfig(RunConfig):
    """A (conditional) GAN variant trained on labelled images and judged by an attribute classifier."""

    variant: Literal["sncgan", "cgan", "sngan", "dcgan", "projection"] = "sncgan"
    loss: Literal["bce", "hinge"] = "bce"  # bce (one-sided label smoothing on real targets) | hinge
    # sprites (embedded, rendered by dreamlab) | folder (image folder + attribute table)
    data: Literal["sprites", "folder"] = "sprites"
    data_root: str = ""  # folder of images (data=folder)
    attributes: str = ""  # attribute table inside data_root: list_attr_celeba.txt format or a CSV of labels
    n_images: int = 20000  # sprites to render (data=sprites)
    # Grey level 0-255 behind the sprites (data=sprites). Mid-grey keeps the background in tanh's linear range; on
    # black (-1, tanh's saturated end, 94% of the pixels) every variant collapsed to blank images (docs/gan.md).
    sprite_background: int = DEFAULT_SPRITE_BACKGROUND
    # Range of the sprites' random orientation in degrees (data=sprites): 360 turns them every way, 0 keeps them
    # upright. Every D tried learns rotated shapes too slowly to teach them to G (docs/gan.md).
    sprite_rotation: float = DEFAULT_SPRITE_ROTATION
    held_out: float = 0.1  # fraction kept from GAN and classifier training, used for evaluation
    image_size: int = 32  # sprites are rendered at 64x64 and area-resampled to this size
    z_dim: int = 64
    g_width: int = 16
    d_width: int = 16
    batch_size: int = 64
    steps: int = 3000  # D/G update pairs
    lr: float = 2e-4  # Adam learning rate of G (and of D unless d_lr is given)
    # from this step on, G's and D's learning rates fall linearly to 0 at `steps` (SN-GAN's reference schedule); 0 = off
    lr_decay_start: int = 0
    d_lr: float | None = None  # D's learning rate when it differs from G's (two time-scale update rule)
    d_steps: int = 1  # D updates per G update (n_dis), each on a fresh real batch
    mode_seeking: float = 0.0  # weight of the mode-seeking term (Mao et al., 2019) in G's loss; 0 = off
    r1: float = 0.0  # gamma of the R1 penalty on D's gradient at real images (Mescheder et al., 2018); 0 = off
    # y modulates every G batch norm (conditional batch norm) or, with --no-g_conditional_norm, enters only with z
    g_conditional_norm: bool = True
    # G's conditional norms see [y, z] instead of y (BigGAN): with y alone they switched z off (docs/gan.md)
    g_norm_sees_z: bool = False
    # weight of an auxiliary classifier's cross-entropy in G's loss (after AC-GAN; beyond the SNcGAN paper); 0 = off
    auxiliary: float = 0.0
    # the auxiliary classifier: discriminator (D's spectrally normalised trunk) | batchnorm (a batch-normalised CNN)
    auxiliary_classifier: Literal["discriminator", "batchnorm"] = "discriminator"
    beta1: float = 0.5
    beta2: float = 0.999
    smooth_low: float = 0.9  # real targets ~ U[smooth_low, 1] (bce only)
    classifier_epochs: int = 6
    classifier_batch_size: int = 64
    classifier_lr: float = 2e-3
    max_train_minutes: float = 25.0  # stop (checkpointed, resumable) after this much training time; 0 = no limit
    eval_every: int = 250  # steps between G snapshots, each judged after training on eval_during samples
    eval_during: int = 1000
    checkpoint_every: int = 250
    log_every: int = 25
    autocast: Literal["none", "bf16"] = "none"  # bf16: D's and G's forward passes and losses in bfloat16

    # Budgets and the decay schedule (a run may be continued with a decay), and the judge's settings: the judge only
    # evaluates, so a finished run may be judged again by another.
    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "steps",
        "lr_decay_start",
        "eval_every",
        "checkpoint_every",
        "log_every",
        "max_train_minutes",
        "eval_during",
        "classifier_epochs",
        "classifier_batch_size",
        "classifier_lr",
    )
    # What the judge's weights depend on besides the images themselves (see judge_provenance).
    JUDGE_FIELDS: ClassVar[tuple[str, ...]] = (
        "seed",
        "held_out",
        "image_size",
        "dtype",
        "classifier_epochs",
        "classifier_batch_size",
        "classifier_lr",
    )

    def validate(self) -> None:
        super().validate()
        positive(self, "n_images", "z_dim", "g_width", "d_width", "batch_size", "steps", "lr", "d_steps")
        positive(self, "classifier_epochs", "classifier_batch_size", "classifier_lr")
        positive(self, "eval_every", "eval_during", "checkpoint_every", "log_every")
        non_negative(self, "mode_seeking", "r1", "auxiliary", "max_train_minutes", "lr_decay_start")
        if self.d_lr is not None:
            positive(self, "d_lr")
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise UserError(f"--image_size must be a power of two >= 8, got {self.image_size}")
        if not 0.0 < self.held_out < 1.0:
            raise UserError(f"--held_out must be a fraction in (0, 1), got {self.held_out}")
        in_range(self, "sprite_background", 0, 255)
        in_range(self, "sprite_rotation", 0.0, 360.0)
        in_range(self, "smooth_low", 0.0, 1.0)
        for beta in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, beta) < 1.0:
                raise UserError(f"--{beta} must be in [0, 1), got {getattr(self, beta)}")
        if self.lr_decay_start and self.lr_decay_start >= self.steps:
            raise UserError(
                f"--lr_decay_start must be 0 (off) or a step before --steps {self.steps}, got {self.lr_decay_start}"
            )
        if self.mode_seeking and self.batch_size < 2:
            raise UserError("--mode_seeking compares pairs of samples: it needs --batch_size >= 2")
        if self.auxiliary and self.variant not in ("sncgan", "cgan", "projection"):
            raise UserError(f"--auxiliary needs a conditional variant (sncgan, cgan, projection), not {self.variant}")
        if self.data == "sprites" and max(2, round(self.held_out * self.n_images)) >= self.n_images - 1:
            raise UserError(f"--n_images {self.n_images} are too few to hold out {self.held_out:.0%} and train")
        if self.variant in ("sncgan", "cgan") and self.image_size < 16:
            raise UserError(f"--variant {self.variant} concatenates y after a convolution: --image_size must be >= 16")

    def check_data_root(self) -> None:
        """The user's image folder exists (checked before a run starts; a config alone may name a future one)."""
        if self.data == "folder" and not (self.data_root and Path(self.data_root).is_dir()):
            raise UserError(f"--data folder needs --data_root, an existing folder of images; got {self.data_root!r}")


PRESETS = {
    "smoke": {
        "n_images": 600,
        "steps": 30,
        "batch_size": 16,
        "g_width": 16,
        "d_width": 16,
        "classifier_epochs": 1,
        "eval_every": 15,
        "eval_during": 50,
        "checkpoint_every": 10,
        "log_every": 5,
    },
    "fast": {},
    # The headline recipe (docs/gan.md, results/gan/sncgan_sprites_rot0_zn_g32_decay54to66k.json): upright sprites,
    # G's norms see [y, z], a 32-wide G, 66k steps with the learning rates decaying linearly to 0 from step 54k.
    "upright_g32": {
        "g_norm_sees_z": True,
        "sprite_rotation": 0.0,
        "g_width": 32,
        "steps": 66000,
        "lr_decay_start": 54000,
        "classifier_epochs": 10,
        "max_train_minutes": 0.0,
        "eval_every": 1000,
    },
    "paper": {
        "image_size": 64,
        "n_images": 50000,
        "g_width": 64,
        "d_width": 64,
        "steps": 30000,
        "classifier_epochs": 10,
        "eval_every": 1000,
        "max_train_minutes": 0.0,
    },
}


def load_data(config: SNcGANConfig) -> LabelledImages:
    """The labelled images a config names: rendered coloured sprites, or the user's folder and attribute table."""
    if config.data == "sprites":
        from dreamlab.data.sprites import ColouredSprites

        background = (config.sprite_background,) * 3
        sprites = ColouredSprites(
            config.n_images, seed=config.seed, size=64, background=background, rotation=config.sprite_rotation
        )
        return LabelledImages.from_dataset(sprites, config.image_size)
    from dreamlab.data.images import ImageFolder

    folder = ImageFolder(config.data_root, config.image_size, attributes=config.attributes or None)
    return LabelledImages.from_dataset(folder, config.image_size)


def data_name(config: SNcGANConfig) -> str:
    """Names runs: a non-default sprite background and a non-default rotation range are part of it."""
    if config.data == "sprites":
        name = "sprites"
        if config.sprite_background != DEFAULT_SPRITE_BACKGROUND:
            name += f"_bg{config.sprite_background}"
        if config.sprite_rotation != DEFAULT_SPRITE_ROTATION:
            name += f"_rot{config.sprite_rotation:g}"
        return name
    return Path(config.data_root.rstrip("/")).name or "folder"


def fingerprint(values: Mapping[str, Any]) -> str:
    """A short digest of JSON-ready values: names a cached artefact by everything it was computed from."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def data_digest(*parts: torch.Tensor) -> str:
    """A digest of the tensors' bytes: the judge depends on the exact images and split, however they were made."""
    digest = hashlib.sha256()
    for tensor in parts:
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def judge_provenance(config: SNcGANConfig, train: LabelledImages, held: LabelledImages) -> dict[str, Any]:
    """Everything the judge's weights and its held-out accuracy depend on: its settings and the split's images."""
    settings = {field: getattr(config, field) for field in SNcGANConfig.JUDGE_FIELDS}
    return {**settings, "data": data_digest(train.images, train.labels, held.images, held.labels)}


class Snapshots:
    """Generator snapshots of one run, each carrying the step and the training config that produced it.

    Snapshots are judged after training, so they outlive the process that wrote them. A fresh start (no checkpoint)
    discards every earlier snapshot and a resumed run those beyond its checkpoint's step: a snapshot evaluated is
    always one this run's own training history wrote. Loading checks each snapshot's recorded config and refuses,
    naming the fields, one written under another (a file copied in by hand, or left by an older dreamlab).
    """

    # Fields that do not change what G learns (budgets, schedules that may be extended, evaluation, paths).
    IGNORED_FIELDS = frozenset(
        {*SNcGANConfig.RESUMABLE_FIELDS, "name", "device", "run_dir", "results_dir", "log_grads", "threads"}
    )

    def __init__(self, folder: Path, config: SNcGANConfig):
        self.folder = folder
        self.config = {k: v for k, v in config_dict(config).items() if k not in self.IGNORED_FIELDS}

    def _paths(self) -> list[tuple[int, Path]]:
        return sorted((int(path.stem.split("_")[1]), path) for path in self.folder.glob("generator_*.pt"))

    def discard_after(self, step: int) -> None:
        """Delete the snapshots of steps after ``step`` (all of them for a fresh start, step 0)."""
        if step == 0 and self.folder.is_dir():
            shutil.rmtree(self.folder)
            return
        for snapshot_step, path in self._paths():
            if snapshot_step > step:
                path.unlink()

    def save(self, step: int, generator: torch.nn.Module) -> None:
        path = self.folder / f"generator_{step:07d}.pt"
        save_checkpoint(path, {"generator": generator.state_dict(), "step": step, "config": self.config})

    def load_all(self, last_step: int) -> list[tuple[int, Path, dict[str, torch.Tensor]]]:
        """(step, file, generator weights) of every snapshot up to ``last_step``, in order of steps."""
        loaded = []
        for step, path in self._paths():
            if step > last_step:
                continue
            saved = load_checkpoint(path)
            if "config" not in saved:
                raise UserError(f"snapshot {path} records no config (an older dreamlab wrote it); delete {self.folder}")
            differing = sorted(k for k in self.config if saved["config"].get(k) != self.config[k])
            if differing or saved["step"] != step:
                details = ", ".join(f"{k}: {saved['config'].get(k)!r} -> {self.config[k]!r}" for k in differing)
                reason = details or f"step {saved['step']}"
                raise UserError(f"snapshot {path} was written by another run ({reason}); delete {self.folder}")
            loaded.append((step, path, saved["generator"]))
        return loaded


def get_classifier(
    config: SNcGANConfig,
    train: LabelledImages,
    held: LabelledImages,
    device: torch.device,
    dtype: torch.dtype,
    folder: Path,
) -> tuple[AttributeClassifier, dict[str, float]]:
    """The judge, cached in ``folder`` (the run's own) under a fingerprint of everything it depends on.

    It is trained from its own seed, so every variant run on the same data and split gets the same judge and their
    metrics stay comparable without sharing a file between runs. A cached judge whose recorded provenance differs
    from this run's (a damaged or hand-copied file) is retrained, never reused.
    """
    provenance = judge_provenance(config, train, held)
    path = folder / f"judge_{fingerprint(provenance)}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 6)  # its own initial weights, whatever the GAN drew before
        classifier = AttributeClassifier(train.codec.sizes).to(device, dtype)
    if path.is_file():
        saved = load_checkpoint(path)
        recorded = saved.get("provenance", {})
        if recorded == provenance:
            classifier.load_state_dict(saved["model"])
            check_finite_module(classifier, f"judge {path}")
            return classifier, saved["held_out_accuracy"]
        differing = sorted(k for k in provenance if recorded.get(k) != provenance[k])
        print(f"{path} records other {', '.join(differing)} than this run's: retraining the judge")
    generator = torch.Generator().manual_seed(config.seed + 7)
    losses = train_attribute_classifier(
        classifier,
        train.images.to(dtype),
        train.labels,
        epochs=config.classifier_epochs,
        batch_size=config.classifier_batch_size,
        lr=config.classifier_lr,
        generator=generator,
    )
    check_finite_module(classifier, "judge after training")
    accuracy = attribute_accuracy(classifier, held.images.to(device, dtype), held.labels, held.codec)
    state = {"model": classifier.state_dict(), "held_out_accuracy": accuracy, "losses": losses}
    save_checkpoint(path, {**state, "provenance": provenance})
    return classifier, accuracy


def evaluate(
    trainer: GANTrainer, classifier: AttributeClassifier, held: LabelledImages, z: torch.Tensor, dtype: torch.dtype
) -> tuple[dict[str, float], float]:
    """Conditioning accuracy of G(z, y_held) and feature-FID against the held-out real images."""
    n = z.shape[0]
    y = held.codec.encode(held.labels[:n])
    fake = trainer.generate(z, y)
    accuracy = attribute_accuracy(classifier, fake, held.labels[:n], held.codec)
    return accuracy, feature_fid(classifier, held.images[:n].to(fake.device, dtype), fake)


def save_figures(
    config: SNcGANConfig, name: str, trainer: GANTrainer, held: LabelledImages, losses: CurveLog, evals: CurveLog
) -> None:
    out = Path(config.results_dir) / "gan"
    codec, columns = held.codec, 8
    generator = torch.Generator().manual_seed(config.seed + 2)
    z = trainer.sample_z(columns, generator)
    base = held.labels[:columns]
    if trainer.spec.conditional:
        for a, attribute in enumerate(codec.names):
            classes = codec.class_names[attribute]
            labels = attribute_sweep(base, a, len(classes))
            images = trainer.generate(z.repeat(len(classes), 1), codec.encode(labels))
            title = f"{config.variant}: one row per {attribute}; each column keeps z and the other attributes"
            save_figure(labelled_grid(tensor_to_images(images), classes, title), out / f"{name}_grid_{attribute}.png")
    else:
        images = trainer.generate(trainer.sample_z(4 * columns, generator))
        fig = labelled_grid(tensor_to_images(images), [""] * 4, f"{config.variant}: unconditional samples")
        save_figure(fig, out / f"{name}_grid.png")
    rows = 6
    ends = trainer.sample_z(2 * rows, generator)
    z_path = torch.cat([slerp(ends[2 * r], ends[2 * r + 1], 10) for r in range(rows)])
    y_path = codec.encode(held.labels[:rows].repeat_interleave(10, 0)) if trainer.spec.conditional else None
    row_names = (
        [
            ", ".join(codec.class_names[k][int(c)] for k, c in zip(codec.names, held.labels[r], strict=True))
            for r in range(rows)
        ]
        if trainer.spec.conditional
        else [""] * rows
    )
    fig = labelled_grid(
        tensor_to_images(trainer.generate(z_path, y_path)),
        row_names,
        f"{config.variant}: slerp between two codes at a fixed condition",
    )
    save_figure(fig, out / f"{name}_interpolation.png")
    steps = losses.column("step")
    fig = curves_figure(
        {"D loss": (steps, losses.column("d_loss")), "G loss": (steps, losses.column("g_loss"))},
        f"{config.variant} ({config.loss}) losses",
        "loss",
    )
    save_figure(fig, out / f"{name}_losses.png")
    fig = curves_figure(
        {"feature-FID": (evals.column("step"), evals.column("feature_fid"))},
        f"{config.variant}: feature-FID on {config.eval_during} samples",
        "feature-FID",
    )
    save_figure(fig, out / f"{name}_fid.png")


def default_name(config: SNcGANConfig) -> str:
    suffix = "" if config.preset == "fast" else f"_{config.preset}"
    return f"{config.variant}_{data_name(config)}{suffix}"


def run_paths(config: SNcGANConfig) -> tuple[str, Path, Path]:
    """The result name, the run directory (checkpoint, snapshots, judge) and the folder of the result and figures."""
    name = config.name or default_name(config)
    return name, Path(config.run_dir or f"runs/gan/{name}"), Path(config.results_dir) / "gan"


def build_trainer(config: SNcGANConfig, codec: AttributeCodec, device: torch.device, dtype: torch.dtype) -> GANTrainer:
    """G, D (and the auxiliary classifier) with their optimisers, as the config describes them."""
    return GANTrainer(
        config.variant,
        codec.dim,
        config.image_size,
        z_dim=config.z_dim,
        g_width=config.g_width,
        d_width=config.d_width,
        loss=config.loss,
        label_smoothing=(config.smooth_low, 1.0),
        lr=config.lr,
        d_lr=config.d_lr,
        d_steps=config.d_steps,
        mode_seeking=config.mode_seeking,
        r1=config.r1,
        g_conditional_norm=config.g_conditional_norm,
        g_norm_sees_z=config.g_norm_sees_z,
        auxiliary=config.auxiliary,
        auxiliary_classifier=config.auxiliary_classifier,
        codec=codec,
        betas=(config.beta1, config.beta2),
        device=device,
        dtype=dtype,
        log_grads=config.log_grads,
        autocast=config.autocast,
    )


def run(config: SNcGANConfig) -> dict:
    """Train (or resume) the GAN in the run directory, judge its snapshots, write the result; return the metrics."""
    config.check_data_root()
    name, run_dir, out_dir = run_paths(config)
    with run_directory(run_dir, out_dir):
        return _run(config, name, run_dir, out_dir)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[GANTrainer, SNcGANConfig]:
    """The GAN a run trained, with the weights of its last checkpoint, and its config.

    ``trainer.generator`` is G; ``trainer.generate(trainer.sample_z(n), trainer.codec.encode(labels))`` draws images
    in [-1, 1] for attribute class indices ``labels`` (n, A), named by ``trainer.codec.class_names``.
    """
    run_dir = Path(run_dir)
    saved = load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    fields = {f.name for f in dataclasses.fields(SNcGANConfig)}
    config = SNcGANConfig(**{k: v for k, v in saved["config"].items() if k in fields})
    if not (run_dir / CONDITION_FILE).is_file():
        raise CheckpointError(f"{run_dir / CONDITION_FILE} is missing: the run that wrote {run_dir} predates it")
    condition = json.loads((run_dir / CONDITION_FILE).read_text())
    codec = AttributeCodec(condition["attribute_classes"], condition["binary"])
    trainer = build_trainer(config, codec, torch.device(device), resolve_dtype(config.dtype))
    trainer.load_state_dict(saved["state"]["trainer"])
    return trainer, config


# The attributes G is conditioned on, written beside the checkpoint so that load_run needs no data.
CONDITION_FILE = "condition.json"


def _trainer_modules(trainer: GANTrainer) -> dict[str, torch.nn.Module]:
    modules = {"generator": trainer.generator, "discriminator": trainer.discriminator}
    if trainer.classifier is not None:
        modules["auxiliary classifier"] = trainer.classifier
    return modules


def _run(config: SNcGANConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    set_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    data_timer = StageTimer()
    with data_timer.stage("data"):
        data = load_data(config)
        train, held = data.split(config.held_out, torch.Generator().manual_seed(config.seed))
    print(f"{len(train)} training / {len(held)} held-out images, {train.codec.dim}-dimensional condition")

    trainer = build_trainer(config, train.codec, device, dtype)
    codec = {"attribute_classes": train.codec.class_names, "binary": sorted(train.codec.binary)}
    (run_dir / CONDITION_FILE).write_text(json.dumps(codec, indent=1))
    generator = torch.Generator().manual_seed(config.seed + 1)
    loop = gan_training_loop(
        config,
        name,
        run_dir,
        {"trainer": trainer, "generator": generator},
        _trainer_modules(trainer),
        device,
        data_timer.seconds["data"],
    )
    timer = loop.timer
    snapshots = Snapshots(run_dir / "snapshots", config)
    snapshots.discard_after(loop.step)
    y_train = train.codec.encode(train.labels)

    def step(done: int) -> dict[str, float]:
        # Set every step, so a checkpoint's restored (possibly decayed) learning rate never outlives the schedule.
        trainer.scale_learning_rates(
            linear_decay(done, config.lr_decay_start, config.steps) if config.lr_decay_start else 1
        )
        index = torch.randint(len(train), (config.batch_size * config.d_steps,), generator=generator)
        stats = trainer.step(train.images[index], y_train[index], generator)
        if (done + 1) % config.eval_every == 0:
            # Snapshots of G, judged after training: training never waits for (or depends on) the classifier.
            snapshots.save(done + 1, trainer.generator)
        return stats

    loop.run(step)
    step_reached = loop.step
    losses = loss_curve(loop)

    eval_z = trainer.sample_z(len(held), torch.Generator().manual_seed(config.seed + 3))
    with timer.stage("classifier"):
        classifier, classifier_accuracy = get_classifier(config, train, held, device, dtype, run_dir / "judge")
    print(f"classifier held-out accuracy {classifier_accuracy}")
    with timer.stage("evaluate"):
        evals = CurveLog()
        final_generator = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
        for snapshot_step, path, snapshot in snapshots.load_all(step_reached):
            trainer.generator.load_state_dict(snapshot)
            check_finite_module(trainer.generator, f"snapshot {path}")
            snapshot_accuracy, snapshot_fid = evaluate(trainer, classifier, held, eval_z[: config.eval_during], dtype)
            accuracy_columns = {f"accuracy_{k}": v for k, v in snapshot_accuracy.items()}
            evals.append(step=snapshot_step, feature_fid=snapshot_fid, **accuracy_columns)
        trainer.generator.load_state_dict(final_generator)
        accuracy, fid = evaluate(trainer, classifier, held, eval_z, dtype)
        n_floor = min(len(train), len(held))
        fid_floor = feature_fid(classifier, held.images.to(device, dtype), train.images[:n_floor].to(device, dtype))
    losses.to_csv(out_dir / f"{name}_losses.csv")
    evals.to_csv(out_dir / f"{name}_eval.csv")
    with timer.stage("figures"):
        save_figures(config, name, trainer, held, losses, evals)
    metrics = {
        "attribute_accuracy": accuracy,
        "mean_attribute_accuracy": sum(accuracy.values()) / len(accuracy),
        "min_attribute_accuracy": min(accuracy.values()),
        "feature_fid": fid,
        "feature_fid_real_vs_real": fid_floor,
        "classifier_held_out_accuracy": classifier_accuracy,
        "conditional": trainer.spec.conditional,
        "evaluated_samples": len(held),
        "steps": step_reached,
        "steps_planned": config.steps,
        "train_seconds": timer.seconds.get("train", 0.0),
    }
    path = write_result(
        "gan",
        name,
        experiment="sncgan",
        config=config,
        metrics=metrics,
        wall_seconds=timer.total,
        stages=timer.seconds,
        results_dir=config.results_dir,
    )
    print(
        f"{name}: feature-FID {fid:.3f} (real vs real {fid_floor:.3f}); attribute accuracy {accuracy}\nresult: {path}"
    )
    return metrics
