"""The package's shape: subpackages by job whose imports point one way, no import cycle, no use of
another module's private names, no module longer than one sitting (../shared/STYLE.md)."""

import ast
import glob
import os
import re

from launchers import REPO

# Module name (dotted, without "tfps.") -> path, for every module of the package.
MODULES = {
    os.path.relpath(path, os.path.join(REPO, "tfps"))[:-3].replace(os.sep, "."): path
    for path in glob.glob(os.path.join(REPO, "tfps", "**", "*.py"), recursive=True)
    if not path.endswith("__init__.py")
}
MAX_LINES = 400

# The subpackages, each allowed to import only those listed after it (README, "Layout"): the
# arrows between rooms point one way, from the launchers down to the sampling primitives.
LAYERS = {
    "serving": {"evaluation", "train", "distribute", "data", "models", "sampling"},
    "evaluation": {"distribute", "sampling"},
    "train": {"distribute", "data", "models", "sampling"},
    "distribute": set(),
    "data": set(),
    "models": {"sampling"},
    "sampling": set(),
}


def _tree(name):
    with open(MODULES[name]) as f:
        return ast.parse(f.read())


def _imports(name):
    """The tfps modules `name` imports (at any depth of its code), and under which local names."""
    imported = {}
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfps."):
            package = node.module[len("tfps.") :]
            for alias in node.names:
                module = f"{package}.{alias.name}"
                if module in MODULES:
                    imported[alias.asname or alias.name] = module
                elif package in MODULES:  # `from tfps.x.y import name`
                    imported.setdefault(f"<{package}>", package)
        elif isinstance(node, ast.ImportFrom) and node.module == "tfps":  # `from tfps import data`
            for alias in node.names:
                if alias.name in LAYERS:
                    imported[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tfps.") and alias.name[len("tfps.") :] in MODULES:
                    imported[alias.asname or alias.name] = alias.name[len("tfps.") :]
    return imported


def test_every_module_lives_in_a_subpackage_with_a_layer():
    assert MODULES, "no modules found"
    for name in MODULES:
        assert "." in name, f"tfps/{name}.py lies outside the subpackages"
        assert name.split(".")[0] in LAYERS, f"tfps/{name}.py: unknown subpackage"


def test_imports_between_subpackages_point_one_way():
    for name in MODULES:
        package = name.split(".")[0]
        for module in set(_imports(name).values()):
            other = module.split(".")[0]
            assert other == package or other in LAYERS[package], (
                f"tfps.{name} imports tfps.{module}: {package} may import only "
                f"{sorted(LAYERS[package]) or 'nothing else'}"
            )


def test_the_layers_themselves_have_no_cycle():
    done = set()

    def visit(package, path):
        assert package not in path, "cycle: " + " -> ".join(path + [package])
        for below in LAYERS[package] - done:
            visit(below, path + [package])
        done.add(package)

    for package in LAYERS:
        visit(package, [])


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
    # The trainers reach data through its one entry, `tfps.data.open`, never a source itself.
    for trainer in ("train.training", "train.autoencoder_training"):
        assert not {m for m in graph[trainer] if m.startswith("data.")}, trainer
        assert "data" in _imports(trainer).values(), trainer


# What a model may take from tfps/sampling: the ARM protocol (and the likelihood of its logits),
# the event checks, and the Transformer's key/value cache (an ARM the sampler calls, not a loop).
# Every way a sample is drawn lives in tfps/sampling (../shared/STYLE.md, "The house").
MODELS_MAY_USE_FROM_SAMPLING = {"sampling.events", "sampling.protocol", "sampling.kv_cache"}
SAMPLING_NAME = re.compile(r"(?i:(^|_)sampl(e|er|es|ers|ing)(_|$))|Sampl")  # snake, Camel
SAMPLER_CALLS = {"while_loop", "sample", "sample_from_seed", "sample_scheduled", "loop_function"}


def _sampling_in_models(name):
    """Where module `name` draws a sample: `(line, what)` of each import of a sampler module, each
    function or class named for sampling, and each call of `tf.while_loop` or a sampler."""
    found = [
        (0, f"imports tfps.{m}")
        for m in sorted(set(_imports(name).values()))
        if m.split(".")[0] == "sampling" and m not in MODELS_MAY_USE_FROM_SAMPLING
    ]
    for node in ast.walk(_tree(name)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if SAMPLING_NAME.search(node.name):
                found.append((node.lineno, f"defines {node.name}"))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in SAMPLER_CALLS:
                found.append((node.lineno, f"calls {called}"))
    return found


def test_no_model_defines_a_sampling_loop_or_calls_a_sampler():
    models = [name for name in MODULES if name.startswith("models.")]
    assert models
    for name in models:
        found = _sampling_in_models(name)
        assert not found, (
            f"tfps/{name.replace('.', '/')}.py draws a sample (a job of tfps/sampling): "
            + ", ".join(f"line {line}: {what}" if line else what for line, what in found)
        )


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
                raise AssertionError(f"tfps.{name} uses {node.value.id}.{node.attr}")


def test_modules_are_short_enough_to_read_in_one_sitting():
    for name, path in MODULES.items():
        with open(path) as f:
            assert len(f.readlines()) <= MAX_LINES, f"tfps.{name}"


MAX_FUNCTION_LINES = 60


def test_functions_are_short_or_say_why():
    """No function body over 60 lines (its docstring aside) unless a comment in it, starting
    "# Over 60 lines", says why."""
    for name, path in MODULES.items():
        with open(path) as f:
            lines = f.read().split("\n")
        for node in ast.walk(_tree(name)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first = node.body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            doc = first.end_lineno - first.lineno + 1 if has_doc else 0
            length = node.end_lineno - node.lineno + 1 - doc
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            assert length <= MAX_FUNCTION_LINES or "# Over 60 lines" in text, (
                f"tfps.{name}.{node.name}: {length} lines"
            )
