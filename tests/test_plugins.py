"""Third-party agents through the ``mtf_gym.agents`` entry-point group.

Instead of pip-installing ``tests/plugin_pkg`` (slow, and it would leave the venv changed), each test puts the
package's source on ``sys.path`` and "installs" distributions by writing their ``.dist-info`` (METADATA +
entry_points.txt) into a temporary directory that is also put on ``sys.path``: exactly what
``importlib.metadata`` reads for an installed package. Everything is undone when the test ends.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtf_agents import registry as registry_module
from mtf_agents.conformance import check_agent, tiny_dataset
from mtf_agents.registry import AgentRegistry, build_agent, get_registry, load_agent
from mtf_gym.datasets import TransitionData

PLUGIN_PKG = Path(__file__).resolve().parent / "plugin_pkg"

# Extra entry-point targets: a callable returning an AgentSpec, a name clash, a non-agent, a missing module.
EXTRA_MODULE = '''
from mtf_agents.registry import AgentSpec
from mtf_agents_example import EliteConstantAgent


class MedianElite(EliteConstantAgent):
    name = "elite_constant_wide"


def wide_specs():
    return [AgentSpec(name="elite_constant_wide", kind="offline", source="", summary="wider elite",
                      target=MedianElite)]


class Clash(EliteConstantAgent):
    name = "bcq"


not_an_agent = 42
'''


def _install(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mtf_gym.agents]\n{lines}")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "mtf-agents-example", {"elite_constant": "mtf_agents_example:EliteConstantAgent"})
    monkeypatch.syspath_prepend(str(PLUGIN_PKG))
    monkeypatch.syspath_prepend(str(site))
    # The process-wide registry is restored to what it was when monkeypatch undoes this.
    monkeypatch.setattr(registry_module, "_REGISTRY", None)
    yield site


@pytest.fixture(scope="module")
def tiny_data() -> TransitionData:
    return tiny_dataset()


def test_plugin_is_registered_with_its_distribution(plugin_site: Path) -> None:
    registry = get_registry(refresh=True)
    spec = registry.get("elite_constant")
    assert spec.kind == "offline" and spec.source == "mtf-agents-example"
    assert "mean action" in spec.summary
    assert registry.failed_plugins == ()
    builtin = {s.name for s in registry_module.BUILTIN_AGENTS}
    assert set(registry.names()) == builtin | {"elite_constant"}


def test_plugin_passes_agent_conformance(plugin_site: Path, tiny_data: TransitionData, tmp_path: Path) -> None:
    get_registry(refresh=True)
    check_agent("elite_constant", data=tiny_data, bad_value=("elite_fraction", 0.0))
    agent = build_agent("elite_constant", elite_fraction=0.5)
    agent.fit(tiny_data, n_steps=1, show_progress=False)
    assert type(load_agent(agent.save(tmp_path / "again"))).__name__ == "EliteConstantAgent"


def test_callable_entry_point_returning_specs(plugin_site: Path) -> None:
    (plugin_site / "mtf_agents_extra.py").write_text(EXTRA_MODULE)
    _install(plugin_site, "mtf-agents-extra", {"wide": "mtf_agents_extra:wide_specs"})
    spec = get_registry(refresh=True).get("elite_constant_wide")
    assert spec.source == "mtf-agents-extra" and spec.summary == "wider elite"
    assert type(build_agent("elite_constant_wide")).__name__ == "MedianElite"


def test_broken_plugins_are_reported_and_skipped(plugin_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (plugin_site / "mtf_agents_extra.py").write_text(EXTRA_MODULE)
    _install(plugin_site, "mtf-agents-broken", {
        "missing": "mtf_agents_no_such_module:Agent",
        "clash": "mtf_agents_extra:Clash",
        "number": "mtf_agents_extra:not_an_agent",
    })
    with pytest.warns(RuntimeWarning, match="plug-in") as caught:
        registry = get_registry(refresh=True)
    assert len(caught) == 3
    errors = {failed.entry_point.split(" = ")[0]: failed.error for failed in registry.failed_plugins}
    assert set(errors) == {"missing", "clash", "number"}
    assert errors["missing"].startswith("ModuleNotFoundError") and "mtf_agents_no_such_module" in errors["missing"]
    assert "already registered by 'builtin'" in errors["clash"]
    assert errors["number"].startswith("TypeError")
    assert {f.distribution for f in registry.failed_plugins} == {"mtf-agents-broken"}
    assert registry_module.failed_plugins == registry.failed_plugins  # module-level view
    # The good plug-in and every built-in still work; the clash did not replace the built-in BCQ.
    assert "elite_constant" in registry and registry.get("bcq").source == "builtin"

    from mtf_agents.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `list` prints failures instead of warning
        assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "elite_constant" in out and "mtf-agents-example" in out
    assert "failed plug-ins" in out and "mtf_agents_no_such_module" in out and "ModuleNotFoundError" in out


def test_registry_rejects_duplicate_names() -> None:
    spec = registry_module.BUILTIN_AGENTS[0]
    with pytest.raises(ValueError, match="registered twice"):
        AgentRegistry([spec, spec])


def _page_blocks() -> dict[str, str]:
    """The code blocks of docs/plugins.md, keyed by the file name the page gives right above them (``x``: then a
    fence), or by their language for unnamed blocks (the first of each)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    blocks: dict[str, str] = {}
    for m in re.finditer(r"(?:^`([^`\n]+)`:\n\n)?^```(\w*)\n(.*?)^```$", text, re.M | re.S):
        blocks.setdefault(m.group(1) or m.group(2), m.group(3))
    return blocks


