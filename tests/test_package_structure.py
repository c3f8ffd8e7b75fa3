"""The package's structure: no import circle, and the schema at the bottom."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bert_pretraining"


def package_imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or inside a function alike."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    imported.add(node.module.split(".")[0])
                else:
                    imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bert_pretraining."):
                imported.add(node.module.split(".")[1])
        graph[path.stem] = imported - {path.stem}
    return graph


def find_circle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state:
                found = visit(target, trail + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_module_of_the_package_imports_itself_back_through_others():
    circle = find_circle(package_imports())
    assert circle is None, " -> ".join(circle)


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_the_schema_and_the_layout_import_nothing_of_the_package_and_nothing_below_settings_reads_it():
    graph = package_imports()
    assert graph["schema"] == set() and graph["run_layout"] == set()
    below_settings = {"tokenization", "distribution", "prepare", "source_model", "corpus", "job_flags", "training"}
    assert not {module for module in below_settings if "settings" in graph[module]}
