"""The repository's map, as docs/development.md draws it: no import circle among the pack's modules, no
source file over 600 lines, and benchmarks/ and dev/ never reach into tests/ (tests may use dev/)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGES = ("npnet", "dpsl", "nodes", "golden_noise_webui")
SKIPPED_DIRS = {".git", ".venv", ".comfyui", ".gpu", "test-artifacts", "__pycache__", "node_modules"}


def source_files(*tops: str) -> list[Path]:
    roots = [REPO_ROOT / top for top in tops] if tops else [REPO_ROOT]
    return sorted(
        path
        for root in roots
        for path in root.rglob("*.py")
        if not SKIPPED_DIRS.intersection(path.relative_to(REPO_ROOT).parts)
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> list[tuple[str, ...]]:
    """What `path` imports, relative imports made absolute, one tuple of candidates per name: (a,) for
    `import a`, (a.b, a) for `from a import b` (b is the module a.b if there is one, else a name in a).
    Imports inside functions and TYPE_CHECKING blocks count."""
    name, names = module_name(path), []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [(alias.name,) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [(f"{module}.{alias.name}", module) for alias in node.names]
    return names


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in source_files(*PACKAGES)}

    def known(candidates: tuple[str, ...]) -> str | None:
        """The first candidate that is one of the pack's modules, or the package that holds it."""
        for name in candidates:
            if name in modules:
                return name
        name = candidates[-1]
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets = {known(candidates) for candidates in imported_names(path)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it, or None (depth-first search with colours)."""
    state, trail = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        trail.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_the_imports_it_must_see():
    """The checks below are only as good as the graph: known edges are in it."""
    graph = import_graph()
    assert "dpsl.chunks" in graph["dpsl.engine"]
    assert "dpsl.kernels" in graph["dpsl.chunks"]
    assert "npnet.learning.loop" in graph["npnet.learning.reward_training"]
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_among_the_packs_modules():
    assert find_circle(import_graph()) is None


def test_no_source_file_over_600_lines():
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for p in source_files()
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def test_benchmarks_and_dev_import_nothing_from_tests():
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in source_files("benchmarks", "dev")
        for candidates in imported_names(path)
        for name in candidates[-1:]
        if name == "tests" or name.startswith("tests.")
    ]
    # ... nor load a file of tests/ by path (the benchmarks have no reason to name that folder)
    offenders += [
        f"{path.relative_to(REPO_ROOT)}: names the tests folder"
        for path in source_files("benchmarks")
        if any(
            isinstance(node, ast.Constant) and node.value == "tests"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert not offenders, offenders
