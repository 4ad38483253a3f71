"""Compare World Models runs that differ in M's core (the thesis' MDN-LSTM vs MDN-DNC on ViZDoom Take Cover).

    python experiments/worldmodels_compare.py doom_takecover_lstm doom_takecover_dnc
    python experiments/worldmodels_compare.py doom_takecover_{lstm,dnc}_r3000 doom_takecover_{lstm,dnc}_r3000_cseed{1,2}

Reads each result <name>.json and its run's curve CSV (up to the result's generation) from
``--results_dir``/worldmodels, or, for a name not there, from the repository's committed results/worldmodels, and
writes the comparison figure <--name>.png and a summary result <--name>.json into ``--results_dir``/worldmodels:
runs/results by default, the committed results/ only with ``--results_dir results``. Several runs of one core
(repeats with other ``--c_seed``s) are pooled: the summary gives each run's tested score and, per core, the mean
over its runs and their spread, the number a single C search cannot give. Runs of iterative training
(``--iterations``) also give each round's tested score, per run and averaged over a core's runs (the rounds all of
them have), and the figure <--name>_rounds.png shows them round by round.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dreamlab.config import RESULTS_DIR, committed_results_dir
from dreamlab.results import find_result, write_result
from dreamlab.runs import check_writable, cli
from dreamlab.worldmodels.plots import (
    TestedRun,
    c_seed,
    load_tested_run,
    save_core_comparison,
    save_iteration_rounds,
)


def core_summary(results: list[dict], runs: list[TestedRun], solved: float | None) -> dict:
    """Per-run tested scores of one core and their pooled statistics."""
    run_means = np.asarray([run.final_returns.mean() for run in runs])
    pooled = np.concatenate([run.final_returns for run in runs])
    # Spread of the tested score from one C search to another (needs two runs), and the standard error of its mean.
    spread = float(run_means.std(ddof=1)) if len(runs) > 1 else None
    # Iterated runs: round k's tested score averaged over the runs (C seeds), for the rounds that every run has.
    depth = min(len(run.rounds) for run in runs)
    round_means = [float(np.mean([run.rounds[k]["real_mean"] for run in runs])) for k in range(depth)]
    return {
        "real_mean": float(pooled.mean()),
        "real_std": float(pooled.std()),
        "episodes": len(pooled),
        "runs": len(runs),
        "run_means": run_means.tolist(),
        "run_mean_std": spread,
        "run_mean_stderr": None if spread is None else spread / len(runs) ** 0.5,
        "runs_solved": None if solved is None else int((run_means >= solved).sum()),
        "round_means_over_runs": round_means,
        "per_run": [
            {
                "run": result["config"]["name"],
                "c_seed": c_seed(result["config"]),
                "real_mean": float(run.final_returns.mean()),
                "real_std": float(run.final_returns.std()),
                "episodes": len(run.final_returns),
                "generations": result["metrics"]["generations"],
                "tested_generation": run.tested_generation,
                "m_final_z_nll": result["metrics"]["m_final_z_nll"],
                "m_steps": result["config"]["m_steps"],
                "m_seconds": result.get("stage_seconds", {}).get("M"),
                "C_seconds": result.get("stage_seconds", {}).get("C"),
                "round_means": [row["real_mean"] for row in run.rounds],
            }
            for result, run in zip(results, runs, strict=True)
        ],
    }


def _describe(run: dict) -> str:
    """One run's tested score for the printed summary, with its rounds' if it iterated."""
    rounds = f"; rounds {' -> '.join(f'{m:.0f}' for m in run['round_means'])}" if run["round_means"] else ""
    return f"{run['real_mean']:.1f} (generation {run['tested_generation']}{rounds})"


@cli
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="result names (<results_dir>/worldmodels/<name>.json)")
    parser.add_argument(
        "--results_dir",
        default=RESULTS_DIR,
        help=f"read runs from and write the comparison to DIR/worldmodels (default {RESULTS_DIR}; results publishes)",
    )
    parser.add_argument("--name", default="doom_takecover_core_comparison")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    folder = Path(args.results_dir) / "worldmodels"
    committed = committed_results_dir() / "worldmodels"
    sources = [folder] if folder.resolve() == committed else [folder, committed]
    check_writable(folder, "results directory")
    results: dict[str, list[dict]] = {}
    runs: dict[str, list[TestedRun]] = {}
    for name in args.runs:
        result, run = load_tested_run(find_result(sources, name, "experiments/worldmodels.py"))
        core = result["config"]["core"]
        results.setdefault(core, []).append(result)
        runs.setdefault(core, []).append(run)
    solved = result["metrics"].get("solved_threshold")  # the task's threshold, the same in every run
    summary = {core: core_summary(results[core], runs[core], solved) for core in runs}
    figures = [save_core_comparison(runs, folder / f"{args.name}.png", solved)]
    if any(run.rounds for core_runs in runs.values() for run in core_runs):
        figures.append(save_iteration_rounds(runs, folder / f"{args.name}_rounds.png", solved))
    out = write_result(
        "worldmodels",
        args.name,
        experiment="worldmodels_compare",
        config={"runs": args.runs},
        metrics={"cores": summary},
        wall_seconds=time.perf_counter() - started,
        results_dir=args.results_dir,
    )
    for core, row in summary.items():
        per_run = ", ".join(_describe(r) for r in row["per_run"])
        spread = f"; over runs {row['run_mean_stderr']:.1f} s.e." if row["run_mean_stderr"] is not None else ""
        rounds = row["round_means_over_runs"] if row["runs"] > 1 else []
        averaged = f"; rounds averaged over runs {' -> '.join(f'{m:.0f}' for m in rounds)}" if rounds else ""
        print(
            f"MDN-{core.upper()}: {row['real_mean']:.1f} +- {row['real_std']:.1f} over {row['episodes']} episodes "
            f"of {row['runs']} tested controller(s): {per_run}{spread}{averaged}"
        )
    print("figures: " + ", ".join(str(f) for f in figures) + f"\nresult: {out}")
    return summary


if __name__ == "__main__":
    main()
