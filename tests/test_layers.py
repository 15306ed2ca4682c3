"""The package's layers hold: no import cycle among simulator's modules (every import counts,
those inside functions and TYPE_CHECKING blocks too), and the core never imports textual."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import simulator

PACKAGE = Path(simulator.__file__).parent


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the package under `root`, by dotted name."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path) -> set[str]:
    """The dotted names `module` imports anywhere in its file (lazy imports included)."""
    names = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name resolves to its longest module)."""
    modules = _modules(root)
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges[module] = set()
        for name in _imported(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges[module].add(name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_cycle() -> None:
    cycles = _cycles(_graph(PACKAGE))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from pkg.high import g\n")
    (package / "high.py").write_text("from . import low\n")
    (package / "apart.py").write_text("import pkg.low\n")
    assert _cycles(_graph(package)) == [["pkg.high", "pkg.low"]]


def test_the_core_never_imports_textual() -> None:
    core = {m: p for m, p in _modules(PACKAGE).items() if not m.startswith("simulator.tui")}
    importing = sorted(m for m, p in core.items()
                       if any(n == "textual" or n.startswith("textual.")
                              for n in _imported(m, p)))
    assert not importing, f"the core imports textual: {importing}"


def test_loading_the_core_and_the_cli_loads_no_textual() -> None:
    core = [m for m in _modules(PACKAGE) if not m.startswith("simulator.tui")
            and m not in ("simulator.__main__", "simulator.locust")]  # locust: optional extra
    code = ("import importlib, sys\n"
            f"for name in {sorted(core)!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# The faces: the modules that own command-line flags (click options, Locust's options, the
# pytest plugin's, the settings table's flag column) and the terminal UI.
FACES = ("simulator.cli", "simulator.params", "simulator.kinds.options", "simulator.locust",
         "simulator.pytest_plugin", "simulator.settings")


def test_the_core_names_fields_in_its_errors_and_only_faces_name_flags() -> None:
    flag = re.compile(r"(?<![\w-])--[a-z]")
    command = re.compile(r"`wasim [^`]*`")  # a whole command to run, quoted, may have flags
    found = []
    for module, path in _modules(PACKAGE).items():
        if module in FACES or module.startswith("simulator.tui"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            texts: list[ast.AST] = []
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "WasimError":
                texts = [*node.args, *(k.value for k in node.keywords)]
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and t.attr in ("hint", "what", "where")
                    for t in node.targets):
                texts = [node.value]
            for text in texts:
                found += [f"{module}:{c.lineno}" for c in ast.walk(text)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)
                          and flag.search(command.sub("", c.value))]
    assert not found, f"a flag in the core's error text (use errors.named(field)): {found}"
