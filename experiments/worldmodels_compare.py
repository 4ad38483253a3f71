"""Compare World Models runs that differ in M's core (the thesis' MDN-LSTM vs MDN-DNC on ViZDoom Take Cover).

    python experiments/worldmodels_compare.py doom_takecover_lstm doom_takecover_dnc

Reads each result results/worldmodels/<name>.json and its run's curve CSV (up to the result's generation), and
writes the comparison figure results/worldmodels/<--name>.png and a summary result <--name>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dreamlab.results import CurveLog, write_result
from dreamlab.worldmodels.plots import save_core_comparison


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run names under results/worldmodels/")
    parser.add_argument("--results_dir", default="results")
    parser.add_argument("--name", default="doom_takecover_core_comparison")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    folder = Path(args.results_dir) / "worldmodels"
    curves, finals, summary, check_episodes, tested = {}, {}, {}, {}, {}
    for run in args.runs:
        path = folder / f"{run}.json"
        if not path.is_file():
            raise FileNotFoundError(f"no result file {path}: run experiments/worldmodels.py --name {run} first")
        result = json.loads(path.read_text())
        core = result["config"]["core"]
        if core in curves:
            raise ValueError(f"two runs with core {core!r}; compare runs that differ in their core")
        # The run's curve up to the generation this result evaluated (a result saved part-way through a longer run
        # shares the run's curve file, named after config.name when the run was given one).
        curve = CurveLog.from_csv(folder / f"{result['config']['name'] or run}_curve.csv")
        curve.rows = [row for row in curve.rows if row["generation"] <= result["metrics"]["generations"]]
        curves[core] = curve
        finals[core] = np.asarray(result["metrics"]["real_episode_returns"])
        check_episodes[core] = result["config"]["real_eval_episodes"]
        # Results written before the choice existed tested the last generation's mean.
        tested[core] = result["metrics"].get("final_controller_generation", result["metrics"]["generations"])
        summary[core] = {
            "run": run,
            "real_mean": float(finals[core].mean()),
            "real_std": float(finals[core].std()),
            "episodes": len(finals[core]),
            "generations": result["metrics"]["generations"],
            "tested_generation": tested[core],
            "m_final_z_nll": result["metrics"]["m_final_z_nll"],
            "m_steps": result["config"]["m_steps"],
            "m_seconds": result.get("stage_seconds", {}).get("M"),
            "C_seconds": result.get("stage_seconds", {}).get("C"),
        }
        solved = result["metrics"].get("solved_threshold")
    figure = save_core_comparison(curves, finals, folder / f"{args.name}.png", solved, check_episodes, tested)
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
        print(
            f"MDN-{core.upper()}: {row['real_mean']:.1f} +- {row['real_std']:.1f} over {row['episodes']} episodes "
            f"(the mean of generation {row['tested_generation']})"
        )
    print(f"figure: {figure}\nresult: {out}")
    return summary


if __name__ == "__main__":
    main()
