"""Calibrate the dream's temperature: how hard M's dream is at each tau for a finished run's tested controller.

    python experiments/worldmodels_temperature.py doom_takecover_lstm_r10k doom_takecover_dnc_r10k --results_dir results

For each run (its result <name>.json in ``--results_dir``/worldmodels or the committed results/worldmodels, its
checkpoints in the run dir its config names) plays the tested controller in ``--episodes`` dream episodes at every
``--temperatures`` value, and compares the dream score with the controller's real score from the run's own check
(episodes disjoint from the final test's). The calibrated tau is the lowest at which the dream is no easier than the
game (`dreamlab.worldmodels.temperature`); C searched again at it (``experiments/worldmodels.py --temperature
--m_from``) tests whether a harder dream helps: on the committed Doom runs it did not (docs/worldmodels.md).
Writes <--name>.json and .png into ``--results_dir``/worldmodels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dreamlab.config import RESULTS_DIR, committed_results_dir
from dreamlab.results import find_result, write_result
from dreamlab.runs import UserError, check_writable, cli
from dreamlab.runtime import set_threads
from dreamlab.worldmodels.loading import WorldModel
from dreamlab.worldmodels.pipeline import WorldModelsConfig, run_paths
from dreamlab.worldmodels.plots import TestedRun, load_tested_run, save_temperature_calibration
from dreamlab.worldmodels.temperature import calibrated_temperature, dream_returns_by_temperature

TEMPERATURES = (1.0, 1.15, 1.3, 1.5, 1.75, 2.0)


def check_score(run: TestedRun, name: str) -> float:
    """The real check score of the run's tested controller, from the run's curve."""
    rows = run.curve.rows
    checked = [row for row in rows if row["generation"] == run.tested_generation and row.get("real_mean") is not None]
    if not checked:
        raise UserError(f"{name}: its curve has no real check at the tested generation {run.tested_generation}")
    return float(checked[0]["real_mean"])


@cli
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="result names (<results_dir>/worldmodels/<name>.json)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES))
    parser.add_argument("--episodes", type=int, default=64, help="dream episodes per temperature (default 64)")
    parser.add_argument("--seed", type=int, default=12345, help="the dream episodes' start frames and noise")
    parser.add_argument(
        "--results_dir",
        default=RESULTS_DIR,
        help=f"read runs from and write the calibration to DIR/worldmodels (default {RESULTS_DIR}; results publishes)",
    )
    parser.add_argument("--name", default="doom_dream_temperature")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.threads < 0 or any(not tau > 0 for tau in args.temperatures):
        parser.error("--episodes must be >= 1, --threads >= 0 and every --temperatures value > 0")
    set_threads(args.threads)
    started = time.perf_counter()
    folder = Path(args.results_dir) / "worldmodels"
    committed = committed_results_dir() / "worldmodels"
    sources = [folder] if folder.resolve() == committed else [folder, committed]
    check_writable(folder, "results directory")
    paths = {name: find_result(sources, name, "experiments/worldmodels.py") for name in args.runs}
    temperatures = sorted(set(args.temperatures))
    rows: dict[str, dict] = {}
    for name, path in paths.items():
        result, run = load_tested_run(path)
        real, generation = check_score(run, name), run.tested_generation
        config = WorldModelsConfig(**result["config"])
        world = WorldModel.load(run_paths(config)[1])
        returns = dream_returns_by_temperature(world, temperatures, args.episodes, args.seed)
        means = {tau: float(r.mean()) for tau, r in returns.items()}
        rows[name] = {
            "core": config.core,
            "run_temperature": config.temperature,
            "tested_generation": generation,
            "real_check": real,
            "temperatures": temperatures,
            "dream_means": [means[tau] for tau in temperatures],
            "dream_stderrs": [float(returns[tau].std(ddof=1) / np.sqrt(len(returns[tau]))) for tau in temperatures],
            "calibrated": calibrated_temperature(means, real),
        }
        shown = ", ".join(f"{tau:g}: {means[tau]:.0f}" for tau in temperatures)
        calibrated = rows[name]["calibrated"]
        print(f"{name}: real check {real:.0f} (generation {generation}); dream {shown}; calibrated tau {calibrated}")
    figure = save_temperature_calibration(rows, folder / f"{args.name}.png")
    out = write_result(
        "worldmodels",
        args.name,
        experiment="worldmodels_temperature",
        config={"runs": args.runs, "temperatures": temperatures, "episodes": args.episodes, "seed": args.seed},
        metrics={"runs": rows},
        wall_seconds=time.perf_counter() - started,
        results_dir=args.results_dir,
    )
    print(f"figure: {figure}\nresult: {out}")
    return rows


if __name__ == "__main__":
    main()
