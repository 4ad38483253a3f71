"""The World Models study: random rollouts -> V -> encode -> M -> C (in the dream or the real env) -> evaluate.

A notebook runs it as ``run(make_config(WorldModelsConfig, PRESETS, "smoke", run_dir=..., results_dir=...))`` and
gets the result's metrics and paths; :class:`dreamlab.worldmodels.loading.WorldModel` loads the trained run.
``experiments/worldmodels.py`` is its command line.

With ``--iterations k`` the pipeline goes on with Ha & Schmidhuber's iterative training (section 5): k rounds of
"the tested C plays real episodes, M trains on them too, C evolves again in the new dream and is tested"
(:mod:`dreamlab.worldmodels.iterative`); the result reports the last round's test and every round's in ``rounds``.

Every stage checkpoints into the run dir (default runs/worldmodels/<name>); running the same config again after a
kill resumes where it stopped. Rollouts, V and the encoded latents go to ``data_dir`` (default: the run dir), so
runs that differ only in M or C -- an LSTM and a DNC core, say -- can share one data dir and train V once.
Results go to <results_dir>/worldmodels/<name>.json with figures, GIFs and curves.

Nothing on disk is reused on trust (:mod:`dreamlab.worldmodels.provenance`, which also says how folders written
before this was recorded are migrated): the rollout folder's manifest must match the run's task, seed,
repeat_probability and max_steps; latents live in a folder keyed by V's weights; M's and C's checkpoints record the
latents and the M they were computed from. A run holds a lock on its run dir for its life, and one on the data dir
while it collects rollouts, trains V and encodes: a second run on the same folder stops at once naming the pid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer
from dreamlab.cmaes import CMAES
from dreamlab.config import RunConfig, config_dict, in_range, non_negative, positive
from dreamlab.files import atomic_write_bytes, atomic_write_json
from dreamlab.parallel import WorkerPool
from dreamlab.progress import tensorboard_dir
from dreamlab.results import CurveLog, StageTimer, write_result
from dreamlab.runs import NonFiniteError, UserError, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads
from dreamlab.worldmodels.controller import LinearController, controller_input_size
from dreamlab.worldmodels.dream import Dream
from dreamlab.worldmodels.iterative import collect_controller_rollouts
from dreamlab.worldmodels.mdnrnn import MDNRNN
from dreamlab.worldmodels.plots import (
    decode_frames,
    save_controller_curve,
    save_episode_gif,
    save_prior_samples,
    save_reconstructions,
)
from dreamlab.worldmodels.provenance import StageCheckpointer, data_dir_lock, fingerprint
from dreamlab.worldmodels.real import AgentSpec, agent_spec, evaluate_real, real_population_returns
from dreamlab.worldmodels.rollouts import collect_rollouts, load_rollout
from dreamlab.worldmodels.sequences import LatentEpisodes
from dreamlab.worldmodels.tasks import get_task
from dreamlab.worldmodels.training import (
    Evolution,
    encode_rollouts,
    evolve_controller,
    latents_agree,
    latents_folder,
    load_frames,
    load_latents,
    train_mdnrnn,
    train_vae,
)
from dreamlab.worldmodels.vae import ConvVAE

SOLVED = {"doom": 750.0, "carracing": 900.0}
# Episode seed streams. C's fitness episodes start at c_seed * C_SEED_STRIDE; CMA-ES's real checks and the final
# test have streams of their own, so they never share an episode. Committed results were played with these seeds.
C_SEED_STRIDE = 100_003
CURVE_SEED_BASE, FINAL_SEED_BASE = 10_000_000, 20_000_000
CURVE_BLOCK = 1000  # seeds per real check: a check plays at most this many episodes
ITERATION_SEED_BASE, ITERATION_BLOCK = 30_000_000, 1_000_000  # round k's controller rollouts: block k


def episode_seeds(base: int, block: int, block_size: int, count: int) -> list[int]:
    """Seeds of ``count`` episodes of block ``block`` (a generation) of the stream at ``base``:
    ``base + block * block_size + i``. Blocks of ``block_size`` seeds do not overlap when ``count <= block_size``."""
    return [base + block * block_size + i for i in range(count)]


@dataclasses.dataclass
class WorldModelsConfig(RunConfig):
    """World Models on ViZDoom Take Cover (task doom) or CarRacing-v3 (task carracing)."""

    task: Literal["doom", "carracing"] = "doom"
    # Rollouts
    rollouts: int = 1000
    repeat_probability: float = 0.9  # random policy: keep the previous action with this probability
    max_steps: int = 0  # episode cap; 0 = the task's (2100 Doom, 1000 CarRacing)
    workers: int = 2  # worker processes for env episodes (0 = in this process)
    ray_address: str = ""  # e.g. auto or ray://head:10001 to run env episodes on a Ray cluster
    data_dir: str = ""  # rollouts, V and latents; "" = the run dir. Share it between runs that differ in M or C.
    autocast: Literal["none", "bf16"] = "none"  # bf16: V's and M's training steps in bfloat16 mixed precision
    # V
    z_dim: int = 64
    vae_rollouts: int = 300  # rollouts whose frames train V (held in memory as uint8)
    vae_steps: int = 3000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_tolerance: float = 0.5
    # M
    core: Literal["lstm", "dnc"] = "lstm"
    hidden_size: int = 256
    n_components: int = 5
    dnc_memory_slots: int = 16  # core dnc only
    dnc_word_size: int = 16
    dnc_read_heads: int = 4
    m_steps: int = 600
    m_batch: int = 64
    m_seq_len: int = 100
    m_lr: float = 1e-3
    grad_clip: float = 1.0
    done_pos_weight: float = 10.0
    # C
    train_in: Literal["dream", "real"] = "dream"
    include_cell: bool = False  # C also sees M's cell state c
    z_only: bool = False  # C sees z alone, not M's state (the paper's ablation: CarRacing 632 +- 251 vs 906 +- 21)
    temperature: float = 1.15
    population: int = 32
    trials: int = 8
    sigma0: float = 0.1
    c_seed: int = -1  # seed of CMA-ES and of the dream/real fitness episodes; -1 = seed. Repeats C alone on one M.
    # The run dir of a run whose trained M this one reuses, for C-only repeats (another --c_seed, --temperature,
    # --z_only): its mdnrnn.pt is copied in when this run has none yet, then verified like any checkpoint.
    m_from: str = ""
    generations: int = 60
    real_eval_every: int = 10
    real_eval_episodes: int = 16
    # The controller tested at the end: the CMA-ES mean after the last generation (last), or the mean whose real
    # check scored highest (best_check: the thesis tests C over 100 episodes at intervals). The final test's episode
    # seeds are disjoint from the checks', so a best_check score is not the selection's own score.
    final_controller: Literal["last", "best_check"] = "last"
    final_episodes: int = 100
    # Ha & Schmidhuber's iterative training (section 5; dreamlab.worldmodels.iterative): after the first C, each of
    # `iterations` rounds plays the last tested C in iteration_rollouts real episodes, trains M iteration_m_steps
    # more steps on the random rollouts and every round's controller rollouts, and evolves and tests C afresh.
    iterations: int = 0
    iteration_rollouts: int = 1000
    iteration_m_steps: int = 2400
    checkpoint_seconds: float = 120.0
    # Real-game speed (each measured in results/worldmodels/real_benchmark.json). A worker steps games_per_worker
    # games at once, with V, M and C batched over them; lean_render (CarRacing) skips drawing what observations
    # never show (the same observations). no_progress_steps > 0 ends a CarRacing *training* episode after that many
    # steps without a new road tile (a common CarRacing practice); real checks and the final test play whole ones.
    games_per_worker: int = 8
    lean_render: bool = True
    no_progress_steps: int = 0

    def validate(self) -> None:
        super().validate()
        positive(self, "rollouts", "vae_rollouts", "z_dim", "vae_steps", "vae_batch", "vae_lr", "hidden_size")
        positive(self, "n_components", "dnc_memory_slots", "dnc_word_size", "dnc_read_heads", "m_steps", "m_batch")
        positive(self, "m_seq_len", "m_lr", "grad_clip", "done_pos_weight", "temperature", "trials", "sigma0")
        positive(self, "generations", "real_eval_every", "final_episodes")
        non_negative(self, "max_steps", "workers", "kl_tolerance", "real_eval_episodes", "checkpoint_seconds")
        in_range(self, "repeat_probability", 0.0, 1.0)
        if self.repeat_probability == 1.0:
            raise UserError("--repeat_probability 1 would never change the first random action; use a value below 1")
        if self.population < 2:
            raise UserError(f"--population must be >= 2 (CMA-ES ranks its candidates), got {self.population}")
        if self.c_seed < -1:
            raise UserError(f"--c_seed must be -1 (= --seed) or >= 0, got {self.c_seed}")
        if self.vae_rollouts > self.rollouts:
            raise UserError(f"--vae_rollouts ({self.vae_rollouts}) cannot exceed --rollouts ({self.rollouts})")
        if self.train_in == "dream" and self.task != "doom":
            raise UserError("dream training needs a done head, which only the doom task has; pass --train_in real")
        if self.final_controller == "best_check" and self.real_eval_episodes < 1:
            raise UserError("--final_controller best_check needs real checks: set --real_eval_episodes >= 1")
        positive(self, "games_per_worker", "iteration_rollouts", "iteration_m_steps")
        non_negative(self, "iterations")
        if self.iterations and self.train_in != "dream":
            raise UserError("--iterations retrains M for the dream; with --train_in real, C already learns the game")
        non_negative(self, "no_progress_steps")
        if self.z_only and self.include_cell:
            raise UserError("--z_only hides M's state from C, cell included: drop --include_cell")
        if self.no_progress_steps > 0 and not (self.task == "carracing" and self.train_in == "real"):
            raise UserError("--no_progress_steps counts new road tiles: it needs --task carracing --train_in real")


# The fields each stage's result depends on. A stage's checkpoint is refused (naming the fields) when one of these
# differs on resume; every other field -- later stages' settings, budgets of this stage, new fields -- may change.
_ROLLOUT_INPUTS = ("task", "seed", "repeat_probability", "max_steps", "dtype")  # what rollout i is
# V trains on the first vae_rollouts rollouts (<= rollouts, checked), so collecting more keeps V; M trains on all.
_V_INPUTS = (*_ROLLOUT_INPUTS, "z_dim", "vae_rollouts", "vae_batch", "vae_lr", "kl_tolerance", "autocast")
_M_INPUTS = (
    *_V_INPUTS,
    "rollouts",
    "vae_steps",
    "core",
    "hidden_size",
    "n_components",
    "dnc_memory_slots",
    "dnc_word_size",
    "dnc_read_heads",
    "m_batch",
    "m_seq_len",
    "m_lr",
    "grad_clip",
    "done_pos_weight",
)
_C_INPUTS = (
    *_M_INPUTS,
    "m_steps",
    "train_in",
    "include_cell",
    "z_only",
    "temperature",
    "population",
    "trials",
    "sigma0",
    "c_seed",
    "no_progress_steps",
)
STAGE_INPUTS = {"vae.pt": _V_INPUTS, "mdnrnn.pt": _M_INPUTS, "cmaes.pt": _C_INPUTS, "evaluation.pt": _C_INPUTS}


def round_file(filename: str, round_index: int) -> str:
    """The checkpoint of stage ``filename`` in round ``round_index`` of iterative training (0: the first C)."""
    return filename if round_index == 0 else filename.replace(".pt", f"_round{round_index}.pt")


def round_inputs(filename: str, round_index: int) -> tuple[str, ...]:
    """The config fields a round's checkpoint depends on; what earlier rounds made is checked by fingerprints."""
    fields = STAGE_INPUTS[filename]
    return fields if round_index == 0 else (*_C_INPUTS, "iteration_rollouts", "iteration_m_steps")


