"""scripts/import_cycles.py finds a cycle whichever way it is spelled (absolute, relative, inside a
function) and leaves out what is no cycle (TYPE_CHECKING-only imports, one-way imports)."""

from scripts.import_cycles import imported_modules, one_cycle, project_modules, strongly_connected


def _graph(root):
    modules = project_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def test_cycles_are_found_and_one_way_imports_are_not(tmp_path):
    package = tmp_path / "core"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from core import b\n",
        "b.py": "def late():\n    from .sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import core.a\n",
        "d.py": "from typing import TYPE_CHECKING\nimport core.a\nif TYPE_CHECKING:\n    from core import e\n",
        "e.py": "from core.d import anything\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = _graph(tmp_path)
    assert graph["core.b"] == {"core.sub.c"} and graph["core.d"] == {"core.a"}
    assert strongly_connected(graph) == [["core.a", "core.b", "core.sub.c"]]
    assert one_cycle(graph, ["core.a", "core.b", "core.sub.c"]) == ["core.a", "core.b", "core.sub.c", "core.a"]
