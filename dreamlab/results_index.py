"""``results/README.md``: an index of every committed result, generated from the result files themselves.

    python -m dreamlab.results_index

For each module folder it lists each result file with what produced it (experiment, preset, command, commit, wall
time), its headline numbers, and the figures and data files that share its name. A test fails when the committed
index differs from what this module generates, so a result cannot be added without appearing here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dreamlab.config import committed_results_dir
from dreamlab.files import atomic_write_text

INDEX_NAME = "README.md"
FIGURE_SUFFIXES = (".png", ".gif")
_FALLBACK_METRICS = 4  # the first scalar metrics of an experiment without chosen headlines

# The numbers each experiment is judged by, as paths into its metrics ("a.b.c"; "*" expands every key of a dict).
# A path a result lacks (written before the metric existed) is skipped.
HEADLINES: dict[str, tuple[str, ...]] = {
    "cmaes_benchmark": ("*.dreamlab.median_evaluations", "*.pycma.median_evaluations"),
    "cmaes_schaffer": ("success_rate", "evaluations_to_ftarget", "best_loss"),
    "colorize": ("held_out_mae_hint", "held_out_mae_no_hint", "steps"),
    "dnc_benchmark": ("by_threads.*.speedup_over_pytorch_dnc.*",),
    "dnc_copy": ("bit_error_at_1x_length.*", "bit_error_at_2x_length.*"),
    "dnc_dsprites": ("next_image_bce", "pixel_marginal_bce"),
    "dnc_dsprites_summary": ("next_image_bce.*",),
    "draw": ("test_nll_nats", "test_reconstruction", "test_kl_nats", "steps"),
    "mdn_toy": ("test_nll_mdn", "test_nll_mse_gaussian"),
    "pixelcopter_benchmark": ("vector.*.median_steps_per_second", "single_state.median_steps_per_second"),
    "pommerman_benchmark": ("single_process.*.steps_per_cpu_second", "parallel.*.steps_per_second"),
    "pommerman_next_state": ("overall_accuracy", "copy_baseline.overall_accuracy", "trained_transitions"),
    "rnd_pixelcopter": ("eval_mean_return", "eval_mean_length", "env_steps"),
    "sncgan": ("mean_attribute_accuracy", "min_attribute_accuracy", "feature_fid", "steps"),
    "worldmodels": ("real_mean", "real_std", "episodes", "generations", "solved"),
    "worldmodels_compare": ("cores.*.real_mean", "cores.*.runs"),
    "worldmodels_dream_benchmark": ("speedup", "batched_steps_per_second", "one_at_a_time_steps_per_second"),
}


@dataclass
class Entry:
    """One result file and the files that share its name."""

    path: Path
    record: dict[str, Any]
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)


def headline(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (name, value) pairs a reader looks at first for this result."""
    metrics = record.get("metrics", {})
    paths = HEADLINES.get(record.get("experiment", ""))
    if paths is None:
        scalars = [(k, v) for k, v in metrics.items() if _is_scalar(v)]
        return scalars[:_FALLBACK_METRICS]
    return [pair for path in paths for pair in _lookup(metrics, path.split("."), [])]


