"""DRAW (Gregor et al. 2015) with and without attention, and a VAE at the same latent budget.

python experiments/draw.py --preset fast                              # dSprites 32x32, attention
python experiments/draw.py --preset fast --no-attention               # same budget, whole-image read/write
python experiments/draw.py --preset fast --model vae                  # one-shot VAE, latent = glimpses * z_size
python experiments/draw.py --preset colour                            # coloured sprites, L2 loss, shared window
python experiments/draw.py --preset paper --data_path ~/data/mnist    # the paper's MNIST model (80.97 nats)

Runs checkpoint to runs/draw/<name>/ and resume when started again with the same arguments (``--steps`` may grow).
The study (config, presets, training, figures) is dreamlab.draw.study; from a notebook call its ``run(config)``.
"""

from __future__ import annotations

from dreamlab.config import parse_config
from dreamlab.draw.study import PRESETS, DrawConfig, run
from dreamlab.runs import cli


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(DrawConfig, PRESETS, argv, description=__doc__))


if __name__ == "__main__":
    main()
