"""Resumable training stages of World Models: V, encoding, M and C.

V and M train on :class:`dreamlab.loop.TrainingLoop`, which saves their full state (weights, optimiser, data
order, random generators, step, curve) at most every ``checkpoint_seconds`` and when they end; C's CMA-ES saves
after every generation. Re-running a stage after a kill continues from the last checkpoint, and re-running a
finished stage only reloads its result, so nothing is lost or done twice. A larger step budget continues a
finished stage.

A broken model never produces a result: every loss is checked before its update (NaN, Inf, or beyond
:data:`LOSS_LIMIT`, where training has diverged), and the weights are checked when loaded and after the last
update, which no loss sees. Latents are kept in a folder keyed by V's weights (:func:`latents_folder`).

Each stage shows its progress from the rows it adds to its curve (a bar, or log lines off a terminal) and, given a
``tensorboard`` folder, writes them there as scalars ``V/...``, ``M/...`` and ``C/...``
(:func:`dreamlab.progress.track`).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer
from dreamlab.cmaes import CMAES
from dreamlab.files import atomic_savez, load_npz
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.loop import TrainingLoop
from dreamlab.results import CurveLog
from dreamlab.runs import NonFiniteError, UserError, check_finite_module
from dreamlab.runtime import autocast as autocast_context
from dreamlab.worldmodels.cores import State, detach_state, map_state
from dreamlab.worldmodels.mdnrnn import MDNRNN, mdnrnn_loss
from dreamlab.worldmodels.provenance import fingerprint, read_manifest, write_manifest
from dreamlab.worldmodels.rollouts import load_rollout
from dreamlab.worldmodels.sequences import EpisodeStreams, LatentEpisodes, make_chunk
from dreamlab.worldmodels.tasks import Task
from dreamlab.worldmodels.vae import ConvVAE, frames_to_tensor, vae_loss

Log = Callable[[str], None]
LATENT_KEYS = ("mu", "logvar", "actions", "dones")
# A loss beyond this means training diverged: V's reconstruction term is at most 64 * 64 * 3 = 12288 per frame, and
# an untrained M's mixture NLL is a few nats per dimension, so no sane run comes near, while the weights are still
# far from float32's overflow (3.4e38) that would turn the next loss into NaN without saying why.
LOSS_LIMIT = 1e6


def check_loss(loss: torch.Tensor, what: str) -> None:
    """Stop on a NaN or Inf loss (:class:`NonFiniteLossError`) or one beyond :data:`LOSS_LIMIT`."""
    check_finite(loss, what)
    if abs(loss.item()) > LOSS_LIMIT:
        raise NonFiniteError(
            f"{what} is {loss.item():.3g}, beyond {LOSS_LIMIT:g}: training diverged; lower the learning rate"
        )


def load_frames(paths: Sequence[str | os.PathLike]) -> torch.Tensor:
    """All frames of the given rollouts as one uint8 tensor (N, 64, 64, 3)."""
    return torch.from_numpy(np.concatenate([load_rollout(p)["frames"] for p in paths]))


def train_vae(
    vae: ConvVAE,
    load_frames: Callable[[], torch.Tensor],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    kl_tolerance: float,
    seed: int,
    checkpointer: Checkpointer,
    checkpoint_seconds: float = 120.0,
    log_every: int = 100,
    monitor_grads: bool = False,
    autocast: str = "none",
    tensorboard: str | os.PathLike | None = None,
) -> CurveLog:
    """Train V for ``steps`` minibatches, epoch by shuffled epoch, on the frames ``load_frames()`` returns
    (uint8, N x 64 x 64 x 3; only loaded when there is training left to do), on :class:`dreamlab.loop.TrainingLoop`:
    a curve row of the mean loss, reconstruction and KL every ``log_every`` steps. ``autocast="bf16"`` runs the
    forward pass and loss in bfloat16 mixed precision (:func:`dreamlab.runtime.autocast`)."""
    reference = next(vae.parameters())
    device, dtype = reference.device, reference.dtype
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    loop = TrainingLoop(
        checkpointer,
        {"model": vae, "optimizer": optimizer},
        steps=steps,
        eval_every=log_every,
        desc="V",
        checkpoint_seconds=checkpoint_seconds,
        check_modules={"model": vae},
        tensorboard=tensorboard,
        map_location=device,
        from_legacy=_same_layout,  # V's draws are seeded by the step alone
    )
    if loop.finished:
        vae.eval()
        return loop.curve
    frames = load_frames()
    if len(frames) < batch_size:
        raise UserError(
            f"V needs at least --vae_batch {batch_size} frames, got {len(frames)}; lower it or collect more rollouts"
        )
    per_epoch = len(frames) // batch_size
    monitor = GradientMonitor(vae) if monitor_grads else None

    @functools.lru_cache(maxsize=1)
    def epoch_order(epoch: int) -> torch.Tensor:
        return torch.randperm(len(frames), generator=torch.Generator().manual_seed(seed * 7919 + epoch))

    def batch_of(step: int) -> tuple[torch.Tensor, torch.Generator]:
        """The step's images and reparameterisation noise: a function of (seed, step) alone, so a resumed run
        draws what the original would have."""
        epoch, index = divmod(step, per_epoch)
        batch = epoch_order(epoch)[index * batch_size : (index + 1) * batch_size]
        images = frames_to_tensor(frames[batch].to(device), dtype)
        return images, torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)

    def loss_of(images: torch.Tensor, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with autocast_context(device, autocast):
            reconstruction, mu, logvar = vae(images, noise)
            return vae_loss(images, reconstruction, mu, logvar, kl_tolerance)

    def train_step(step: int) -> dict[str, float]:
        loss, reconstruction_loss, kl = loss_of(*batch_of(step))
        check_loss(loss, f"V loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if monitor is not None:
            monitor.check()
        optimizer.step()
        return {"loss": loss.item(), "reconstruction": reconstruction_loss.item(), "kl": kl.item()}

    vae.train()
    loop.run(train_step)
    # No loss of the loop sees the last update: the loop checks the weights it left finite, this their loss.
    with torch.no_grad():
        check_loss(loss_of(*batch_of(loop.step - 1))[0], f"V loss after step {loop.step}")
    vae.eval()
    return loop.curve


def _same_layout(saved: dict[str, Any]) -> dict[str, Any]:
    """V's and M's checkpoints from before the training loop: the loop's objects under the same names."""
    return saved


