"""The import contract: retrofit's layers import one way only.

errors/io → data → policies → adapters → losses → training → methods → application
(Retrofitter, evaluation, compare, collect, CLI, ...). Every import in every module counts,
function-level ones too, read from the source with ``ast`` — so a new upward import fails here.
docs/architecture.md lists every module under its layer; the last test keeps it in step.
"""

from __future__ import annotations

import ast
from pathlib import Path

import retrofit

ROOT = Path(retrofit.__file__).parent
ADAPTERS = ROOT.parent / "adapters"

LAYERS = [
    ("base", ["retrofit", "retrofit.errors", "retrofit.atomic", "retrofit.device",
              "retrofit.metrics_log", "retrofit._compat", "retrofit.tasks",
              "retrofit.envs", "retrofit.progress", "retrofit.thresholds",
              "retrofit.scaling", "retrofit.config_base"]),
    ("data", ["retrofit.data", "retrofit.feedback"]),
    ("policies", ["retrofit.policies"]),
    ("adapters", ["retrofit.adapters"]),
    ("losses", ["retrofit.losses"]),
    ("training", ["retrofit.training"]),
    ("methods", ["retrofit.methods"]),
]
APPLICATION = len(LAYERS)


def layer_of(module: str) -> int:
    """Index of ``module``'s layer (the longest matching prefix); the rest is application."""
    best, length = APPLICATION, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix == "retrofit"
            if (module == prefix or (not exact and module.startswith(prefix + "."))) \
                    and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("retrofit", *parts)).removesuffix(".__init__")
        out[name] = path
    for path in ADAPTERS.rglob("*.py"):
        parts = path.relative_to(ADAPTERS).with_suffix("").parts
        out[".".join(("retrofit.adapters", *parts)).removesuffix(".__init__")] = path
    return out


def imports(path: Path, name: str) -> list[tuple[str, int]]:
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return [(m, line) for m, line in found if m.startswith("retrofit")]


def test_layers_import_downwards_only() -> None:
    known = modules()
    violations = []
    for name, path in sorted(known.items()):
        own = layer_of(name)
        if name == "retrofit":
            continue  # the package's lazy public API re-exports from every layer
        for target, line in imports(path, name):
            if target not in known and target.rpartition(".")[0] not in known:
                continue
            target = target if target in known else target.rpartition(".")[0]
            if target == "retrofit":
                continue  # __version__
            if layer_of(target) > own:
                violations.append(f"{path.relative_to(ROOT.parent)}:{line} {name} "
                                  f"({LAYERS[own][0] if own < APPLICATION else 'application'}) "
                                  f"imports {target}")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_no_import_cycle_between_modules_of_one_package() -> None:
    known = modules()
    graph = {name: {t if t in known else t.rpartition(".")[0] for t, _ in imports(path, name)}
             for name, path in known.items()}
    for a, targets in graph.items():
        for b in targets:
            if b != a and b in graph and a in graph[b] and not (
                    a.endswith("__init__") or b.endswith("__init__")):
                pkg_a, pkg_b = a.rpartition(".")[0], b.rpartition(".")[0]
                if a not in (pkg_b,) and b not in (pkg_a,):
                    raise AssertionError(f"import cycle: {a} <-> {b}")


def test_layer_map_covers_a_known_module_of_each_layer() -> None:
    assert layer_of("retrofit.errors") == 0
    assert layer_of("retrofit.data.dataset") == 1
    assert layer_of("retrofit.methods.prefine") == 6
    assert layer_of("retrofit.retrofitter") == APPLICATION


def documented_layers() -> dict[str, str]:
    """``docs/architecture.md``'s module map: module → the layer section it is listed under."""
    sections = [name for name, _ in LAYERS] + ["application"]
    found: dict[str, str] = {}
    section = None
    for line in (ROOT.parent / "docs" / "architecture.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif section in sections and line.startswith("| `retrofit"):
            module = line.split("`")[1]
            assert module not in found, f"{module} is listed twice in docs/architecture.md"
            found[module] = section
    return found


def test_docs_architecture_lists_every_module_under_its_layer() -> None:
    names = [name for name, _ in LAYERS] + ["application"]
    documented = documented_layers()
    known = modules()
    assert sorted(documented) == sorted(known), (
        f"docs/architecture.md misses {sorted(set(known) - set(documented))} and lists "
        f"{sorted(set(documented) - set(known))}, which do not exist")
    wrong = {m: (where, names[layer_of(m)]) for m, where in documented.items()
             if where != names[layer_of(m)]}
    assert not wrong, f"listed under the wrong layer (docs, contract): {wrong}"
