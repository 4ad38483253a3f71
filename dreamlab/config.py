"""Experiment configs: dataclasses with named presets, exposed as a command line.

Every experiment defines ``@dataclass class XConfig(RunConfig)`` and a ``PRESETS`` dict mapping preset names
(at least ``smoke``, ``fast`` and ``paper``) to field overrides. ``parse_config`` turns that pair into a CLI:
``--preset NAME`` picks the base values, then any field can be overridden as ``--field value``.

Results go to ``runs/results/`` (git-ignored) unless ``--results_dir results`` names the repository's committed
folder explicitly; a ``smoke`` run, whose scores test only the plumbing, may never write there.

Validation happens before any work: a ``Literal[...]`` field accepts only its choices, every float field must be
finite, and a config's ``validate`` method checks ranges and combinations. Each failure is a
:class:`dreamlab.runs.UserError` naming the field, which :func:`dreamlab.runs.cli` prints as one line (exit code 2).

Why not tyro (CleanRL's choice), which reads the same dataclasses, ``Literal`` choices and field comments: tried
on these configs (tyro 1.0), its presets are subcommands (``script.py smoke --core dnc``), which would change the
``--preset`` command recorded in every committed result; a bad choice is a five-line box rather than one line;
and ``--lr nan`` passes, so the finite checks and ``validate`` hooks would be needed beside it anyway. This module
is the ~280 lines that keep the recorded commands working without a dependency.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from dreamlab.runs import UserError

REQUIRED_PRESETS = ("smoke", "fast", "paper")

# Where results go unless a run is told otherwise: under the git-ignored runs/, so that no run can overwrite a
# committed result by accident. Publishing into the repository's results/ takes an explicit --results_dir results.
RESULTS_DIR = "runs/results"

SMOKE_NOTICE = (
    "note: --preset smoke runs tiny models to test the plumbing only; its scores say nothing about the method "
    "(use --preset fast or paper for results)"
)


@dataclasses.dataclass
class RunConfig:
    """Fields every run has: which preset it came from, seeding, device, precision and where it writes."""

    preset: str = "fast"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float64 to chase NaNs and Infs
    run_dir: str = ""  # checkpoints and working files; default runs/<experiment>/<name>
    results_dir: str = RESULTS_DIR  # <module>/<name>.json and figures go here; "results" publishes (committed)
    name: str = ""  # result name; default derived from the experiment and preset
    log_grads: bool = False  # log per-parameter gradient norms and name any NaN/Inf gradient
    threads: int = 0  # torch intra-op threads; 0 = torch's default. 1 is fastest when several runs share a CPU
    tensorboard: bool = False  # also write the training curves live to run_dir/tensorboard

    # Fields that may change when a run resumes from its checkpoint (budgets, typically).
    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        """Raise :class:`UserError` naming the first bad field. Subclasses extend this (calling ``super()``) with
        their ranges and combinations; it runs before any work starts."""
        non_negative(self, "seed", "threads")
        choice(self, "dtype", ("float32", "float64"))
        device = self.device.strip().lower()
        if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise UserError(f"--device {self.device!r} is not a device: use auto, cpu, cuda or cuda:N")
        check_results_dir(self.results_dir, self.preset)
        if self.tensorboard:
            from dreamlab.progress import require_tensorboard

            require_tensorboard()


def committed_results_dir() -> Path:
    """The repository's ``results/`` folder: the committed results that ``results/README.md`` indexes."""
    return Path(__file__).resolve().parents[1] / "results"


def check_results_dir(results_dir: str | Path, preset: str | None) -> None:
    """Refuse a ``smoke`` run that would write into the committed ``results/`` (its scores mean nothing)."""
    if preset != "smoke":
        return
    target, committed = Path(results_dir).resolve(), committed_results_dir()
    if target == committed or committed in target.parents:
        raise UserError(
            f"--preset smoke would write into the committed results folder {target}, but smoke scores test the "
            f"plumbing only: leave --results_dir at its default ({RESULTS_DIR}) or name another folder"
        )