def latent_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / f"latent_{index:06d}.npz"


def latents_folder(data_dir: str | os.PathLike, vae: ConvVAE, rollouts: str | os.PathLike, create: bool = True) -> Path:
    """``data_dir/latents_<key>``: where ``vae``'s latents of the rollout folder ``rollouts`` live, keyed by V's
    weights and the rollouts' manifest, so latents are only ever read by the V (and data) that wrote them. The
    folder's manifest says what they were made from. Without ``create``, a missing folder is a :class:`UserError`
    (a reader of a finished run)."""
    made_from = {"vae": fingerprint(vae), "rollouts": read_manifest(rollouts)}
    if made_from["rollouts"] is None:
        raise ValueError(f"{rollouts} has no manifest: collect the rollouts with collect_rollouts first")
    folder = Path(data_dir) / f"latents_{fingerprint(made_from)}"
    saved = read_manifest(folder)
    if saved is None and not create:
        raise UserError(f"{folder} is missing: this V's latents were never written; run the pipeline to the end")
    if saved is None:
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder, made_from)
    elif saved != made_from:  # only a folder copied or renamed by hand gets here
        raise UserError(f"{folder} holds latents of another V or other rollouts; delete it to encode afresh")
    return folder


@torch.no_grad()
def encode_rollouts(
    vae: ConvVAE,
    rollout_paths: Sequence[str | os.PathLike],
    folder: str | os.PathLike,
    batch_size: int = 256,
    log: Log = print,
) -> list[Path]:
    """Write V's mu and logvar of every frame, with the actions and dones, to ``latent_NNNNNN.npz`` per rollout.

    Finished files are skipped (a damaged one is written again), so encoding resumes where it stopped.
    """
    reference = next(vae.parameters())
    vae.eval()
    paths = []
    started, encoded = time.monotonic(), 0
    for index, rollout in enumerate(rollout_paths):
        path = latent_path(folder, index)
        paths.append(path)
        if path.is_file() and is_latent_intact(path):
            continue
        data = load_rollout(rollout)
        frames = torch.from_numpy(data["frames"])
        mus, logvars = [], []
        for start in range(0, len(frames), batch_size):
            images = frames_to_tensor(frames[start : start + batch_size].to(reference.device), reference.dtype)
            mu, logvar = vae.encode(images)
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
        atomic_savez(
            path,
            mu=torch.cat(mus).numpy(),
            logvar=torch.cat(logvars).numpy(),
            actions=data["actions"],
            dones=data["dones"],
        )
        encoded += 1
        if encoded % 100 == 0:
            log(f"encoded {index + 1}/{len(rollout_paths)} rollouts ({encoded / (time.monotonic() - started):.1f}/s)")
    return paths


