"""The package's shape: modules by job, no import cycle, no use of another module's private names,
no module longer than one sitting (../shared/STYLE.md)."""

import ast
import glob
import os

from launchers import REPO

MODULES = {
    os.path.basename(path)[:-3]: path for path in glob.glob(os.path.join(REPO, "tfps", "*.py"))
}
MAX_LINES = 400


def _tree(name):
    with open(MODULES[name]) as f:
        return ast.parse(f.read())


def _imports(name):
    """The tfps modules `name` imports (at any depth of its code), and under which local names."""
    imported = {}
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module == "tfps":
            for alias in node.names:
                imported[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tfps."):
                    imported[alias.asname or alias.name] = alias.name.split(".")[1]
    return imported


def test_no_import_cycle():
    graph = {name: set(_imports(name).values()) & set(MODULES) for name in MODULES}
    done, path = set(), []

    def visit(name):
        assert name not in path, "import cycle: " + " -> ".join(path + [name])
        if name in done:
            return
        path.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert "latent" not in graph["training"]  # the ARM trainer reaches latents via arm_data


def test_no_module_uses_another_modules_private_names():
    for name in MODULES:
        local_names = _imports(name)
        for node in ast.walk(_tree(name)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in local_names
                and node.attr.startswith("_")
            ):
                raise AssertionError(f"tfps/{name}.py uses {node.value.id}.{node.attr}")


def test_modules_are_short_enough_to_read_in_one_sitting():
    for name, path in MODULES.items():
        with open(path) as f:
            assert len(f.readlines()) <= MAX_LINES, f"tfps/{name}.py"
