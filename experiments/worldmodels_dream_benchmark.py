"""Dream throughput: a CMA-ES population's dream episodes batched as one tensor computation, against the same
candidates evaluated one at a time (each with its trials batched).

    python experiments/worldmodels_dream_benchmark.py --preset fast

M is untrained unless ``--mdnrnn_checkpoint`` names a trained one (runs/worldmodels/<name>/mdnrnn.pt). An
untrained M's done head is switched off, so every episode runs to ``--max_steps`` with the whole population in
the batch: the throughput of a full batch, against one candidate's 16 trials at a time. With a trained M,
episodes end where it predicts deaths. Writes <results_dir>/worldmodels/dream_benchmark.json: under the git-ignored
runs/results by default; ``--results_dir results`` replaces the committed result (refused for ``--preset smoke``,
whose tiny sizes measure nothing).
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from dreamlab.checkpoint import load_checkpoint
from dreamlab.config import RunConfig, parse_config
from dreamlab.results import write_result
from dreamlab.runs import cli
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads
from dreamlab.worldmodels import MDNRNN, Dream, LinearController, get_task


@dataclasses.dataclass
class DreamBenchmarkConfig(RunConfig):
    """Dream env-steps per second, batched population against one candidate at a time."""

    z_dim: int = 64
    hidden_size: int = 256
    population: int = 64
    trials: int = 16
    max_steps: int = 500
    temperature: float = 1.15
    mdnrnn_checkpoint: str = ""
    done_pos_weight: float = 10.0  # the weight the checkpoint's done head was trained with


PRESETS = {
    "smoke": {"population": 4, "trials": 2, "hidden_size": 32, "max_steps": 20},
    "fast": {},
    "paper": {"hidden_size": 512},
}


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(DreamBenchmarkConfig, PRESETS, argv, description=__doc__)
    set_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    task = get_task("doom")
    model = MDNRNN(config.z_dim, task.action_feature_size, config.hidden_size)
    if config.mdnrnn_checkpoint:
        model.load_state_dict(load_checkpoint(config.mdnrnn_checkpoint)["state"]["model"])
    else:
        with torch.no_grad():
            model.done_head.weight.zero_()
            model.done_head.bias.fill_(-1e4)  # probability of death 0: nobody dies
    model = model.to(device, dtype).eval()
    controller = LinearController(config.z_dim + config.hidden_size, task)
    generator = torch.Generator().manual_seed(config.seed)
    start_mu, start_logvar = torch.randn(100, config.z_dim, generator=generator), torch.full((100, config.z_dim), -2.0)
    done_pos_weight = config.done_pos_weight if config.mdnrnn_checkpoint else 1.0
    dream = Dream(
        model, task, controller, start_mu, start_logvar, config.temperature, config.max_steps, False, done_pos_weight
    )
    params = 0.1 * torch.randn(config.population, controller.n_params, generator=generator)

    dream.returns(params[:2], 2, seed=0)  # warm-up (allocations, kernel selection)
    started = time.perf_counter()
    batched = dream.returns(params, config.trials, seed=1)
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    alone = torch.cat([dream.returns(params[i : i + 1], config.trials, seed=1) for i in range(config.population)])
    alone_seconds = time.perf_counter() - started
    steps = float(batched.sum())
    metrics = {
        "dream_env_steps": steps,
        "mean_episode_steps": steps / batched.numel(),
        "batched_seconds": batched_seconds,
        "one_at_a_time_seconds": alone_seconds,
        "batched_steps_per_second": steps / batched_seconds,
        "one_at_a_time_steps_per_second": steps / alone_seconds,
        "speedup": alone_seconds / batched_seconds,
        "same_returns": bool(torch.equal(batched, alone)),
        "load_average_1min": os.getloadavg()[0],
    }
    result = write_result(
        "worldmodels",
        config.name or "dream_benchmark",
        experiment="worldmodels_dream_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=batched_seconds + alone_seconds,
        results_dir=config.results_dir,
    )
    print(
        f"population {config.population} x {config.trials} trials, {steps:.0f} dream steps: batched "
        f"{metrics['batched_steps_per_second']:.0f} steps/s, one candidate at a time "
        f"{metrics['one_at_a_time_steps_per_second']:.0f} steps/s ({metrics['speedup']:.1f}x); result {result}"
    )
    return metrics


if __name__ == "__main__":
    main()
