"""Forward + backward time per time step of the DNC, against PyPI `dnc` (pytorch-dnc) when it is installed.

    python experiments/dnc_benchmark.py --results_dir results   # B=16, T=50, N=256, W=64, R=4, LSTM 256
    python experiments/dnc_benchmark.py --preset smoke          # seconds
    python experiments/dnc_benchmark.py --device cuda

Implementations, each a full training step (zero grads, forward over the sequence, backward) on the same shapes and
dtype: `dreamlab` (the default DNC: on a CPU each step is one autograd function over numba kernels,
`dreamlab.dnc.fused_step`), `dreamlab_modules` (fused=False: each step composed of the modules' torch operations,
the link step a numba operator; what runs on a GPU), `dreamlab_modules_compiled` (the same through torch.compile,
the link kernels opaque operators inside the graph), `dreamlab_sparse_k8` (top-K links, modules) and `pytorch_dnc`
(`pip install dnc --no-deps`). For each thread count they are timed in interleaved rounds after warm-up rounds
(compilation happens there), so a change in machine load hits all of them alike; the load average is recorded before
and after. All that runs in `--processes` fresh processes one after another (the step times of one process and the
next differ by up to ~15% on the machine of record); each speedup is the median of the processes' own, and each
process's numbers are kept. On the CPU both wall-clock and process CPU time are reported: with one thread, CPU time
is the steadier number on a shared machine; with two, CPU time adds both threads' time, so the speedups use wall
time. `profile` adds each dreamlab variant's top operators (self time per sequence step, under torch.profiler, in
the first process) to the result.

On a GPU the picture changes (not measured here: no GPU on the machine of record). Each step is some 150
small kernels forward and 250 backward, each a few microseconds of work on (B, N) or (B, N, W) tensors, so
eager time is kernel-launch latency (~5-10 us per launch, i.e. ~2-4 ms per step whatever N), not arithmetic;
the (B, N, N) link passes that dominate on a CPU are ~4 MB each, a few microseconds at GPU bandwidth.
`compile=True` (Inductor fusing the element-wise work into a few Triton kernels) or CUDA graphs remove most
launches and should matter far more there than on a CPU. Writes results/dnc/benchmark.json (or <name>.json).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from dreamlab.config import RunConfig, parse_config, positive
from dreamlab.dnc import DNC
from dreamlab.results import write_result
from dreamlab.runs import UserError, cli
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything

GPU_EXPECTATIONS = (
    "not measured (no GPU on the machine of record). Expected to dominate on a GPU: kernel-launch latency of "
    "the ~400 small per-step kernels (forward + backward), ~2-4 ms per step at any N, not the (B, N, N) link "
    "passes (~4 MB each: microseconds at GPU bandwidth; there the link step runs as torch operations, the numba "
    "kernels being CPU-only); compile=True (fused Triton kernels) or CUDA graphs attack exactly that, so the "
    "compiled/eager ratio should be larger on a GPU than on this CPU."
)


@dataclasses.dataclass
class DNCBenchmarkConfig(RunConfig):
    """Time one training step (forward + backward over a sequence) of DNC implementations."""

    batch_size: int = 16
    sequence_length: int = 50
    input_size: int = 8
    memory_slots: int = 256
    word_size: int = 64
    read_heads: int = 4
    hidden_size: int = 256
    sparse_links: int = 8  # also time the top-K sparse link variant with this K; 0 = skip it
    compiled: bool = True  # also time DNC(..., fused=False, compile=True), the modules' step compiled
    rounds: int = 7
    warmup: int = 2
    processes: int = 3  # fresh processes, one after another, each timing everything; speedups are their median
    thread_counts: tuple[int, ...] = (1, 2)  # time everything with each of these torch intra-op thread counts
    compare_pytorch_dnc: bool = True
    profile: bool = True  # record each dreamlab variant's top operators (one thread) in the result

    def validate(self) -> None:
        super().validate()
        positive(self, "batch_size", "sequence_length", "input_size", "memory_slots", "word_size", "read_heads")
        positive(self, "hidden_size", "rounds", "processes")
        if self.warmup < 1:
            raise UserError("warmup must be >= 1: the first call of each implementation (and compilation) is excluded")
        if not self.thread_counts or min(self.thread_counts) < 1:
            raise UserError(f"thread_counts must be positive ints, e.g. 1,2; got {self.thread_counts}")
        if self.sparse_links < 0 or self.sparse_links > self.memory_slots:
            raise UserError(f"sparse_links must be in [0, memory_slots={self.memory_slots}], got {self.sparse_links}")


PRESETS = {
    "smoke": {
        "sequence_length": 5,
        "memory_slots": 32,
        "word_size": 16,
        "rounds": 2,
        "compiled": False,
        "processes": 1,
    },
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
    config: DNCBenchmarkConfig,
    device: torch.device,
    dtype: torch.dtype,
    sparse_links: int | None,
    compile: bool = False,
    fused: bool = True,
) -> tuple[Callable, int]:
    model = DNC(
        config.input_size,
        config.input_size,
        config.hidden_size,
        config.memory_slots,
        config.word_size,
        config.read_heads,
        sparse_links=sparse_links,
        compile=compile,
        fused=fused,
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


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def build_steps(config: DNCBenchmarkConfig, device: torch.device, dtype: torch.dtype) -> tuple[dict, str]:
    """{name: (step closure, parameter count)} for every implementation timed, and pytorch-dnc's status."""
    steps: dict[str, tuple[Callable, int]] = {
        "dreamlab": dreamlab_dnc_step(config, device, dtype, None),
        "dreamlab_modules": dreamlab_dnc_step(config, device, dtype, None, fused=False),
    }
    if config.compiled:
        steps["dreamlab_modules_compiled"] = dreamlab_dnc_step(config, device, dtype, None, compile=True, fused=False)
    if config.sparse_links:
        steps[f"dreamlab_sparse_k{config.sparse_links}"] = dreamlab_dnc_step(config, device, dtype, config.sparse_links)
    if not config.compare_pytorch_dnc:
        return steps, "not requested"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            steps["pytorch_dnc"] = pytorch_dnc_step(config, device, dtype)
            timed(steps["pytorch_dnc"][0], device)  # fails here, not mid-benchmark, if it is broken
        return steps, f"dnc {importlib.metadata.version('dnc')} (pip install dnc --no-deps) works"
    except ImportError:
        steps.pop("pytorch_dnc", None)
        return steps, "not installed (pip install dnc --no-deps)"
    except Exception as err:  # a third-party package failing on this torch: report why, keep our numbers
        steps.pop("pytorch_dnc", None)
        return steps, f"installed but fails on torch {torch.__version__}: {type(err).__name__}: {err}"


