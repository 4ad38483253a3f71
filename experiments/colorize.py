"""Line-art colorization with colour hints (deepcolor): a U-Net trained with L1 + adversarial loss.

python experiments/colorize.py --preset fast                              # embedded coloured sprites
python experiments/colorize.py --data folder --data_root ~/drawings       # any folder of images
python experiments/colorize.py --colour_lines my_lineart.png [--colour_hint my_scribble.png]   # colour new line art

Training resumes from runs/gan/<name>/checkpoint.pt; with --colour_lines the trained model (trained first if
needed) colours the given black-on-white line art, with the hint taken from --colour_hint or blank (no hint).
The study (config, presets, training, figures) is dreamlab.gan.colorize_study; from a notebook call its ``run(config)``.
"""

from __future__ import annotations

from dreamlab.config import parse_config
from dreamlab.gan.colorize_study import PRESETS, ColorizeConfig, run
from dreamlab.runs import cli


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(ColorizeConfig, PRESETS, argv, description=__doc__))


if __name__ == "__main__":
    main()
