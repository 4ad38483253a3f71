"""A trained World Models run in one call: ``WorldModel.load(run_dir)`` gives V, M and C with their config.

    world = WorldModel.load("runs/worldmodels/doom_lstm_fast")
    frames = world.reconstruct(real_frames)          # V: encode and decode
    score, dreamed = world.dream(seed=0)             # C acting inside M's dream, decoded by V (doom)
    episode = world.play(seed=0)                     # C in the real game: episode.frames, episode.episode_return

Loading checks what the pipeline checks when it resumes (:mod:`dreamlab.worldmodels.provenance`): V, M and C must
come from the config in run_dir/config.json, M from this V's latents and C from this M. Anything missing or of
another config is a one-line :class:`UserError` naming the file. A run written before checkpoints recorded their
inputs is refused: run its command once more and the pipeline adopts (and records) what verifies.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer, CheckpointError
from dreamlab.cmaes import CMAES
from dreamlab.parallel import WorkerPool
from dreamlab.results import CurveLog
from dreamlab.runs import UserError
from dreamlab.worldmodels.controller import LinearController, controller_input_size
from dreamlab.worldmodels.dream import Dream
from dreamlab.worldmodels.mdnrnn import MDNRNN
from dreamlab.worldmodels.pipeline import (
    FINAL_SEED_BASE,
    STAGE_INPUTS,
    WorldModelsConfig,
    build_m,
    dnc_options,
    round_file,
    round_inputs,
    round_m_inputs,
)
from dreamlab.worldmodels.plots import decode_frames
from dreamlab.worldmodels.provenance import StageCheckpointer, fingerprint
from dreamlab.worldmodels.real import EpisodeResult, agent_spec, evaluate_real
from dreamlab.worldmodels.tasks import Task, get_task
from dreamlab.worldmodels.training import Evolution, latent_path, latents_folder, load_latents
from dreamlab.worldmodels.vae import ConvVAE, frames_to_tensor


@dataclasses.dataclass
class WorldModel:
    """V, M and the tested controller C of a finished run, on one device, with the config they were trained with.

    ``params`` is the controller the run tested: the CMA-ES mean after the last generation, or the best-checked mean
    when ``config.final_controller`` is ``best_check`` (generation ``generation``).
    """

    config: WorldModelsConfig
    vae: ConvVAE
    model: MDNRNN
    controller: LinearController
    params: np.ndarray
    generation: int
    initial_mu: torch.Tensor  # where dreams start: V's posterior of every rollout's first frame
    initial_logvar: torch.Tensor

    @classmethod
    def load(cls, run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> WorldModel:
        """Load a finished run's V (from its data dir), M and C; :class:`UserError` when one is missing or is not
        what the run's config (and the stage before) made."""
        run_dir = Path(run_dir)
        config = _read_config(run_dir)
        data_dir = Path(config.data_dir) if config.data_dir else run_dir
        task = get_task(config.task)
        vae = ConvVAE(config.z_dim).to(device)
        vae.load_state_dict(
            _stage_state(Checkpointer(data_dir, config, "vae.pt", STAGE_INPUTS["vae.pt"]), device)["model"]
        )
        if not (data_dir / "rollouts").is_dir():
            raise UserError(f"{data_dir / 'rollouts'} is missing: the run's rollouts were moved or deleted")
        latent_dir = latents_folder(data_dir, vae, data_dir / "rollouts", create=False)
        latent_paths = [latent_path(latent_dir, i) for i in range(config.rollouts)]
        latents = load_latents(latent_paths)
        model = build_m(config).to(device)
        m_state = _stage_state(
            StageCheckpointer(run_dir, config, "mdnrnn.pt", STAGE_INPUTS["mdnrnn.pt"], latent_dir.name, "latents"),
            device,
        )
        model.load_state_dict(m_state["model"])
        model, controller_latents = _last_round_m(config, run_dir, vae, model, device)
        latents = load_latents(latent_paths + controller_latents) if controller_latents else latents
        input_size = controller_input_size(config.z_dim, model.core, config.include_cell, config.z_only)
        controller = LinearController(input_size, task)
        last = config.iterations
        c_checkpointer = StageCheckpointer(
            run_dir, config, round_file("cmaes.pt", last), round_inputs("cmaes.pt", last), fingerprint(model), "M"
        )
        c_state = _stage_state(c_checkpointer, device)
        generation, params = _tested_controller(config, controller, c_state)
        initial_mu, initial_logvar = latents.first_frames()
        return cls(config, vae.eval(), model.eval(), controller, params, generation, initial_mu, initial_logvar)

    @property
    def task(self) -> Task:
        return get_task(self.config.task)

    @property
    def max_steps(self) -> int:
        return self.config.max_steps or self.task.max_episode_steps

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """V's posterior means (N, z_dim) of uint8 frames (N, 64, 64, 3)."""
        reference = next(self.vae.parameters())
        images = frames_to_tensor(torch.as_tensor(np.asarray(frames)).to(reference.device), reference.dtype)
        return self.vae.encode(images)[0]

    def decode(self, z: torch.Tensor) -> np.ndarray:
        """uint8 frames (N, 64, 64, 3) that V decodes from z (N, z_dim)."""
        return decode_frames(self.vae, z)

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """V's reconstruction of uint8 frames: decode(encode(frames))."""
        return self.decode(self.encode(frames))

    def dream(self, seed: int = 0, max_steps: int | None = None) -> tuple[float, np.ndarray]:
        """One dream episode of C inside M at the run's temperature: its return and the frames V decodes from the
        dreamed z's (doom only: the dream needs M's done head to know when the agent dies)."""
        dream = self._dream(self.config.temperature, max_steps)
        returns, z = dream.returns(torch.as_tensor(self.params)[None], 1, seed=seed, record=True)
        return float(returns[0, 0]), self.decode(z)

    def dream_returns(self, episodes: int, temperature: float | None = None, seed: int = 0) -> np.ndarray:
        """C's returns in ``episodes`` dream episodes at ``temperature`` (the run's by default), one batch."""
        dream = self._dream(self.config.temperature if temperature is None else temperature, None)
        returns = dream.returns(torch.as_tensor(self.params)[None], episodes, seed=seed)
        return returns[0].double().cpu().numpy()

    def _dream(self, temperature: float, max_steps: int | None) -> Dream:
        if not self.model.predict_done:
            raise UserError(f"task {self.config.task} has no done head to dream with; play the real game instead")
        config = self.config
        return Dream(
            self.model,
            self.task,
            self.controller,
            self.initial_mu,
            self.initial_logvar,
            temperature,
            max_steps or self.max_steps,
            config.include_cell,
            config.done_pos_weight,
            config.z_only,
        )

    def play(self, seed: int = FINAL_SEED_BASE, max_steps: int | None = None) -> EpisodeResult:
        """One whole real episode of C, in this process, with its frames (the final test's first episode by
        default)."""
        config = self.config
        options = dnc_options(config)
        spec = agent_spec(
            config.task,
            self.vae,
            self.model,
            config.hidden_size,
            config.core,
            options,
            config.include_cell,
            config.z_only,
        )
        env_options = {"lean_render": config.lean_render} if config.task == "carracing" else {}
        with WorkerPool(0) as pool:
            (result,) = evaluate_real(
                spec, self.params, [seed], pool, max_steps or self.max_steps, True, env_options=env_options
            )
        return result


