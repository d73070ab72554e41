"""Every file (and section) that the docs and the code's docstrings and comments cite exists in the repository.

The rule, applied to every Markdown file and to every Python docstring and comment of the repository:

* a **Markdown link** ``[text](target)`` must resolve: ``target`` relative to the page (or to the repository root),
  and its ``#anchor``, if any, must be a heading of the target page (GitHub's heading slugs);
* a **repository path**, a word whose first part is a top-level folder of the repository (``docs/x.md``,
  ``mtf_gym/y.py``, ``agents/integrated_rl/``), must exist, relative to the repository root or to the citing file's
  folder (``agents/es.md`` from ``docs/``), and so must its ``#anchor`` on a Markdown page;
* a **bare Markdown name** in capitals (``NOTES.md``, ``README.md``) must exist beside the citing file, at the
  root, or in ``docs/``.

Not checked, by design: URLs; words with glob or placeholder characters (``perf_*.py``, ``<name>``, ``{seed}``);
paths whose first part is not a top-level folder of the repository, which are outputs or examples
(``results/quick/report.md``, ``runs/iql/agent.json``, ``datasets/mtf/...``) or other projects' files
(SB3's ``common/evaluation.py``); bare lower-case names (``cartpole.py``, ``result.json``).
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# This file states the rule with examples of missing files on purpose.
SELF = "tests/test_docs.py"

# Files allowed, for now, to cite a file that is not there yet ({path: cited name}); empty when every citation holds.
# Remove an entry once its file is fixed (test_pending_exemptions_are_still_needed says when).
PENDING: dict[str, str] = {}

_SPLIT = re.compile(r"[\s`'\"()\[\],;|=<>]+")
_LINK = re.compile(r"\]\(([^()\s]+)\)")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+|mailto:\S+|www\.\S+", re.IGNORECASE)
_SKIP_CHARS = set("*?{}$%~\\")
_TRAILING = ".,;:!?"


def repository_files() -> list[Path]:
    """Tracked files and untracked ones git does not ignore (the tree a fresh clone plus the change would have)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout")
    return [ROOT / line for line in out.splitlines() if line and (ROOT / line).is_file()]


@cache
def top_level() -> frozenset[str]:
    return frozenset(p.relative_to(ROOT).parts[0] for p in repository_files())


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    found, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.append(slug(m.group(1)))
    return frozenset(found)


def _check_target(word: str, source: Path, bases: tuple[Path, ...] | None = None) -> str | None:
    """Why ``word`` (``path[#anchor]``) cited in ``source`` does not resolve, or None if it does."""
    path, _, anchor = word.partition("#")
    if path:
        target = None
        for base in bases or (source.parent, ROOT):
            candidate = (base / path).resolve()
            if candidate.exists() and ROOT in (candidate, *candidate.parents):
                target = candidate
                break
        if target is None:
            return f"{word}: no such file"
    else:
        target = source
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"{word}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}"
    return None


def cited_problems(text: str, source: Path) -> list[str]:
    """Problems with the file citations in ``text`` (a Markdown page, a docstring or a comment of ``source``)."""
    problems = []
    if source.suffix == ".md":
        for target in _LINK.findall(text):
            if _URL.match(target) or target.startswith("mailto:"):
                continue
            if (why := _check_target(target, source)) is not None:
                problems.append(why)
    text = _URL.sub(" ", _LINK.sub("]", text))  # links are checked above; URLs never
    for raw in _SPLIT.split(text):
        word = raw.split("::")[0]  # a pytest node id names its file
        word = word.rstrip(_TRAILING).lstrip("./") if not word.startswith("../") else word.rstrip(_TRAILING)
        if not word or _SKIP_CHARS & set(word):
            continue
        first = word.split("/")[0]
        if "/" in word and (first in top_level() or first == ".."):
            why = _check_target(word, source)
        elif "/" not in word and re.fullmatch(r"[A-Z][A-Z0-9_-]*\.md(#[\w-]+)?", word):
            why = _check_target(word, source, (source.parent, ROOT, ROOT / "docs"))
        else:
            continue
        if why is not None:
            problems.append(why)
    return problems


def python_prose(path: Path) -> list[tuple[int, str]]:
    """Docstrings (module, class, function) and comments of a Python file, with their first line."""
    source = path.read_text(encoding="utf-8")
    out = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
           if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
                    body[0].value.value, str):
                out.append((body[0].lineno, body[0].value.value))
    return out


def all_problems() -> list[str]:
    problems = []
    for path in repository_files():
        rel = str(path.relative_to(ROOT))
        if rel == SELF:
            continue
        if path.suffix == ".md":
            chunks = list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))
        elif path.suffix == ".py":
            chunks = python_prose(path)
        else:
            continue
        for line, text in chunks:
            for why in cited_problems(text, path):
                if PENDING.get(rel) and why.startswith(PENDING[rel]):
                    continue
                problems.append(f"{rel}:{line}: {why}")
    return problems


def test_every_cited_file_and_section_exists() -> None:
    assert all_problems() == []


def test_pending_exemptions_are_still_needed() -> None:
    for rel, word in PENDING.items():
        path = ROOT / rel
        texts = [path.read_text(encoding="utf-8")] if path.suffix == ".md" else [t for _, t in python_prose(path)]
        assert any(word in t for t in texts), f"{rel} no longer cites {word}: remove it from PENDING"


@pytest.mark.parametrize(("text", "expected"), [
    ("see NOTES.md 3", ["NOTES.md: no such file"]),
    ("details in docs/no_such_page.md.", ["docs/no_such_page.md: no such file"]),
    ("`mtf_gym/gone.py` does it", ["mtf_gym/gone.py: no such file"]),
    ("docs/design.md#no-such-section", ["docs/design.md#no-such-section: no heading with anchor #no-such-section in "
                                        "docs/design.md"]),
    ("[the card](environment.md#not-a-heading)", ["environment.md#not-a-heading: no heading with anchor "
                                                   "#not-a-heading in docs/environment.md"]),
    ("[gone](missing.md)", ["missing.md: no such file"]),
])
def test_a_planted_bad_citation_is_caught(text: str, expected: list[str]) -> None:
    assert cited_problems(text, ROOT / "docs" / "planted.md") == expected


@pytest.mark.parametrize("text", [
    "docs/design.md#exploration and mtf_gym/evaluation.py and agents/integrated_rl/",
    "[the card](environment.md#action-space), [zoo](agents/README.md), [up](../README.md)",
    "written to results/quick/report.md and runs/iql/agent.json",           # outputs: not repository paths
    "https://github.com/x/y/blob/main/NOTES.md and www.example.org/a.md",  # URLs
    "benchmarks/perf_*.py, datasets/<id>/data, mtf_gym/{a,b}.py",              # globs and placeholders
    "SB3's common/evaluation.py and Gymnasium's cartpole.py",               # other projects' files
])
def test_what_the_rule_leaves_alone(text: str) -> None:
    assert cited_problems(text, ROOT / "docs" / "planted.md") == []