def _lookup(value: Any, keys: Sequence[str], trail: list[str]) -> Iterator[tuple[str, Any]]:
    if not keys:
        if _is_scalar(value):
            yield ".".join(trail), value
        return
    key, rest = keys[0], keys[1:]
    if isinstance(value, list):
        value = {str(i): item for i, item in enumerate(value)}
    if not isinstance(value, dict):
        return
    for name in value if key == "*" else [key] if key in value else []:
        yield from _lookup(value[name], rest, [*trail, name])


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and abs(value) >= 1000:
        return f"{value:,.0f}"  # rates and counts: 1,564,284 rather than 1.564e+06
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ignored(root: Path, paths: list[Path]) -> set[Path]:
    """Those of ``paths`` git ignores (left-over bulk files, not results); none outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "check-ignore", "--stdin"],
            cwd=root,
            input="\n".join(str(p.relative_to(root)) for p in paths),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    return {root / line for line in out.stdout.splitlines() if line} if out.returncode in (0, 1) else set()


def collect(results_dir: Path) -> dict[str, tuple[list[Entry], list[Path]]]:
    """Per module folder: its result entries (sorted by name) and the files no result claims."""
    files = sorted(p for p in results_dir.glob("*/**/*") if p.is_file())
    ignored = _ignored(results_dir, files)
    files = [p for p in files if p not in ignored]
    modules: dict[str, tuple[list[Entry], list[Path]]] = {}
    for folder in sorted({p.parent for p in files}):
        inside = [p for p in files if p.parent == folder]
        entries = {p.stem: Entry(p, json.loads(p.read_text())) for p in inside if p.suffix == ".json"}
        others = []
        for path in (p for p in inside if p.suffix != ".json"):
            # The longest result name that prefixes the file's: sncgan_sprites_bg0_fid.png belongs to
            # sncgan_sprites_bg0, not sncgan_sprites.
            owners = [n for n in entries if path.stem == n or path.name.startswith(f"{n}_")]
            if not owners:
                others.append(path)
                continue
            entry = entries[max(owners, key=len)]
            (entry.figures if path.suffix in FIGURE_SUFFIXES else entry.data).append(path)
        modules[folder.relative_to(results_dir).as_posix()] = (list(entries.values()), others)
    return modules


def render(results_dir: Path) -> str:
    """The index's Markdown text for the files under ``results_dir``."""
    modules = collect(results_dir)
    lines = [
        "# Committed results",
        "",
        "Generated by `python -m dreamlab.results_index` from the files below; do not edit by hand. A run writes",
        "under the git-ignored `runs/results/` unless given `--results_dir results`; after adding a result here,",
        "regenerate this index (a test fails until then).",
        "",
        "| module | results | figures |",
        "|---|---|---|",
    ]
    for module, (entries, others) in modules.items():
        figures = sum(len(e.figures) for e in entries) + sum(p.suffix in FIGURE_SUFFIXES for p in others)
        lines.append(f"| [`{module}`](#{module.replace('/', '')}) | {len(entries)} | {figures} |")
    for module, (entries, others) in modules.items():
        lines += ["", f"## {module}", ""]
        for entry in entries:
            lines += _render_entry(entry, results_dir)
        if others:
            lines.append(f"- other files: {_links(others, results_dir)}")
    return "\n".join(lines) + "\n"


def _render_entry(entry: Entry, results_dir: Path) -> list[str]:
    record = entry.record
    config = record.get("config", {})
    preset = f", preset `{config['preset']}`" if config.get("preset") else ""
    commit = str(record.get("git_commit", "unknown"))
    commit = f"{commit[:7]} (uncommitted changes)" if commit.endswith("-dirty") else commit[:7]
    about = f"`{record['experiment']}`{preset}, {_duration(float(record['wall_seconds']))}, commit {commit}"
    lines = [f"- **{_links([entry.path], results_dir)}**: {about}", f"  - command: `{record['command']}`"]
    numbers = headline(record)
    if numbers:
        lines.append("  - " + ", ".join(f"{name} **{_format(value)}**" for name, value in numbers))
    if entry.figures:
        lines.append(f"  - figures: {_links(entry.figures, results_dir)}")
    if entry.data:
        lines.append(f"  - data: {_links(entry.data, results_dir)}")
    return lines


def _links(paths: list[Path], results_dir: Path) -> str:
    return ", ".join(f"[{p.name}]({p.relative_to(results_dir).as_posix()})" for p in paths)


def write_index(results_dir: str | Path | None = None) -> Path:
    """Write ``results_dir/README.md`` (the repository's ``results/`` by default) and return its path."""
    folder = Path(results_dir) if results_dir is not None else committed_results_dir()
    return atomic_write_text(folder / INDEX_NAME, render(folder))


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    path = write_index()
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