def round_m_inputs(previous_m: MDNRNN, latent_folders: list[Path]) -> str:
    """What round k's M is trained from: round k-1's M and the latents of every round's controller rollouts (their
    folders are keyed by V and by the agent that played them, so the fingerprint covers the whole chain)."""
    return fingerprint(previous_m, *[folder.name for folder in latent_folders])


PRESETS = {
    "smoke": {
        "rollouts": 4,
        "max_steps": 100,
        "vae_rollouts": 4,
        "vae_steps": 6,
        "vae_batch": 8,
        "hidden_size": 16,
        "m_steps": 4,
        "m_batch": 2,
        "m_seq_len": 16,
        "population": 4,
        "trials": 2,
        "generations": 2,
        "real_eval_every": 1,
        "real_eval_episodes": 2,
        "final_episodes": 4,
    },
    "fast": {},
    # Doom's committed headline (results/worldmodels/doom_takecover_{lstm,dnc}_r10k*.json): Ha & Schmidhuber's 10,000
    # random rollouts, M over 2400 steps, C on [z, h, c] in the dream, tested as in the thesis (100-episode real
    # checks every 10 generations, the best check re-tested on fresh episodes). Choose --core; --data_dir shares the
    # rollouts and V between the cores' runs.
    "doom_r10k": {
        "rollouts": 10000,
        "m_steps": 2400,
        "include_cell": True,
        "real_eval_episodes": 100,
        "final_controller": "best_check",
    },
    # The MDN-LSTM's iterated headline (results/worldmodels/doom_takecover_lstm_r10k_iter2.json, 939.7): doom_r10k
    # with V on 1000 rollouts for 10,000 steps, M 4x as long (9600 steps: the dream no easier than the game), then
    # two rounds of iterative training (1000 real episodes of the tested C each, M 2400 steps more, C again).
    "doom_iterative": {
        "rollouts": 10000,
        "vae_rollouts": 1000,
        "vae_steps": 10000,
        "m_steps": 9600,
        "include_cell": True,
        "real_eval_episodes": 100,
        "final_controller": "best_check",
        "iterations": 2,
    },
    "paper": {
        "rollouts": 10000,
        "vae_rollouts": 1000,
        "vae_steps": 40000,
        "vae_batch": 100,
        "vae_lr": 1e-4,
        "hidden_size": 512,
        "m_steps": 20000,
        "m_batch": 100,
        "include_cell": True,
        "population": 64,
        "trials": 16,
        "generations": 300,
        "real_eval_every": 25,
        "real_eval_episodes": 100,
        "final_controller": "best_check",
    },
    # CarRacing after Ha & Schmidhuber: z 32, hidden 256, C on [z, h] evolved in the real game (population 64, 16
    # episodes each), with 2,000 random rollouts rather than 10,000 (V trains on 300, held in memory). Training
    # episodes end after 100 steps without a new road tile (a common CarRacing practice, not the paper's); the real
    # checks (100 episodes every 25 generations) and the final test, on disjoint seeds, play whole episodes.
    "carracing_paper": {
        "task": "carracing",
        "rollouts": 2000,
        "vae_rollouts": 300,
        "z_dim": 32,
        "vae_steps": 40000,
        "vae_batch": 100,
        "vae_lr": 1e-4,
        "hidden_size": 256,
        "m_steps": 20000,
        "m_batch": 100,
        "train_in": "real",
        "include_cell": False,
        "population": 64,
        "trials": 16,
        "generations": 300,
        "real_eval_every": 25,
        "real_eval_episodes": 100,
        "final_controller": "best_check",
        "no_progress_steps": 100,
    },
    # carracing_paper cut to ~2.3 h of a 2-core machine (--workers 2 --threads 2; results/worldmodels/
    # carracing_laptop_lstm.json, 422.6): 300 random rollouts, V for 5000 steps at batch 64 and lr 1e-3, M for 3000
    # steps at batch 64, C evolved in the real game with a population of 32 x 2 episodes for 40 generations (real
    # checks of 20 whole episodes every 10, the best re-tested on 100).
    "carracing_laptop": {
        "task": "carracing",
        "rollouts": 300,
        "vae_rollouts": 300,
        "z_dim": 32,
        "vae_steps": 5000,
        "vae_batch": 64,
        "hidden_size": 256,
        "m_steps": 3000,
        "m_batch": 64,
        "train_in": "real",
        "include_cell": False,
        "population": 32,
        "trials": 2,
        "generations": 40,
        "real_eval_every": 10,
        "real_eval_episodes": 20,
        "final_controller": "best_check",
        "no_progress_steps": 100,
    },
}