def latents_agree(old_folder: str | os.PathLike, paths: Sequence[str | os.PathLike], atol: float = 1e-3) -> bool:
    """Whether ``old_folder`` holds the latents ``paths`` hold for the first and last rollout (equal actions and
    dones; mu and logvar within ``atol``, which allows another device's rounding but not another V)."""
    for index in sorted({0, len(paths) - 1}):
        old = latent_path(old_folder, index)
        if not (old.is_file() and is_latent_intact(old)):
            return False
        before, now = load_npz(old, LATENT_KEYS), load_npz(paths[index], LATENT_KEYS)
        if any(before[k].shape != now[k].shape for k in LATENT_KEYS):
            return False
        same_steps = all(np.array_equal(before[k], now[k]) for k in ("actions", "dones"))
        if not (same_steps and all(np.allclose(before[k], now[k], rtol=0, atol=atol) for k in ("mu", "logvar"))):
            return False
    return True


def is_latent_intact(path: str | os.PathLike) -> bool:
    try:
        load_npz(path, LATENT_KEYS)
    except ValueError:
        return False
    return True


def load_latents(paths: Sequence[str | os.PathLike]) -> LatentEpisodes:
    """Every encoded rollout, concatenated for M's training and the dream's start frames."""
    arrays = [load_npz(p, LATENT_KEYS) for p in paths]
    return LatentEpisodes(
        [a["mu"] for a in arrays],
        [a["logvar"] for a in arrays],
        [a["actions"] for a in arrays],
        [a["dones"] for a in arrays],
    )


ChunkLoss = Callable[
    [tuple[np.ndarray, np.ndarray, np.ndarray], State, torch.Generator], tuple[torch.Tensor, State, dict]
]


def state_leaves(state: State) -> list[torch.Tensor]:
    """A core state's tensors in a fixed order (checkpoints hold plain lists, never the state's own classes)."""
    leaves: list[torch.Tensor] = []
    map_state(lambda t: leaves.append(t) or t, state)
    return leaves


def state_from_leaves(template: State, leaves: Sequence[Any]) -> State:
    """The state of ``template``'s structure holding ``leaves`` (the inverse of :func:`state_leaves`).

    ``leaves`` may also be nested lists and tuples in the state's own order, as checkpoints written before the flat
    list held the DNC state ((memory, ..., (h, c)) as tuples).
    """
    flat, expected = state_leaves(leaves), len(state_leaves(template))  # state_leaves flattens any nesting
    if len(flat) != expected:
        raise ValueError(f"a saved core state of {len(flat)} tensors does not fit a state of {expected}")
    remaining = iter(flat)
    return map_state(lambda t: next(remaining).to(t.device, t.dtype), template)


class CarriedState:
    """The core state truncated BPTT carries, detached, from chunk to chunk, as an object the training loop can
    checkpoint: a plain list of its tensors (:func:`state_leaves`), restored into the structure of ``state``."""

    def __init__(self, state: State):
        self.state = state

    def state_dict(self) -> list[torch.Tensor]:
        return state_leaves(self.state)

    def load_state_dict(self, leaves: Sequence[Any]) -> None:
        self.state = state_from_leaves(self.state, leaves)


