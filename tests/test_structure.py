"""The package's shape, checked: its import graph has no cycle (function-level imports counted),
and nothing outside a method's own file compares that method's name."""

import ast
from pathlib import Path

import pixtrans
import pixtrans.methods  # noqa: F401 - registers the methods
from pixtrans.registry import METHODS

SRC = Path(pixtrans.__file__).parent


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """pixtrans modules `path` imports anywhere (top level or inside functions). `from pkg import x`
    counts as importing pkg.x when that is a module, else pkg itself."""
    out = set()
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("pixtrans"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            if not base.startswith("pixtrans"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    out.discard(here)
    return {m for m in out if m in known}


def test_import_graph_has_no_cycle():
    known = modules()
    graph = {name: imported(path, known) for name, path in known.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _names_compared(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            for v in values:
                if isinstance(v, ast.Constant) and v.value in names:
                    found.append((node.lineno, v.value))
    return found


def test_no_module_compares_a_method_name_but_the_method_itself():
    names = set(METHODS.names())
    assert {"pix2pix", "cyclegan", "pix2pixhd"} <= names
    offenders = []
    for name, path in modules().items():
        for line, method in _names_compared(ast.parse(path.read_text()), names):
            if name != f"pixtrans.methods.{method}" and name != "pixtrans.registry":
                offenders.append(f"{path.relative_to(SRC)}:{line} compares '{method}'")
    assert not offenders, "; ".join(offenders)
