"""The package's layers (docs/architecture.md) hold: no import cycle between modules, and no import from a lower
layer to a higher one. Every import counts, function-local ones included (none may dodge a cycle)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "selfcascade"
# Lowest first: a module may import from its own layer and the ones before it.
LAYERS = ["errors", "files", "models", "diffusion", "adapters", "cascade", "training", "shapes", "ui", "api"]
DATA = {"assets"}  # package data (the shipped models, adapters and presets), no modules: not a layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """selfcascade.<layer>...; the package's own __init__ and __main__ are its API, above everything."""
    parts = module.split(".")
    return "api" if len(parts) == 1 or parts[1] == "__main__" else parts[1]


def imports(path: Path, module: str) -> set[str]:
    """The selfcascade modules `path` imports (a name imported from a package that is a module counts as it)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("selfcascade")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + [node.module] if node.module else base) if node.level else node.module or ""
            if target.startswith("selfcascade"):
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in MODULES else target)
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {module: imports(path, module) & set(MODULES) for module, path in MODULES.items()}


def test_every_top_level_entry_is_a_known_layer():
    entries = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
               if path.name != "__pycache__"}
    assert entries <= set(LAYERS) | {"__init__", "__main__"} | DATA, entries - set(LAYERS) - DATA
    assert len(entries) <= 12


def test_no_import_runs_upward():
    upward = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
              for module, targets in GRAPH.items() for target in targets
              if LAYERS.index(layer(target)) > LAYERS.index(layer(module))]
    assert upward == []


def test_no_import_cycle():
    cycles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_package_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        assert (ast.get_docstring(ast.parse(init.read_text())) or "").strip(), f"{init} has no docstring"


LONGEST_FUNCTION = 60  # lines; the UI's event wiring and the shapes world's scripts are exempt (docs/architecture.md)


def test_no_library_function_is_longer_than_a_screen():
    long = []
    for module, path in MODULES.items():
        if layer(module) in ("ui", "shapes"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long