def default_name(config: WorldModelsConfig) -> str:
    """The result name: --name, else <task>_<core>_<preset>."""
    return config.name or f"{config.task}_{config.core}_{config.preset}"


def run_paths(config: WorldModelsConfig) -> tuple[str, Path, Path]:
    """The run's name, run dir and figures dir (<results_dir>/worldmodels)."""
    name = default_name(config)
    return name, Path(config.run_dir or f"runs/worldmodels/{name}"), Path(config.results_dir) / "worldmodels"


def run(config: WorldModelsConfig) -> dict:
    """Run (or resume) every stage in the locked run dir; returns the result's metrics with ``result`` (the result
    file), ``run_dir``, ``data_dir`` and ``figures`` (the prefix of the figures, GIFs and curves)."""
    name, run_dir, out_dir = run_paths(config)
    with run_directory(run_dir, out_dir):
        return _run(config, name, run_dir, out_dir)


def dnc_options(config: WorldModelsConfig) -> dict[str, int]:
    """M's core options: the DNC's memory sizes (none for the LSTM)."""
    if config.core != "dnc":
        return {}
    return {
        "memory_slots": config.dnc_memory_slots,
        "word_size": config.dnc_word_size,
        "read_heads": config.dnc_read_heads,
    }


def build_m(config: WorldModelsConfig) -> MDNRNN:
    """M as the config describes it (untrained); only doom's M predicts the agent's death."""
    task = get_task(config.task)
    return MDNRNN(
        config.z_dim,
        task.action_feature_size,
        config.hidden_size,
        config.n_components,
        config.core,
        predict_done=config.task == "doom",
        core_options=dnc_options(config),
    )


