"""The MDN-DNC thesis' Pommerman study: how well does an MDN-LSTM or an MDN-DNC predict the next game state?

    python experiments/pommerman_next_state.py --preset smoke --core lstm       # seconds
    nice -n 5 python experiments/pommerman_next_state.py --preset fast --core lstm --threads 1 --results_dir results
    nice -n 5 python experiments/pommerman_next_state.py --preset fast --core dnc --threads 1 --results_dir results

The study is :mod:`dreamlab.envs.pommerman.next_state_study`; this script is its command line and the comparison
figure. Games are collected once into runs/pommerman/datasets/ (shared by both cores). Re-running the same command
resumes from runs/pommerman/<name>/checkpoint.pt; a larger --steps continues a finished run. Results (under
--results_dir, default runs/results): pommerman/<name>.json, <name>_curve.csv, and next_state_comparison.png once
both cores have a result.
"""

from __future__ import annotations

import json
from pathlib import Path

from dreamlab.config import parse_config
from dreamlab.envs.pommerman.next_state_study import CORES, PRESETS, NextStateConfig, run
from dreamlab.runs import cli
from dreamlab.worldmodels.next_state import save_comparison_figure


def comparison_figure(out_dir: Path, pattern: str) -> Path | None:
    """next_state_comparison*.png from the LSTM and DNC results named by ``pattern`` once both exist (None for a
    run named without its core, which has no counterpart)."""
    if "{core}" not in pattern:
        return None
    paths = {core: out_dir / f"{pattern.format(core=core)}.json" for core in CORES}
    if not all(p.is_file() for p in paths.values()):
        return None
    results = {core: json.loads(p.read_text())["metrics"] for core, p in paths.items()}
    suffix = pattern.replace("next_state_{core}", "")
    configs = {core: json.loads(p.read_text())["config"] for core, p in paths.items()}
    budgets = "; ".join(
        f"{core.upper()} hidden {configs[core]['hidden_size']}, K {configs[core]['n_components']}, "
        f"{configs[core]['steps']} updates ({results[core]['epochs']:g} epochs)"
        for core in CORES
    )
    title = (
        f"Pommerman next-state prediction on {results['lstm']['test_transitions']} held-out transitions\n"
        f"{budgets} of {results['lstm']['train_transitions']} transitions"
    )
    return save_comparison_figure(
        {"MDN-LSTM": results["lstm"], "MDN-DNC": results["dnc"]},
        results["lstm"]["copy_baseline"],
        out_dir / f"next_state_comparison{suffix}.png",
        title=title,
    )


def figures(out_dir: Path, name: str, config: NextStateConfig) -> None:
    """The LSTM-against-DNC comparison, once both cores have a result of this preset."""
    figure = comparison_figure(out_dir, name.replace(f"next_state_{config.core}", "next_state_{core}"))
    if figure is not None:
        print(f"comparison figure: {figure}")


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(NextStateConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()
