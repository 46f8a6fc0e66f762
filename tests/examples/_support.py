"""Helpers of the example tests: load the scripts of `examples/` (not a package) as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from zomro_async.testing._ids import DOOMED_INSTANCE_ID, fleet_ids

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The ids the docs and the CLI's emulators use, each meaning the same here.
VM, OTHER_VM, SLOW_VM = fleet_ids(3)
DOOMED_VM = DOOMED_INSTANCE_ID  # every snapshot of it ends Killed


def load_example(name: str) -> ModuleType:
    """`examples/<name>.py` as a module, imported once per test session."""
    module_name = f"zomro_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
