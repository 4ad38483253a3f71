"""Forward + backward time per time step of the DNC, against PyPI `dnc` (pytorch-dnc) when it is installed.

    python experiments/dnc_benchmark.py                     # B=16, T=50, N=256, W=64, R=4, LSTM 128
    python experiments/dnc_benchmark.py --preset smoke      # seconds
    python experiments/dnc_benchmark.py --device cuda

Implementations are timed in interleaved rounds, so a change in machine load hits all of them alike. On the
CPU both wall-clock and process CPU time are reported: on a shared machine the CPU time is the steadier
number. Writes results/dnc/benchmark.json (or <name>.json).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from dreamlab.config import RunConfig, parse_config
from dreamlab.dnc import DNC
from dreamlab.results import write_result
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads


@dataclasses.dataclass
class DNCBenchmarkConfig(RunConfig):
    """Time one training step (forward + backward over a sequence) of DNC implementations."""

    batch_size: int = 16
    sequence_length: int = 50
    input_size: int = 8
    memory_slots: int = 256
    word_size: int = 64
    read_heads: int = 4
    hidden_size: int = 128
    sparse_links: int = 8  # also time the top-K sparse link variant with this K; 0 = skip it
    rounds: int = 7
    warmup: int = 1
    threads: int = 1
    compare_pytorch_dnc: bool = True


PRESETS = {
    "smoke": {"sequence_length": 5, "memory_slots": 32, "word_size": 16, "rounds": 2},
    "fast": {},
    "paper": {"rounds": 21, "warmup": 3},
}


def pytorch_dnc_step(config: DNCBenchmarkConfig, device: torch.device, dtype: torch.dtype) -> tuple[Callable, int]:
    """A forward+backward closure for pytorch-dnc's DNC of the same sizes, and its parameter count."""
    import dnc as pytorch_dnc  # imported here: optional, and it prints deprecation warnings at import

    gpu_id = (device.index or 0) if device.type == "cuda" else -1
    model = pytorch_dnc.DNC(
        input_size=config.input_size,
        hidden_size=config.hidden_size,
        rnn_type="lstm",
        num_layers=1,
        num_hidden_layers=1,  # its default stacks two LSTM layers per controller; ours has one
        nr_cells=config.memory_slots,
        cell_size=config.word_size,
        read_heads=config.read_heads,
        batch_first=True,
        gpu_id=gpu_id,
    ).to(dtype)
    x = torch.randn(config.batch_size, config.sequence_length, config.input_size, device=device, dtype=dtype)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        y, _ = model(x, (None, None, None), reset_experience=True, pass_through_memory=True)
        y.sum().backward()

    return step, sum(p.numel() for p in model.parameters())


def dreamlab_dnc_step(
    config: DNCBenchmarkConfig, device: torch.device, dtype: torch.dtype, sparse_links: int | None
) -> tuple[Callable, int]:
    model = DNC(
        config.input_size,
        config.input_size,
        config.hidden_size,
        config.memory_slots,
        config.word_size,
        config.read_heads,
        sparse_links=sparse_links,
    ).to(device, dtype)
    x = torch.randn(config.batch_size, config.sequence_length, config.input_size, device=device, dtype=dtype)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        y, _ = model(x)
        y.sum().backward()

    return step, sum(p.numel() for p in model.parameters())


def timed(step: Callable, device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict:
    config = parse_config(DNCBenchmarkConfig, PRESETS, argv, description=__doc__)
    set_threads(config.threads)
    start = time.perf_counter()
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)

    steps: dict[str, tuple[Callable, int]] = {"dreamlab": dreamlab_dnc_step(config, device, dtype, None)}
    if config.sparse_links:
        steps[f"dreamlab_sparse_k{config.sparse_links}"] = dreamlab_dnc_step(config, device, dtype, config.sparse_links)
    pytorch_dnc_status = "not requested"
    if config.compare_pytorch_dnc:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                steps["pytorch_dnc"] = pytorch_dnc_step(config, device, dtype)
                timed(steps["pytorch_dnc"][0], device)  # fails here, not mid-benchmark, if it is broken
            pytorch_dnc_status = f"dnc {importlib.metadata.version('dnc')} (pip install dnc --no-deps) works"
        except ImportError:
            steps.pop("pytorch_dnc", None)
            pytorch_dnc_status = "not installed (pip install dnc --no-deps)"
        except Exception as err:  # a third-party package failing on this torch: report why, keep our numbers
            steps.pop("pytorch_dnc", None)
            pytorch_dnc_status = f"installed but fails on torch {torch.__version__}: {type(err).__name__}: {err}"

    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(config.warmup):
            for step, _ in steps.values():
                step()
        for _ in range(config.rounds):
            for name, (step, _) in steps.items():
                samples[name].append(timed(step, device))

    per_step = 1000.0 / config.sequence_length
    metrics: dict[str, object] = {"pytorch_dnc": pytorch_dnc_status, "implementations": {}}
    for name, values in samples.items():
        metrics["implementations"][name] = {
            "parameters": steps[name][1],
            "wall_ms_per_step_median": statistics.median(v[0] for v in values) * per_step,
            "wall_ms_per_step_min": min(v[0] for v in values) * per_step,
            "cpu_ms_per_step_median": statistics.median(v[1] for v in values) * per_step,
            "cpu_ms_per_step_min": min(v[1] for v in values) * per_step,
        }
    if "pytorch_dnc" in samples:
        ours, theirs = metrics["implementations"]["dreamlab"], metrics["implementations"]["pytorch_dnc"]
        metrics["speedup_over_pytorch_dnc_cpu_time"] = theirs["cpu_ms_per_step_median"] / ours["cpu_ms_per_step_median"]
        metrics["speedup_over_pytorch_dnc_wall"] = theirs["wall_ms_per_step_median"] / ours["wall_ms_per_step_median"]
    metrics["load_average_1min_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    name = config.name or ("benchmark" if config.preset == "fast" else f"benchmark_{config.preset}")
    path = write_result(
        "dnc",
        name,
        experiment="dnc_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start,
        results_dir=config.results_dir,
    )
    shape = (
        f"B={config.batch_size} T={config.sequence_length} N={config.memory_slots} W={config.word_size} "
        f"R={config.read_heads} LSTM {config.hidden_size}, {torch.get_num_threads()} thread(s), {device}"
    )
    print(f"forward+backward per time step ({shape}):")
    for impl, row in metrics["implementations"].items():
        print(
            f"  {impl:24s} cpu {row['cpu_ms_per_step_median']:7.2f} ms  wall {row['wall_ms_per_step_median']:7.2f} ms"
            f"  ({row['parameters']} parameters)"
        )
    print(f"pytorch-dnc: {pytorch_dnc_status}")
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()