def measure(config: DNCBenchmarkConfig, steps: dict, device: torch.device, threads: int) -> dict:
    """Warm-up rounds, then interleaved timed rounds of every implementation with `threads` threads."""
    torch.set_num_threads(threads)
    block: dict[str, object] = {"threads": threads, "load_average_1min_before": load_average()}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(config.warmup):
            for step, _ in steps.values():
                step()
        for _ in range(config.rounds):
            for name, (step, _) in steps.items():
                samples[name].append(timed(step, device))
    block["load_average_1min_after"] = load_average()
    per_step = 1000.0 / config.sequence_length
    rows = {}
    for name, values in samples.items():
        rows[name] = {
            "parameters": steps[name][1],
            "wall_ms_per_step_median": statistics.median(v[0] for v in values) * per_step,
            "wall_ms_per_step_min": min(v[0] for v in values) * per_step,
            "cpu_ms_per_step_median": statistics.median(v[1] for v in values) * per_step,
            "cpu_ms_per_step_min": min(v[1] for v in values) * per_step,
        }
    block["implementations"] = rows
    if "pytorch_dnc" in rows:
        theirs = rows["pytorch_dnc"]
        clock = "cpu" if threads == 1 else "wall"  # with 2 threads CPU time double-counts
        block["speedup_clock"] = clock
        block["speedup_over_pytorch_dnc"] = {
            name: theirs[f"{clock}_ms_per_step_median"] / row[f"{clock}_ms_per_step_median"]
            for name, row in rows.items()
            if name != "pytorch_dnc"
        }
    return block