def test_the_plugins_page_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           tiny_data: TransitionData, capsys: pytest.CaptureFixture[str]) -> None:
    # Follow docs/plugins.md literally: the two files it shows, "installed" from the page's pyproject.toml (its
    # name and entry points, written as the .dist-info pip would write), then the page's commands and snippets.
    import tomllib

    blocks = _page_blocks()
    project = tmp_path / "mtf-agents-example"
    (project / "mtf_agents_example").mkdir(parents=True)
    (project / "pyproject.toml").write_text(blocks["pyproject.toml"])
    (project / "mtf_agents_example" / "__init__.py").write_text(blocks["mtf_agents_example/__init__.py"])
    meta = tomllib.loads(blocks["pyproject.toml"])["project"]
    site = tmp_path / "site"
    site.mkdir()
    _install(site, meta["name"], meta["entry-points"]["mtf_gym.agents"])
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "mtf_agents_example", raising=False)  # the page's copy, not tests/plugin_pkg
    monkeypatch.setattr(registry_module, "_REGISTRY", None)
    monkeypatch.chdir(tmp_path)

    from mtf_agents.cli import main

    assert main(["list"]) == 0
    listed = next(line for line in blocks["console"].splitlines() if line.startswith("elite_constant"))
    assert listed.split() in [line.split() for line in capsys.readouterr().out.splitlines()]
    exec(blocks["python"], {"data": tiny_data})  # build, fit, save to runs/elite, load
    assert (tmp_path / "runs" / "elite" / "agent.json").is_file()
    check_snippet = next(b for b in re.findall(r"^```python\n(.*?)^```$", (Path(__file__).resolve().parents[1] / "docs"
                                                                          / "plugins.md").read_text(), re.M | re.S)
                         if "check_agent" in b)
    exec(check_snippet, {})  # the conformance checker, as the page runs it

    # "Benchmark it": the page's mtf-bench command, in-process (the harness reads the same registry).
    import shlex

    from mtf_bench.harness.cli import main as bench

    argv = shlex.split(blocks["bash"].strip())
    assert argv[0] == "mtf-bench"
    assert bench(argv[1:]) == 0
    runs = (tmp_path / "results" / "smoke" / "runs.csv").read_text()
    assert "elite_constant" in runs
    assert "| elite_constant | uniform |" in (tmp_path / "results" / "smoke" / "report.md").read_text()
