"""The GPU check: every module's CPU-vs-device equivalence tests, then a short benchmark, in one result file.

    bash experiments/gpu_check.sh                                  # on a GPU machine: install, check, benchmark
    python experiments/gpu_check.py --device cuda --results_dir results
    python experiments/gpu_check.py --preset smoke --device cpu    # the same plumbing on a CPU (a test runs this)

It runs ``tests/test_devices.py`` against ``--device`` (V, M with both cores, the batched dream under CMA-ES
candidates, the DNC, DRAW, the GANs and RND, each compared with the CPU under the same random draws), then times
the workloads that decide a GPU's worth here: dream env-steps/s of a population x trials batch, a DNC forward +
backward step at the benchmark size, and V and M training steps/s, with float32 and bf16 autocast, and the peak
device memory. Writes ``<results_dir>/gpu/gpu_check_<device type>.json``. The fast preset takes a few minutes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dreamlab.config import RunConfig, parse_config, positive
from dreamlab.results import write_result
from dreamlab.runs import cli
from dreamlab.runtime import resolve_device, seed_everything, set_threads

TEST_FILE = Path(__file__).resolve().parents[1] / "tests" / "test_devices.py"


@dataclasses.dataclass
class GPUCheckConfig(RunConfig):
    """CPU-vs-device equivalence tests and a short throughput benchmark on one device."""

    device: str = "cuda"
    z_dim: int = 32
    hidden_size: int = 256
    population: int = 64
    trials: int = 16
    dream_steps: int = 200
    vae_batch: int = 100
    m_batch: int = 100
    m_seq_len: int = 100
    dnc_batch: int = 16
    dnc_steps: int = 50
    dnc_memory_slots: int = 256
    repeats: int = 10  # timed repetitions of each workload, after two warm-up ones

    def validate(self) -> None:
        super().validate()
        positive(self, "z_dim", "hidden_size", "population", "trials", "dream_steps", "vae_batch", "m_batch")
        positive(self, "m_seq_len", "dnc_batch", "dnc_steps", "dnc_memory_slots", "repeats")


PRESETS = {
    "smoke": {
        "hidden_size": 16,
        "population": 4,
        "trials": 2,
        "dream_steps": 5,
        "vae_batch": 4,
        "m_batch": 4,
        "m_seq_len": 8,
        "dnc_batch": 2,
        "dnc_steps": 4,
        "dnc_memory_slots": 16,
        "repeats": 1,
    },
    "fast": {},
    "paper": {"hidden_size": 512, "repeats": 30},
}


def run_device_tests(device: torch.device) -> dict:
    """Run tests/test_devices.py against ``device`` in a fresh interpreter; counts of passed/failed/skipped."""
    env = {**os.environ, "DREAMLAB_TEST_DEVICE": str(device)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", str(TEST_FILE)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else completed.stderr[-500:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", summary)}
    failures = re.findall(r"^FAILED (\S+)", completed.stdout, flags=re.MULTILINE)
    return {"summary": summary, "exit_code": completed.returncode, **counts, "failed_tests": failures}


def timed(work: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``work`` over ``repeats`` runs after two warm-ups, synchronising the device."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        work()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def benchmark(config: GPUCheckConfig, device: torch.device) -> dict:
    from dreamlab.dnc import DNC
    from dreamlab.worldmodels import MDNRNN, Dream, LinearController, get_task
    from dreamlab.worldmodels.mdnrnn import mdnrnn_loss
    from dreamlab.worldmodels.vae import ConvVAE, vae_loss

    task = get_task("doom")
    figures: dict[str, float] = {}

    model = MDNRNN(config.z_dim, task.action_feature_size, config.hidden_size).to(device)
    controller = LinearController(config.z_dim + model.core.controller_feature_size(False), task)
    # An untrained M would predict deaths at random: switch its done head off so every episode runs in full.
    with torch.no_grad():
        model.done_head.bias.fill_(-1e4)
    initial = torch.zeros(8, config.z_dim)
    dream = Dream(model, task, controller, initial, initial, max_steps=config.dream_steps)
    params = 0.1 * torch.randn(config.population, controller.n_params)
    seconds = timed(lambda: dream.returns(params, config.trials, seed=0), device, config.repeats)
    figures["dream_env_steps_per_second"] = config.population * config.trials * config.dream_steps / seconds

    dnc = DNC(8, 8, 256, config.dnc_memory_slots, 64, 4).to(device)
    x = torch.randn(config.dnc_batch, config.dnc_steps, 8, device=device)

    def dnc_step() -> None:
        dnc.zero_grad(set_to_none=True)
        y, _ = dnc(x)
        y.square().mean().backward()

    figures["dnc_ms_per_time_step"] = 1000 * timed(dnc_step, device, config.repeats) / config.dnc_steps

    vae = ConvVAE(config.z_dim).to(device)
    vae_optimizer = torch.optim.Adam(vae.parameters(), lr=1e-4)
    images = torch.rand(config.vae_batch, 3, 64, 64, device=device)
    m_optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    z = torch.randn(config.m_batch, config.m_seq_len, config.z_dim, device=device)
    actions = torch.zeros(config.m_batch, config.m_seq_len, task.action_feature_size, device=device)
    mask = torch.ones(config.m_batch, config.m_seq_len, dtype=torch.bool, device=device)

    for precision, bf16 in (("float32", False), ("bf16_autocast", True)):

        def vae_step(bf16: bool = bf16) -> None:
            with autocast(device, bf16):
                reconstruction, mu, logvar = vae(images)
                loss = vae_loss(images, reconstruction.float(), mu.float(), logvar.float())[0]
            vae_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            vae_optimizer.step()

        def m_step(bf16: bool = bf16) -> None:
            with autocast(device, bf16):
                output, _ = model(z, actions, model.initial_state(config.m_batch))
            output = type(output)(*(t.float() for t in output))
            loss = mdnrnn_loss(output, z, mask, torch.zeros_like(mask), mask)[0]
            m_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            m_optimizer.step()

        figures[f"vae_steps_per_second_{precision}"] = 1 / timed(vae_step, device, config.repeats)
        figures[f"m_steps_per_second_{precision}"] = 1 / timed(m_step, device, config.repeats)

    if device.type == "cuda":
        figures["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return figures


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(GPUCheckConfig, PRESETS, argv, description=__doc__)
    set_threads(config.threads)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    started = time.perf_counter()
    tests = run_device_tests(device)
    print(f"device tests on {device}: {tests['summary']}", flush=True)
    figures = benchmark(config, device)
    for key, value in figures.items():
        print(f"  {key}: {value:,.1f}")
    metrics = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tests": tests,
        **figures,
    }
    path = write_result(
        "gpu",
        config.name or f"gpu_check_{device.type}",
        experiment="gpu_check",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - started,
        results_dir=config.results_dir,
    )
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()