class _StageLog:
    """Time-stamped log lines and per-stage wall seconds that survive a kill: every line saves the times to
    ``path``, including the running stage's share so far."""

    def __init__(self, path: Path):
        self.timer, self.path = StageTimer(), path
        if path.is_file():
            self.timer.load_state_dict(json.loads(path.read_text()))
        self._current: tuple[str, float] | None = None

    def __call__(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
        self.save()

    def save(self) -> None:
        seconds = dict(self.timer.seconds)
        if self._current is not None:
            stage, start = self._current
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
        atomic_write_json(self.path, seconds)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the stage; say it is done only when it ended without an error."""
        self._current = (name, time.perf_counter())
        try:
            with self.timer.stage(name):
                yield
        finally:
            self._current = None
        self(f"stage {name} done")


def reuse_m(source_run: Path, run_dir: Path, log: Callable[[str], None]) -> None:
    """Copy source_run's M checkpoint into run_dir, unless run_dir has its own (then this is a resume)."""
    target = run_dir / "mdnrnn.pt"
    if target.exists() or source_run.resolve() == run_dir.resolve():
        return
    atomic_write_bytes(target, (source_run / "mdnrnn.pt").read_bytes())
    log(f"M: reusing {source_run / 'mdnrnn.pt'} (verified next against this run's config and latents)")


def _run(config: WorldModelsConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    """The pipeline, in a locked run dir: every stage resumes from its checkpoint or reloads its result."""
    data_dir = Path(config.data_dir) if config.data_dir else run_dir
    set_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    task = get_task(config.task)
    max_steps = config.max_steps or task.max_episode_steps
    if config.m_from and not (run_dir / "mdnrnn.pt").exists() and not (Path(config.m_from) / "mdnrnn.pt").is_file():
        raise UserError(f"--m_from {config.m_from}: it holds no mdnrnn.pt (train that run's M first)")
    atomic_write_json(run_dir / "config.json", config_dict(config))

    log = _StageLog(run_dir / "stage_seconds.json")
    tensorboard = tensorboard_dir(config, run_dir)  # V's, M's and C's curves live, with --tensorboard
    stage = log.stage

    with WorkerPool(config.workers, config.ray_address or None) as pool, contextlib.ExitStack() as data_stages:
        data_stages.enter_context(data_dir_lock(data_dir))
        with stage("collect"):
            paths = collect_rollouts(
                config.task,
                data_dir / "rollouts",
                config.rollouts,
                config.seed,
                pool,
                config.repeat_probability,
                max_steps,
                log=log,
            )

        with stage("V"):
            vae = ConvVAE(config.z_dim).to(device, dtype)
            vae_curve = train_vae(
                vae,
                lambda: load_frames(paths[: config.vae_rollouts]),
                steps=config.vae_steps,
                batch_size=config.vae_batch,
                lr=config.vae_lr,
                kl_tolerance=config.kl_tolerance,
                seed=config.seed,
                checkpointer=Checkpointer(data_dir, config, filename="vae.pt", depends_on=STAGE_INPUTS["vae.pt"]),
                checkpoint_seconds=config.checkpoint_seconds,
                log_every=max(1, min(100, config.vae_steps // 10)),
                monitor_grads=config.log_grads,
                autocast=config.autocast,
                tensorboard=tensorboard,
            )
            sample_frames = load_rollout(paths[0])["frames"]
            sample_frames = sample_frames[np.linspace(0, len(sample_frames) - 1, 8).astype(int)]
            save_reconstructions(vae, sample_frames, out_dir / f"{name}_vae_reconstructions.png")
            save_prior_samples(vae, 8, config.seed, out_dir / f"{name}_vae_samples.png")

        with stage("encode"):
            # One folder per V's weights: latents of another V are never read, whatever happened to vae.pt.
            latent_dir = latents_folder(data_dir, vae, data_dir / "rollouts")
            latent_paths = encode_rollouts(vae, paths, latent_dir, log=log)
            data = load_latents(latent_paths)
            random_lengths = data.lengths
            old_latents = data_dir / f"latents_vae{config.vae_steps}"
            if old_latents.is_dir():
                log(f"{old_latents} is no longer read (latents are keyed by V's weights); delete it once M is trained")
        data_stages.close()  # the data is ready: another run sharing the data dir may now prepare its own

        if config.m_from:
            reuse_m(Path(config.m_from), run_dir, log)
        # M records the latents it trains on: a checkpoint of a run whose latents differ is refused. One written
        # before checkpoints recorded inputs is adopted when the latents of that time equal this V's.
        m_checkpointer = StageCheckpointer(
            run_dir,
            config,
            "mdnrnn.pt",
            STAGE_INPUTS["mdnrnn.pt"],
            inputs=latent_dir.name,
            what="latents",
            adopt_legacy=lambda: latents_agree(old_latents, latent_paths),
        )
        with stage("M"):
            model = build_m(config).to(device, dtype)
            m_curve = train_mdnrnn(
                model,
                data,
                task,
                steps=config.m_steps,
                batch_size=config.m_batch,
                seq_len=config.m_seq_len,
                lr=config.m_lr,
                grad_clip=config.grad_clip,
                done_pos_weight=config.done_pos_weight,
                seed=config.seed,
                checkpointer=m_checkpointer,
                checkpoint_seconds=config.checkpoint_seconds,
                log_every=max(1, min(50, config.m_steps // 10)),
                monitor_grads=config.log_grads,
                autocast=config.autocast,
                tensorboard=tensorboard,
            )

        context = _Context(config, run_dir, pool, log, tensorboard, max_steps)
        rounds = [_controller_round(context, vae, model, data, 0, lambda: m_checkpointer.adopted_legacy)]
        m_curves, controller_latents = [m_curve], []
        for round_index in range(1, config.iterations + 1):
            model, data, m_curve = _iterate_m(context, vae, rounds[-1], latent_paths, controller_latents, round_index)
            m_curves.append(m_curve)
            rounds.append(_controller_round(context, vae, model, data, round_index))
            rounds[-1].controller_rollouts = data.lengths[-config.iteration_rollouts :]

    last = rounds[-1]
    curves = {"c": last.evolution.curve, "v": vae_curve, "m": m_curves[-1]}
    metrics = _metrics(config, last.test["returns"], random_lengths, last, curves)
    if config.iterations:
        metrics["rounds"] = [_round_metrics(r, m) for r, m in zip(rounds, m_curves, strict=True)]
    result = _write_outputs(config, name, out_dir, log, last.test, metrics, curves, vae, last.dream, last.params)
    paths = {"run_dir": str(run_dir), "data_dir": str(data_dir), "figures": str(out_dir / name)}
    return {"result": str(result), **paths, **metrics}


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every stage after the data's needs: the config, where to write, the workers, the log, the cap."""

    config: WorldModelsConfig
    run_dir: Path
    pool: WorkerPool
    log: _StageLog
    tensorboard: str | None
    max_steps: int

    @property
    def env_options(self) -> dict:
        """How workers play real games (speed only); real checks and the final test never end an episode early."""
        return {"lean_render": self.config.lean_render} if self.config.task == "carracing" else {}


@dataclasses.dataclass
class _Round:
    """One round's C: the agent it plays in, its dream, CMA-ES and its curve, the tested controller and its test."""

    model: MDNRNN
    agent: AgentSpec
    controller: LinearController
    dream: Dream | None
    es: CMAES
    evolution: Evolution
    generation: int
    params: np.ndarray
    test: dict
    controller_rollouts: np.ndarray | None = None  # lengths of the controller rollouts this round added to M's data


def _controller_round(
    context: _Context,
    vae: ConvVAE,
    model: MDNRNN,
    data: LatentEpisodes,
    round_index: int,
    adopt_legacy: Callable[[], bool] = lambda: False,
) -> _Round:
    """Evolve C with M (in its dream, or in the real game), choose the controller to test, test it."""
    config, pool, log = context.config, context.pool, context.log
    task, env_options = get_task(config.task), context.env_options
    agent = agent_spec(
        config.task,
        vae,
        model,
        config.hidden_size,
        config.core,
        dnc_options(config),
        config.include_cell,
        config.z_only,
    )
    input_size = controller_input_size(config.z_dim, model.core, config.include_cell, config.z_only)
    controller = LinearController(input_size, task)
    initial_mu, initial_logvar = data.first_frames()
    dream = (
        Dream(
            model,
            task,
            controller,
            initial_mu,
            initial_logvar,
            config.temperature,
            context.max_steps,
            config.include_cell,
            config.done_pos_weight,
            config.z_only,
        )
        if config.task == "doom"
        else None
    )
    c_seed = config.seed if config.c_seed < 0 else config.c_seed

    def dream_fitness(candidates: np.ndarray, generation: int) -> np.ndarray:
        params = torch.as_tensor(candidates)
        seed = episode_seeds(c_seed * C_SEED_STRIDE, generation, 1, 1)[0]
        return dream.returns(params, config.trials, seed=seed).cpu().numpy()

    def real_fitness(candidates: np.ndarray, generation: int) -> np.ndarray:
        seeds = episode_seeds(c_seed * C_SEED_STRIDE, generation, config.trials, config.trials)
        games, stall = config.games_per_worker, config.no_progress_steps
        return real_population_returns(agent, candidates, seeds, pool, context.max_steps, games, stall, env_options)

    def real_score(mean: np.ndarray, generation: int) -> np.ndarray:
        seeds = episode_seeds(CURVE_SEED_BASE, generation, CURVE_BLOCK, config.real_eval_episodes)
        results = evaluate_real(
            agent, mean, seeds, pool, context.max_steps, False, config.games_per_worker, env_options
        )
        return np.asarray([r.episode_return for r in results])

    suffix = f" round {round_index}" if round_index else ""
    with context.log.stage(f"C{suffix}"):
        es = CMAES(np.zeros(controller.n_params), config.sigma0, popsize=config.population, seed=c_seed)
        log(
            f"C{suffix}: {controller.n_params} parameters, population {config.population} x {config.trials} trials "
            f"in the {config.train_in}"
        )
        evolution = evolve_controller(
            es,
            dream_fitness if config.train_in == "dream" else real_fitness,
            generations=config.generations,
            checkpointer=StageCheckpointer(
                context.run_dir,
                config,
                round_file("cmaes.pt", round_index),
                round_inputs("cmaes.pt", round_index),
                inputs=fingerprint(model),
                what="M",
                adopt_legacy=adopt_legacy,
            ),
            real_score=real_score if config.real_eval_episodes > 0 else None,
            real_every=config.real_eval_every,
            tensorboard=context.tensorboard,
            log=log,
        )
        if config.final_controller == "best_check":
            final_generation, final_params = evolution.best_checked()
        else:
            final_generation, final_params = es.generation, np.asarray(es.mean)
        if not np.isfinite(final_params).all():
            raise NonFiniteError(f"C's controller of generation {final_generation} is NaN or infinite")

    with context.log.stage(f"evaluate{suffix}"):
        evaluation = Checkpointer(
            context.run_dir,
            config,
            filename=round_file("evaluation.pt", round_index),
            depends_on=round_inputs("evaluation.pt", round_index),
        )
        # The agent's fingerprint: a re-trained V, M or C is tested again.
        tested = fingerprint(vae, model, final_params)
        test = _final_test(config, evaluation, agent, (final_params, final_generation, tested), pool, env_options)
    return _Round(model, agent, controller, dream, es, evolution, final_generation, final_params, test)


def _iterate_m(
    context: _Context,
    vae: ConvVAE,
    previous: _Round,
    random_latents: list[Path],
    controller_latents: list[Path],
    round_index: int,
) -> tuple[MDNRNN, LatentEpisodes, CurveLog]:
    """Round ``round_index`` of iterative training up to M: the previous round's tested C plays whole real
    episodes (recorded as rollouts in the run dir), V encodes them, and a copy of the previous M trains on the
    random rollouts and every round's controller rollouts. ``controller_latents`` gains this round's files."""
    config, run_dir, log = context.config, context.run_dir, context.log
    folder = run_dir / f"rollouts_round{round_index}"
    seeds = episode_seeds(ITERATION_SEED_BASE, round_index, ITERATION_BLOCK, config.iteration_rollouts)
    made_from = {"round": round_index, "agent": previous.test["agent"]}
    with log.stage(f"collect round {round_index}"):
        rollouts = collect_controller_rollouts(
            previous.agent,
            previous.params,
            folder,
            seeds,
            context.pool,
            context.max_steps,
            made_from,
            config.games_per_worker,
            context.env_options,
            log,
            lambda rollouts: latents_folder(run_dir, vae, rollouts),
        )
    # Collection wrote each episode's latents; V encodes only rollouts that came without (an older run's).
    with log.stage(f"encode round {round_index}"):
        controller_latents += encode_rollouts(vae, rollouts, latents_folder(run_dir, vae, folder), log=log)
    data = load_latents(random_latents + controller_latents)
    latent_folders = list(dict.fromkeys(path.parent for path in controller_latents))  # in round order
    previous_m = previous.model
    model = build_m(config).to(previous_m.head.linear.weight.device, previous_m.head.linear.weight.dtype)
    model.load_state_dict(previous_m.state_dict())
    checkpointer = StageCheckpointer(
        run_dir,
        config,
        round_file("mdnrnn.pt", round_index),
        round_inputs("mdnrnn.pt", round_index),
        inputs=round_m_inputs(previous_m, latent_folders),
        what="M and controller rollouts",
    )
    with log.stage(f"M round {round_index}"):
        curve = train_mdnrnn(
            model,
            data,
            get_task(config.task),
            steps=config.iteration_m_steps,
            batch_size=config.m_batch,
            seq_len=config.m_seq_len,
            lr=config.m_lr,
            grad_clip=config.grad_clip,
            done_pos_weight=config.done_pos_weight,
            seed=config.seed + round_index,
            checkpointer=checkpointer,
            checkpoint_seconds=config.checkpoint_seconds,
            log_every=max(1, min(50, config.iteration_m_steps // 10)),
            monitor_grads=config.log_grads,
            autocast=config.autocast,
            tensorboard=context.tensorboard,
        )
    return model, data, curve


def _final_test(
    config: WorldModelsConfig,
    evaluation: Checkpointer,
    agent: AgentSpec,
    controller: tuple[np.ndarray, int, str],
    pool: WorkerPool,
    env_options: dict,
) -> dict:
    """The tested ``controller`` (parameters, generation, the agent's fingerprint) plays ``config.final_episodes``
    full real episodes on the final test's own seeds, disjoint from every seed of training and selection; they are
    kept in ``evaluation`` and played again only when the agent changed. Returns the returns, steps, the first
    episode's frames, the generation and the fingerprint."""
    final_params, final_generation, tested = controller
    saved = evaluation.load()
    stale = saved is None or len(saved["returns"]) != config.final_episodes
    if stale or saved["generation"] != final_generation or saved.get("agent") != tested:
        max_steps = config.max_steps or get_task(config.task).max_episode_steps
        seeds = episode_seeds(FINAL_SEED_BASE, 0, 0, config.final_episodes)
        results = evaluate_real(agent, final_params, seeds, pool, max_steps, True, config.games_per_worker, env_options)
        saved = {
            "returns": np.asarray([r.episode_return for r in results]),
            "steps": np.asarray([r.steps for r in results]),
            "frames": results[0].frames,
            "generation": final_generation,
            "agent": tested,
        }
        evaluation.save(saved)
    return saved


def _metrics(
    config: WorldModelsConfig,
    returns: np.ndarray,
    rollout_lengths: np.ndarray,
    tested: _Round,
    curves: dict[str, CurveLog],
) -> dict:
    """The result's metrics: the final test's returns, how C was trained and chosen, the random rollouts, V's and
    M's last losses (of the last round's M with --iterations)."""
    last_c, last_v, last_m = (curves[k].rows[-1] if curves[k].rows else {} for k in ("c", "v", "m"))
    return {
        "real_mean": float(returns.mean()),
        "real_std": float(returns.std()),
        "real_episode_returns": [float(r) for r in returns],
        "episodes": len(returns),
        "trained_in": config.train_in,
        "solved_threshold": SOLVED.get(config.task),
        "solved": bool(returns.mean() >= SOLVED.get(config.task, float("inf"))),
        "generations": tested.es.generation,
        "final_controller": config.final_controller,
        "final_controller_generation": tested.generation,
        "controller_params": tested.controller.n_params,
        "final_population_mean_score": last_c.get("mean_score"),
        "random_rollouts": len(rollout_lengths),
        "random_rollout_steps": int(rollout_lengths.sum()),
        "random_rollout_mean_return": float(rollout_lengths.mean()) if config.task == "doom" else None,
        "vae_final_loss": last_v.get("loss"),
        "m_final_z_nll": last_m.get("z_nll"),
        "m_final_done_bce": last_m.get("done_bce"),
    }


def _round_metrics(tested: _Round, m_curve: CurveLog) -> dict:
    """One round of iterative training in the result: the controller rollouts M gained, M's last losses, the
    controller chosen and its test (every round is tested on the final test's episodes, none is chosen by them)."""
    lengths = tested.controller_rollouts
    last_m = m_curve.rows[-1] if m_curve.rows else {}
    returns = tested.test["returns"]
    return {
        "controller_rollouts": 0 if lengths is None else len(lengths),
        "controller_rollout_steps": 0 if lengths is None else int(lengths.sum()),
        "m_final_z_nll": last_m.get("z_nll"),
        "m_final_done_bce": last_m.get("done_bce"),
        "final_controller_generation": tested.generation,
        "real_mean": float(returns.mean()),
        "real_std": float(returns.std()),
    }


def _write_outputs(
    config: WorldModelsConfig,
    name: str,
    out_dir: Path,
    log: _StageLog,
    tested: dict,
    metrics: dict,
    curves: dict[str, CurveLog],
    vae: ConvVAE,
    dream: Dream | None,
    final_params: np.ndarray,
) -> Path:
    """GIFs of the final test's first episode (and of a dream), the curves as CSV and figure, the result file."""
    save_episode_gif(tested["frames"], out_dir / f"{name}_real_episode.gif")
    if dream is not None:
        _, dream_z = dream.returns(torch.as_tensor(final_params)[None], 1, seed=config.seed + 1, record=True)
        save_episode_gif(decode_frames(vae, dream_z), out_dir / f"{name}_dream_episode.gif")
    for key, suffix in (("c", "curve"), ("v", "vae_curve"), ("m", "m_curve")):
        curves[key].to_csv(out_dir / f"{name}_{suffix}.csv")
    save_controller_curve(curves["c"], out_dir / f"{name}_curve.png", config.train_in, SOLVED.get(config.task))
    result = write_result(
        "worldmodels",
        name,
        experiment="worldmodels",
        config=config,
        metrics=metrics,
        wall_seconds=log.timer.total,
        stages=log.timer.seconds,
        results_dir=config.results_dir,
    )
    log.save()
    print(
        f"{config.task}: real score {metrics['real_mean']:.1f} +- {metrics['real_std']:.1f} over "
        f"{metrics['episodes']} episodes (C trained in the {config.train_in}; the mean of generation "
        f"{metrics['final_controller_generation']} of {metrics['generations']})"
    )
    print(f"result: {result}\nfigures, GIFs and curves: {out_dir}/{name}_*")
    return result
