"""The import graph: no module cycle, imports inside functions included; no private imports.

``lint-imports`` (run by ``make test``) checks the layers declared in pyproject.toml; import-linter's
cycle contract only compares siblings, so a cycle through a package's ``__init__`` or a function-level
import would slip through. grimp (import-linter's graph builder) sees every import statement,
including those inside functions, so the whole module graph is checked here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "vlm_anomaly"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_module_imports_itself_back_even_from_inside_a_function():
    # imports under ``if TYPE_CHECKING:`` never run; every other import statement counts
    graph = grimp.build_graph("vlm_anomaly", exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_function_level_imports():
    graph = grimp.ImportGraph()
    for m in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(m)
    graph.add_import(importer="pkg.a", imported="pkg.b", line_number=1, line_contents="from . import b")
    graph.add_import(importer="pkg.b", imported="pkg.a", line_number=9, line_contents="    from . import a")
    graph.add_import(importer="pkg.b", imported="pkg.c", line_number=2, line_contents="from . import c")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]



def test_no_module_imports_another_modules_private_names():
    """A helper two modules need is public (``video/decode.py``), not imported as ``_name``."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            internal = isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith(
                "vlm_anomaly"))
            if internal:
                found += [f"{path.relative_to(SRC)}:{node.lineno} {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_only_video_decode_runs_a_decode_loop():
    """The sampler, the live reader and thumbnails share ``video.decode.decode_frames``: one place
    turns a container into timed frames, so a fix to timestamps or damaged streams reaches them all."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if called and node.func.attr in ("decode", "demux"):
                target = node.func.value
                if isinstance(target, ast.Attribute | ast.Name) and "container" in ast.unparse(target):
                    found.append(str(path.relative_to(SRC)))
    assert found == ["video/decode.py"]


def _package_map() -> list[str]:
    """The paths of the README's package map (the code block that starts ``src/vlm_anomaly/``)."""
    import re

    text = (SRC.parents[1] / "README.md").read_text()
    block = text.split("```\nsrc/vlm_anomaly/\n", 1)[1].split("```", 1)[0]
    return [m.group(1) for line in block.splitlines() if (m := re.match(r"  (\S+)\s{2,}\S", line))]


def test_the_readme_package_map_names_every_package_and_nothing_that_is_not_there():
    """Each package and top-level module has its one line in the map; the map names nothing else."""
    named = _package_map()
    assert len(named) == len(set(named))
    assert [p for p in named if not (SRC / p).exists()] == []  # nothing named that is not there
    packages = {f"{p.name}/" for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in SRC.glob("*.py") if p.name != "__init__.py"}
    assert (packages | modules) - set(named) == set()  # each has its line
    assert {"motion/", "detectors/", "events/", "incidents.py"} <= set(named)  # the flow, default included
