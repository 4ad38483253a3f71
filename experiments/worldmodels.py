"""World Models end to end: random rollouts -> V -> encode -> M -> C (in the dream or the real env) -> evaluate.

    python experiments/worldmodels.py --preset smoke          # a couple of minutes, ViZDoom Take Cover
    python experiments/worldmodels.py --preset fast --name doom_takecover_lstm
    python experiments/worldmodels.py --preset fast --task carracing --z_dim 32 --train_in real

Every stage checkpoints into ``--run_dir`` (default runs/worldmodels/<name>); re-running the same command after a
kill resumes where it stopped. Rollouts, V and the encoded latents go to ``--data_dir`` (default: the run dir), so
runs that differ only in M or C -- an LSTM and a DNC core, say -- can share one data dir and train V once.
Results go to <results_dir>/worldmodels/<name>.json with figures, GIFs and curves.

The study (config, presets, stages, provenance) is dreamlab.worldmodels.pipeline; from a notebook call its
``run(config)``, and load a trained run with ``dreamlab.worldmodels.WorldModel.load(run_dir)``.
"""

from __future__ import annotations

from dreamlab.config import parse_config
from dreamlab.runs import cli
from dreamlab.worldmodels.pipeline import PRESETS, WorldModelsConfig, run


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(WorldModelsConfig, PRESETS, argv, description=__doc__))


if __name__ == "__main__":
    main()
