"""How tests load an experiment script (experiments/ is not a package): one module per script, imported once.

Tests reach the package for configs, presets and studies; a script is loaded only to test its command line
(``main``) or the figures and reports it owns.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(name: str) -> ModuleType:
    """``experiments/<name>.py`` as a module."""
    module_name = f"experiment_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXPERIMENTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses resolve field annotations through sys.modules
        spec.loader.exec_module(module)
    return sys.modules[module_name]
