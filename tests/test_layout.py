"""The package's shape: imports run down the pipeline's stages, and no module imports itself
back through others (docs/architecture.rst)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mkl_tp"

# Stage of each top-level part of the package, in pipeline order. A module may import from
# its own part or from a part of a lower stage, never from a higher one.
STAGES = {
    "_utils": 0,
    "sources": 1,
    "store": 2,
    "extraction": 3,
    "pyramid": 3,
    "kernels": 4,
    "solvers": 5,
    "estimator": 6,
    "fusion": 6,
    "deep": 6,
    "experiment": 7,
    "extract": 8,
    "fit": 8,
    "predict": 8,
    "reproduce": 9,  # runs python -m mkl_tp.fit's sweeps
    "__init__": 10,
}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """Absolute names of the mkl_tp modules or attributes a file imports, lazily or not."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mkl_tp"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("mkl_tp"):
                found.update(f"{target}.{a.name}" for a in node.names)
    return found


def _part(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(name, modules):
    """The longest prefix of ``name`` that is a module of the package."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _graph():
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f): f for f in files}
    return {m: {_resolve(i, modules) for i in _imports(f)} - {m} for m, f in modules.items()}


def test_every_part_of_the_package_has_a_stage():
    parts = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert parts == set(STAGES), parts ^ set(STAGES)


def test_imports_run_down_the_stages():
    upward = []
    for module, targets in _graph().items():
        for target in targets:
            if target == "mkl_tp" and module != "mkl_tp":
                continue  # only ``__version__`` is imported from the root (checked below)
            if STAGES[_part(target)] > STAGES[_part(module)]:
                upward.append(f"{module} -> {target}")
            elif STAGES[_part(target)] == STAGES[_part(module)] and _part(target) != _part(module):
                if not {_part(target), _part(module)} <= {"estimator", "fusion", "deep"}:
                    upward.append(f"{module} -> {target} (same stage)")
    assert not upward, "\n".join(sorted(upward))


def test_only_the_version_is_imported_from_the_root():
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        from_root = {i for i in _imports(path) if i.count(".") == 1 and i.startswith("mkl_tp.")}
        from_root = {
            i
            for i in from_root
            if not (PACKAGE / i.split(".")[1]).exists()
            and not (PACKAGE / (i.split(".")[1] + ".py")).exists()
        }
        assert from_root <= {"mkl_tp.__version__"}, (path, from_root)


def test_no_import_cycles():
    graph = _graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # A package's __init__ importing its own submodules is how re-exports work; a cycle
    # through a package's __init__ and back is only one if it leaves the package.
    real = [
        c
        for c in cycles
        if len({n.split(".")[1] if "." in n else "" for n in c.split(" -> ")}) > 1
        or not any(n.count(".") == 1 for n in c.split(" -> "))
    ]
    assert not real, "\n".join(real)