def _last_round_m(
    config: WorldModelsConfig, run_dir: Path, vae: ConvVAE, model: MDNRNN, device: str | torch.device
) -> tuple[MDNRNN, list[Path]]:
    """The M of the run's last round of iterative training (``model`` itself without --iterations), each round's
    checked against the M before it and its controller rollouts' latents; and those latents' files."""
    folders: list[Path] = []
    for round_index in range(1, config.iterations + 1):
        folders.append(latents_folder(run_dir, vae, run_dir / f"rollouts_round{round_index}", create=False))
        checkpointer = StageCheckpointer(
            run_dir,
            config,
            round_file("mdnrnn.pt", round_index),
            round_inputs("mdnrnn.pt", round_index),
            round_m_inputs(model, folders),
            "M and controller rollouts",
        )
        model = build_m(config).to(device)
        model.load_state_dict(_stage_state(checkpointer, device)["model"])
    paths = [latent_path(folder, i) for folder in folders for i in range(config.iteration_rollouts)]
    return model, paths


def _read_config(run_dir: Path) -> WorldModelsConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{path} is missing: {run_dir} is not a World Models run dir (pass the run's --run_dir)")
    saved: dict[str, Any] = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(WorldModelsConfig)}
    unknown = sorted(set(saved) - fields)
    if unknown:
        raise UserError(f"{path} is not a World Models config (unknown fields {', '.join(unknown)})")
    return WorldModelsConfig(**saved)  # fields added since the run keep their defaults, as on resume


def _stage_state(checkpointer: Checkpointer, device: str | torch.device) -> dict[str, Any]:
    """A stage's saved state, refused in one line when missing or made by another config or other inputs."""
    try:
        state = checkpointer.load(map_location=device)
    except CheckpointError as error:
        raise UserError(str(error)) from None
    if state is None:
        raise UserError(f"{checkpointer.path} is missing: the run has not trained this stage; run it to the end")
    return state


def _tested_controller(
    config: WorldModelsConfig, controller: LinearController, state: dict[str, Any]
) -> tuple[int, np.ndarray]:
    """The controller the run tests (as the pipeline picks it), from C's checkpoint."""
    c_seed = config.seed if config.c_seed < 0 else config.c_seed
    es = CMAES(np.zeros(controller.n_params), config.sigma0, popsize=config.population, seed=c_seed)
    es.load_state_dict(state["es"])
    if es.generation < config.generations:
        raise UserError(
            f"C has run {es.generation} of {config.generations} generations: run the pipeline to the end first"
        )
    if config.final_controller == "best_check":
        curve = CurveLog()
        curve.load_state_dict(state["curve"])
        return Evolution(curve, dict(state.get("checked_means", {}))).best_checked()
    return es.generation, np.asarray(es.mean)
