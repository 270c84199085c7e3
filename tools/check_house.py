"""House rules a tool checks in ``make lint``: layer order, no import cycle, rooms cut to size.

An ``ast`` walk rather than import-linter: three sub-packages (``prompts/``, ``finetune/``, ``ui/``)
install as ``recommender.*`` from top-level folders, which grimp's directory scan cannot see.
Imports inside functions count the same as module-level ones: a lazy import is still a dependency.

    python tools/check_house.py          # prints every breach, exits 1 if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Folder on disk -> the package it installs as (pyproject's [tool.setuptools.package-dir]).
SOURCES = {
    "recommender": "recommender",
    "prompts": "recommender.prompts",
    "finetune": "recommender.finetune",
    "ui": "recommender.ui",
}

# Highest first. A module may import from its own layer's package or any layer below it, never
# from one above. Names on one line are independent siblings: neither may import the other.
LAYERS: list[tuple[str, ...]] = [
    ("recommender.cli",),
    ("recommender.commands",),
    ("recommender.ui",),
    ("recommender.finetune",),
    ("recommender.update",),
    ("recommender.pipeline",),
    ("recommender.ratings", "recommender.pretrained", "recommender.pipeline_config"),
    ("recommender.explain",),
    ("recommender.chat",),
    ("recommender.llm",),
    ("recommender.retrieval",),
    ("recommender.evaluation",),
    (
        "recommender.calibration",
        "recommender.explanation_evidence",
        "recommender.explanation_rubric",
        "recommender.explanation_titles",
        "recommender.explanation_generation",
        "recommender.influence",
        "recommender.store",
        "recommender.histories",
    ),
    ("recommender.ranking", "recommender.text_checks", "recommender.quiet"),
    ("recommender.prompts",),
    ("recommender.protocols",),
    ("recommender.data",),
    ("recommender.assets",),
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
SIZED = ("recommender", "finetune")  # the folders the size rule covers


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT)
    package = SOURCES[relative.parts[0]]
    rest = [p for p in relative.with_suffix("").parts[1:] if p != "__init__"]
    return ".".join([package, *rest])


def imported_modules(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Every ``recommender.*`` module this one imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "recommender" or m.startswith("recommender.")}


def layer_of(module: str) -> tuple[int, str] | None:
    for index, siblings in enumerate(LAYERS):
        for root in siblings:
            if module == root or module.startswith(root + "."):
                return index, root
    return None


def collect() -> tuple[dict[str, Path], dict[str, set[str]]]:
    files: dict[str, Path] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            files[module_name(path)] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = imported_modules(tree, name, path.name == "__init__.py")
        # "from recommender.x import y" names a module only when y is one; keep known modules.
        graph[name] = {t for t in targets if t in files and t != name}
    return files, graph


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    breaches = []
    for source, targets in sorted(graph.items()):
        mine = layer_of(source)
        for target in sorted(targets):
            theirs = layer_of(target)
            if mine is None or theirs is None or mine[1] == theirs[1]:
                continue
            if theirs[0] < mine[0]:
                breaches.append(f"{source} imports {target}: a lower layer may not import a higher one")
            elif theirs[0] == mine[0]:
                breaches.append(f"{source} imports {target}: siblings in one layer stay independent")
    return breaches


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), package __init__s aside."""
    # A package's __init__ re-exporting its children is not a cycle anyone reads as one.
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def size_breaches(files: dict[str, Path]) -> list[str]:
    breaches = []
    for path in files.values():
        if path.relative_to(ROOT).parts[0] not in SIZED:
            continue
        text = path.read_text()
        where = path.relative_to(ROOT)
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            breaches.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    breaches.append(f"{where}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return breaches


def main() -> int:
    files, graph = collect()
    unplaced = sorted(m for m in files if layer_of(m) is None and m != "recommender")
    problems = [f"{m}: in no layer of tools/check_house.py" for m in unplaced]
    problems += layer_breaches(graph)
    problems += ["import cycle: " + " <-> ".join(c) for c in cycles(graph)]
    problems += size_breaches(files)
    for line in problems:
        print(line)
    print(
        f"{len(files)} modules, {sum(map(len, graph.values()))} imports: "
        f"{'all house rules hold' if not problems else f'{len(problems)} breaches'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