def top_operators(step: Callable, sequence_length: int, count: int = 15) -> list[dict]:
    """One profiled call of step: the `count` operators with the most self CPU time, in ms per sequence step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "operator": e.key[:80],
            "self_ms_per_step": e.self_cpu_time_total / 1000.0 / sequence_length,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / sequence_length,
        }
        for e in events[:count]
    ]


def measure_here(config: DNCBenchmarkConfig) -> dict:
    """Every implementation timed in this process at every thread count, and (if asked) the top operators."""
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    steps, pytorch_dnc_status = build_steps(config, device, dtype)
    metrics: dict[str, object] = {"pytorch_dnc": pytorch_dnc_status, "gpu_expectations": GPU_EXPECTATIONS}
    metrics["by_threads"] = {str(threads): measure(config, steps, device, threads) for threads in config.thread_counts}
    if config.profile:
        torch.set_num_threads(1)
        metrics["profile_one_thread"] = {
            name: top_operators(step, config.sequence_length)
            for name, (step, _) in steps.items()
            if name != "pytorch_dnc"
        }
    return metrics


def measure_in_processes(config: DNCBenchmarkConfig, argv: list[str]) -> dict:
    """`measure_here` in `config.processes` fresh processes, one after another, and the median over them.

    On the machine of record the step times of a process differ from those of the next by up to ~15% (where its
    memory landed, what the neighbours did), more than between the rounds of one process; so each process times
    all implementations interleaved, and a speedup is the median of the processes' own speedups.
    """
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for k in range(config.processes):
            command = [sys.executable, __file__, *argv, "--processes", "1", "--results_dir", scratch]
            command += ["--name", f"process{k}", "--profile" if config.profile and k == 0 else "--no-profile"]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # a failing process raises here
            runs.append(json.loads((Path(scratch) / "dnc" / f"process{k}.json").read_text())["metrics"])
    metrics = {key: runs[0][key] for key in ("pytorch_dnc", "gpu_expectations", "profile_one_thread") if key in runs[0]}
    metrics["by_threads"] = {
        threads: median_block([run["by_threads"][threads] for run in runs]) for threads in runs[0]["by_threads"]
    }
    return metrics


def median_block(blocks: list[dict]) -> dict:
    """One thread count's blocks from several processes: medians of their numbers, and each process's block."""
    merged: dict[str, object] = {
        "threads": blocks[0]["threads"],
        "load_average_1min_before": blocks[0]["load_average_1min_before"],
        "load_average_1min_after": blocks[-1]["load_average_1min_after"],
        "implementations": {
            name: {
                key: statistics.median(block["implementations"][name][key] for block in blocks)
                for key in row
                if key != "parameters"
            }
            | {"parameters": row["parameters"]}
            for name, row in blocks[0]["implementations"].items()
        },
    }
    if "speedup_over_pytorch_dnc" in blocks[0]:
        merged["speedup_clock"] = blocks[0]["speedup_clock"]
        speedups = {
            name: [block["speedup_over_pytorch_dnc"][name] for block in blocks]
            for name in blocks[0]["speedup_over_pytorch_dnc"]
        }
        merged["speedup_over_pytorch_dnc"] = {name: statistics.median(values) for name, values in speedups.items()}
        merged["speedup_per_process"] = speedups
    merged["processes"] = blocks
    return merged


@cli
def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(DNCBenchmarkConfig, PRESETS, argv, description=__doc__)
    start = time.perf_counter()
    device = resolve_device(config.device)  # a missing GPU fails here, before any process starts
    metrics = measure_here(config) if config.processes == 1 else measure_in_processes(config, argv)
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
        f"R={config.read_heads} LSTM {config.hidden_size}, {device}"
    )
    print(f"forward+backward per time step ({shape}):")
    for threads, block in metrics["by_threads"].items():
        print(f" {threads} thread(s), load {block['load_average_1min_before']} -> {block['load_average_1min_after']}:")
        speedups = block.get("speedup_over_pytorch_dnc", {})
        for impl, row in block["implementations"].items():
            ratio = f"  {speedups[impl]:.2f}x pytorch-dnc" if impl in speedups else ""
            if impl in block.get("speedup_per_process", {}):
                ratio += " (processes: " + ", ".join(f"{v:.2f}" for v in block["speedup_per_process"][impl]) + ")"
            print(
                f"  {impl:24s} cpu {row['cpu_ms_per_step_median']:7.2f} ms"
                f"  wall {row['wall_ms_per_step_median']:7.2f} ms  ({row['parameters']} parameters){ratio}"
            )
    print(f"pytorch-dnc: {metrics['pytorch_dnc']}")
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()
