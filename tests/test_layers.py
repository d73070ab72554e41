"""The layers point one way (``mtf_gym`` <- ``mtf_agents`` <- ``mtf_bench``), and the base layer runs on a core install.

The import names ``mtf_agents`` and ``mtf_bench`` are the folders ``agents/`` and ``benchmarks/`` (pyproject.toml maps
them); the folders' own names are not importable.

See docs/design.md, section "Layers".
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Packages of the optional extras (agents, datasets, bench, ray, test tooling aside): a core install has none.
OPTIONAL = ("torch", "d3rlpy", "stable_baselines3", "scipy", "minari", "h5py", "matplotlib", "sklearn", "faiss",
            "optuna", "rliable", "ray", "cma", "k_means_constrained", "gym")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (function-level imports included), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imported_modules(path):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize(("folder", "forbidden"), [("mtf_gym", ("mtf_agents", "mtf_bench")),
                                                   ("agents", ("mtf_bench",))])
def test_lower_layers_never_import_higher_ones(folder: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(folder, forbidden) == []


@pytest.mark.parametrize("folder", ["mtf_gym", "agents", "benchmarks", "tests"])
def test_nothing_imports_the_folder_names(folder: str) -> None:
    """``agents`` and ``benchmarks`` are generic names other distributions install; the project imports itself only
    as ``mtf_agents`` / ``mtf_bench``."""
    assert _violations(folder, ("agents", "benchmarks")) == []


@pytest.mark.parametrize(("folder", "name"), [("agents", "mtf_agents"), ("benchmarks", "mtf_bench")])
def test_the_folder_name_is_not_an_import_name(folder: str, name: str) -> None:
    """Run from the repository root, ``import agents`` would find the folder; its ``__init__`` refuses with the
    name to use instead of loading a second copy of the package."""
    out = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and f"import it as {name}" in out.stderr, out.stderr
    ok = subprocess.run([sys.executable, "-c", f"import {name}; print({name}.__file__)"], cwd=ROOT,
                        capture_output=True, text=True, check=True)
    assert Path(ok.stdout.strip()).parent == ROOT / folder


def test_the_scan_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from mtf_agents.registry import get_registry\n    import mtf_bench.harness\n"
                      "    importlib.import_module('mtf_agents.es')\n")
    assert [m for _, m in _imported_modules(source)] == ["mtf_agents.registry", "mtf_bench.harness", "mtf_agents.es"]


_CORE_INSTALL = textwrap.dedent("""
    import importlib.abc, sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not in a core install)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    try:
        import scipy  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the blocker does not work")

    import gymnasium as gym
    import mtf_gym
    import mtf_gym.evaluation
    import mtf_gym.datasets
    import mtf_gym.datasets.cli
    from mtf_gym.config import MTFSessionConfig

    env = gym.make("MTFSession-v0")
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(env.action_space.sample())
    config = MTFSessionConfig(max_requests=3)
    outcomes = mtf_gym.evaluation.simulate_sessions(mtf_gym.BaselinePolicy(config), 4, 0, config)
    data = mtf_gym.datasets.collect(mtf_gym.BaselinePolicy(config), sessions=3, seed=0, config=config, num_envs=2,
                                    progress=False)
    upper = ("mtf_agents", "mtf_bench")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED or m.split(".")[0] in upper)
    print("ok", outcomes.num_sessions, data.num_episodes, leaked)
""")


def test_core_install_imports_and_runs_without_optional_packages() -> None:
    script = _CORE_INSTALL.format(blocked=set(OPTIONAL))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "ok 4 3 []"


def test_every_package_folder_is_installed() -> None:
    """pyproject.toml lists the packages by hand (the import names differ from the folders): a new subpackage must
    be added there, or an installed copy would lack it."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {v: k for k, v in setuptools["package-dir"].items()}
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        parts = init.parent.relative_to(ROOT).parts
        if parts[0] in ("mtf_gym", *folders):
            found.add(".".join((folders.get(parts[0], parts[0]), *parts[1:])))
    assert found == set(setuptools["packages"])
