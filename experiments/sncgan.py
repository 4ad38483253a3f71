"""Conditional GANs on labelled images: SNcGAN and its baselines, judged by an attribute classifier.

python experiments/sncgan.py --preset fast --variant sncgan      # embedded coloured sprites, no download
python experiments/sncgan.py --preset fast --variant cgan        # the same GAN without spectral norm
python experiments/sncgan.py --preset upright_g32 --threads 1    # the headline recipe (docs/gan.md), about 1.8 h
python experiments/sncgan.py --variant sncgan --data folder --data_root ~/celeba --attributes list_attr_celeba.txt

Interrupted runs resume from runs/gan/<name>/checkpoint.pt when started again with the same arguments (``--steps``
may be raised to train further). The study (config, presets, training, judging, figures) is dreamlab.gan.study; from
a notebook call its ``run(config)``.
"""

from __future__ import annotations

from dreamlab.config import parse_config
from dreamlab.gan.study import PRESETS, SNcGANConfig, run
from dreamlab.runs import cli


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(SNcGANConfig, PRESETS, argv, description=__doc__))


if __name__ == "__main__":
    main()