def train_by_tbptt(
    model: MDNRNN,
    lengths: np.ndarray,
    chunk_loss: ChunkLoss,
    *,
    steps: int,
    batch_size: int,
    seq_len: int,
    lr: float,
    grad_clip: float,
    seed: int,
    checkpointer: Checkpointer,
    what: str = "M",
    evaluate: Callable[[int], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    checkpoint_seconds: float = 120.0,
    log_every: int = 50,
    monitor_grads: bool = False,
    tensorboard: str | os.PathLike | None = None,
) -> CurveLog:
    """Truncated BPTT over ``batch_size`` streams that play whole episodes (``lengths``) back to back in chunks of
    ``seq_len`` steps (:class:`EpisodeStreams`): the core state is carried, detached, across chunks and reset at
    episode starts. ``chunk_loss(indices, state, generator)`` builds one chunk from the streams' indices, runs the
    model from ``state`` and returns (loss, new state, numbers for the curve). Runs on
    :class:`dreamlab.loop.TrainingLoop`: a curve row (the mean numbers since the last row, and the epoch reached)
    every ``log_every`` steps and every ``eval_every`` steps, where ``evaluate(step)`` adds held-out metrics.
    Resumable exactly: the checkpoint holds weights, optimiser, data order, generator, the carried core state and
    the curve."""
    device = model.head.linear.weight.device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    streams = EpisodeStreams(lengths, batch_size, seq_len, seed)
    generator = torch.Generator().manual_seed(seed)
    carried = CarriedState(model.initial_state(batch_size))
    objects = {"model": model, "optimizer": optimizer, "streams": streams, "generator": generator}
    loop = TrainingLoop(
        checkpointer,
        {**objects, "core_state": carried},
        steps=steps,
        eval_every=math.gcd(log_every, eval_every) if evaluate is not None and eval_every > 0 else log_every,
        desc=what,
        checkpoint_seconds=checkpoint_seconds,
        check_modules={"model": model},
        tensorboard=tensorboard,
        map_location=device,
        from_legacy=_same_layout,  # its draws come from `generator` and `streams`, both in the old checkpoints
    )
    monitor = GradientMonitor(model) if monitor_grads else None

    def train_step(step: int) -> dict[str, float]:
        loss, state, numbers = chunk_loss(streams.next_indices(), carried.state, generator)
        details = ", ".join(f"{k} {v:.4f}" for k, v in numbers.items())
        check_loss(loss, f"{what} loss at step {step} ({details})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if monitor is not None:
            monitor.check()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        carried.state = detach_state(state)
        return numbers

    def row_extras(step: int) -> dict[str, float]:
        extras = {"epoch": round(streams.progress, 3)}
        if evaluate is not None and eval_every > 0 and (step % eval_every == 0 or step == steps):
            extras.update(evaluate(step))
            model.train()
        return extras

    if not loop.finished:
        model.train()
        loop.run(train_step, evaluate=row_extras)
    # No loss of the loop sees the last update: the loop checks the weights finite, this their loss.
    check_weights(model, chunk_loss, streams, carried.state, generator, f"{what} after step {loop.step}")
    model.eval()
    return loop.curve


def check_weights(
    model: MDNRNN, chunk_loss: ChunkLoss, streams: EpisodeStreams, state: State, generator: torch.Generator, what: str
) -> None:
    """M's weights are finite and its loss on the next chunk has not diverged (:func:`check_loss`). The streams
    and the generator are left as they were, so that a checked run saves what an unchecked one would."""
    check_finite_module(model, what)
    generator_copy = torch.Generator(device=generator.device)
    generator_copy.set_state(generator.get_state())
    with torch.no_grad():
        loss, _, values = chunk_loss(copy.deepcopy(streams).next_indices(), state, generator_copy)
    check_loss(loss, f"{what}: loss ({', '.join(f'{k} {v:.4g}' for k, v in values.items())})")


def train_mdnrnn(
    model: MDNRNN,
    data: LatentEpisodes,
    task: Task,
    *,
    steps: int,
    batch_size: int,
    seq_len: int,
    lr: float,
    grad_clip: float,
    done_pos_weight: float,
    seed: int,
    checkpointer: Checkpointer,
    checkpoint_seconds: float = 120.0,
    log_every: int = 50,
    monitor_grads: bool = False,
    autocast: str = "none",
    tensorboard: str | os.PathLike | None = None,
) -> CurveLog:
    """Train M on V's latents by truncated BPTT (:func:`train_by_tbptt`); z is re-drawn from the stored mu and
    logvar for every chunk. ``autocast="bf16"`` runs M's forward pass and loss in bfloat16 mixed precision; the
    carried core state stays in M's dtype, so a resumed run carries what the original did."""
    reference = model.head.linear.weight
    device, dtype = reference.device, reference.dtype

    def chunk_loss(indices, state, generator):
        chunk = make_chunk(data, *indices, generator)
        z, z_next = chunk.z.to(device, dtype), chunk.z_next.to(device, dtype)
        actions = task.action_features(chunk.actions.to(device), dtype)
        done_mask = torch.ones_like(chunk.z_mask) if model.predict_done else torch.zeros_like(chunk.z_mask)
        with autocast_context(device, autocast):
            output, state = model(z, actions, state, chunk.reset.to(device))
            loss, z_loss, done_loss = mdnrnn_loss(
                output, z_next, chunk.z_mask.to(device), chunk.done.to(device), done_mask.to(device), done_pos_weight
            )
        state = map_state(lambda t: t.to(dtype), state)
        return loss, state, {"loss": loss.item(), "z_nll": z_loss.item(), "done_bce": done_loss.item()}

    return train_by_tbptt(
        model,
        data.lengths,
        chunk_loss,
        steps=steps,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        grad_clip=grad_clip,
        seed=seed,
        checkpointer=checkpointer,
        checkpoint_seconds=checkpoint_seconds,
        log_every=log_every,
        monitor_grads=monitor_grads,
        tensorboard=tensorboard,
    )


class CheckedMeans(dict):
    """The CMA-ES mean played at each real check, by generation (a dict the training loop can checkpoint)."""

    def state_dict(self) -> dict[int, np.ndarray]:
        return dict(self)

    def load_state_dict(self, state: Mapping[int, np.ndarray]) -> None:
        self.clear()
        self.update(state)


@dataclass
class Evolution:
    """What a CMA-ES run of C leaves: its curve, and the mean it played at each real check, by generation."""

    curve: CurveLog
    checked_means: dict[int, np.ndarray]

    def best_checked(self) -> tuple[int, np.ndarray]:
        """The generation and mean whose real check scored highest (the thesis tests C at intervals this way)."""
        rows = [row for row in self.curve.rows if row["generation"] in self.checked_means]
        scored = [(row["real_mean"], row["generation"]) for row in rows]
        if not scored:
            raise ValueError("no real check kept its controller: run C with real checks (real_eval_episodes > 0)")
        _, generation = max(scored)
        return generation, self.checked_means[generation]


def evolve_controller(
    es: CMAES,
    fitness: Callable[[np.ndarray, int], np.ndarray],
    *,
    generations: int,
    checkpointer: Checkpointer,
    real_score: Callable[[np.ndarray, int], np.ndarray] | None = None,
    real_every: int = 10,
    tensorboard: str | os.PathLike | None = None,
    log: Log = print,
) -> Evolution:
    """Run CMA-ES for ``generations`` generations, maximising the mean of ``fitness(X, generation)`` (P, trials),
    on :class:`dreamlab.loop.TrainingLoop` with one curve row (population mean, best, worst score and sigma) and
    one checkpoint per generation.

    Every ``real_every`` generations (and at the last), ``real_score(mean, generation)`` plays the current mean in
    the real environment for the curve (``real_mean``, ``real_std``; ``log`` says it), and that mean is kept.
    """
    checked_means = CheckedMeans()
    loop = TrainingLoop(
        checkpointer,
        {"es": es, "checked_means": checked_means},
        steps=generations,
        eval_every=1,
        desc="C",
        checkpoint_every=1,
        step_key="generation",
        tensorboard=tensorboard,
        from_legacy=_c_before_the_loop,
    )

    def generation_step(generation: int) -> dict[str, float]:
        candidates = es.ask()
        returns = np.asarray(fitness(candidates, generation))
        if not np.isfinite(returns).all():
            raise NonFiniteError(f"C: a fitness of generation {generation + 1} is NaN or infinite; M is broken")
        scores = returns.mean(axis=1)
        es.tell(candidates, -scores)
        return {"mean_score": scores.mean(), "best_score": scores.max(), "worst_score": scores.min(), "sigma": es.sigma}

    def real_check(generation: int) -> dict[str, float]:
        if real_score is None or (generation % real_every and generation != generations):
            return {}
        mean = np.array(es.mean)
        real = np.asarray(real_score(mean, generation))
        checked_means[generation] = mean
        log(f"C generation {generation}: real {real.mean():.1f} +- {real.std():.1f} over {len(real)} episodes")
        return {"real_mean": float(real.mean()), "real_std": float(real.std())}

    if not loop.finished:
        loop.run(generation_step, evaluate=real_check)
    return Evolution(loop.curve, checked_means)


def _c_before_the_loop(saved: dict[str, Any]) -> dict[str, Any]:
    """C's checkpoints from before the training loop: no step (the strategy's generation is it), and before that
    no checked means."""
    return {**saved, "step": int(saved["es"]["generation"]), "checked_means": saved.get("checked_means", {})}