def positive(config: Any, *names: str) -> None:
    """Each named field must be > 0."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise UserError(f"--{name} must be positive, got {value!r}")


def non_negative(config: Any, *names: str) -> None:
    """Each named field must be >= 0."""
    for name in names:
        value = getattr(config, name)
        if not value >= 0:
            raise UserError(f"--{name} must be >= 0, got {value!r}")


def in_range(config: Any, name: str, low: float, high: float) -> None:
    """``low <= field <= high``."""
    value = getattr(config, name)
    if not low <= value <= high:
        raise UserError(f"--{name} must be in [{low}, {high}], got {value!r}")


def choice(config: Any, name: str, choices: Sequence[Any]) -> None:
    """The field must be one of ``choices``."""
    value = getattr(config, name)
    if value not in choices:
        raise UserError(f"--{name} {value!r} is not one of {', '.join(map(str, choices))}")


C = TypeVar("C", bound=RunConfig)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_presets(cls: type, presets: Mapping[str, Mapping[str, Any]]) -> None:
    missing = [p for p in REQUIRED_PRESETS if p not in presets]
    if missing:
        raise TypeError(f"{cls.__name__} presets lack {missing}; every experiment needs {list(REQUIRED_PRESETS)}")
    names = {f.name for f in dataclasses.fields(cls)}
    for preset, overrides in presets.items():
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"preset {preset!r} of {cls.__name__} sets unknown field(s) {unknown}")


def make_config(cls: type[C], presets: Mapping[str, Mapping[str, Any]], preset: str = "fast", **overrides: Any) -> C:
    """Build a config from a named preset plus overrides (the notebook and test entry point)."""
    _check_presets(cls, presets)
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r}; choose from {', '.join(sorted(presets))}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise UserError(f"{cls.__name__} has no field(s) {unknown}; fields are {sorted(names)}")
    values = {**presets[preset], **overrides, "preset": preset}
    config = cls(**values)
    check_fields(config)
    config.validate()
    return config


def check_fields(config: Any) -> None:
    """Every float field finite, every ``Literal`` field one of its choices (type-level checks of any config)."""
    for name, annotation in _field_types(type(config)).items():
        value = getattr(config, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"--{name} must be a finite number, got {value!r}")
        if typing.get_origin(annotation) is Literal and value not in typing.get_args(annotation):
            raise UserError(f"--{name} {value!r} is not one of {', '.join(map(str, typing.get_args(annotation)))}")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _converter(annotation: Any):
    """An argparse ``type=`` for a dataclass field annotation (scalars, Optional scalars, tuples of scalars)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        base = _converter(inner[0])
        return lambda text: None if text.lower() == "none" else base(text)
    if origin is tuple:
        element = _converter(args[0])
        return lambda text: tuple(element(part) for part in text.split(",") if part)
    if annotation is bool:
        return _parse_bool
    if typing.get_origin(annotation) is Literal:
        return type(typing.get_args(annotation)[0])
    if annotation in (int, float, str):
        return annotation
    raise TypeError(f"unsupported config field type {annotation!r}")


def parse_config(
    cls: type[C],
    presets: Mapping[str, Mapping[str, Any]],
    argv: Sequence[str] | None = None,
    description: str | None = None,
) -> C:
    """Parse ``--preset NAME --field value ...`` into a config.

    ``--help`` shows, for every field, what it means (the comment beside it in the config class), its choices and
    its value under the chosen preset (``--preset paper --help`` shows the paper preset's values).
    """
    _check_presets(cls, presets)
    argv = list(sys.argv[1:] if argv is None else argv)
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--preset", default="fast")
    chosen = chooser.parse_known_args(argv)[0].preset
    preset_values = presets.get(chosen, {})
    parser = _OneLineErrorParser(
        description=description or cls.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="fast", choices=sorted(presets), help="named set of values (default fast)")
    types, meanings, defaults = _field_types(cls), field_comments(cls), cls()
    for field in dataclasses.fields(cls):
        if field.name == "preset":
            continue
        annotation = types[field.name]
        value = preset_values.get(field.name, getattr(defaults, field.name))
        meaning = meanings.get(field.name, "")
        help_text = f"{meaning} ({chosen}: {value!r})" if meaning else f"({chosen}: {value!r})"
        if annotation is bool:
            parser.add_argument(f"--{field.name}", action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            literal = typing.get_origin(annotation) is Literal
            parser.add_argument(
                f"--{field.name}",
                type=_converter(annotation),
                default=None,
                choices=typing.get_args(annotation) if literal else None,
                metavar=field.name.upper() if not literal else None,
                help=help_text.replace("%", "%%"),
            )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "preset" and v is not None}
    config = make_config(cls, presets, args.preset, **overrides)
    if config.preset == "smoke":
        print(SMOKE_NOTICE, file=sys.stderr, flush=True)
    return config


def field_comments(cls: type) -> dict[str, str]:
    """``{field: the comment on its line}`` for a config dataclass and its bases (``x: int = 3  # what x is``)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = _FIELD_LINE.match(line)
            if match:
                comments[match["name"]] = match["comment"].strip()
    return comments


_FIELD_LINE = re.compile(r"^\s+(?P<name>[A-Za-z_]\w*)\s*:[^#=]+=[^#]*#\s*(?P<comment>.+)$")


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``error: ...``, exit 2) instead of a usage dump; ``--help`` is full."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain JSON-ready values."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
