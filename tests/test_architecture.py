"""Imports go one way: the command line uses the libraries, trainer uses the dataset library, never back.

captchagen/cli/  ->  trainer/  ->  captchagen/ (the torch-free dataset library)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "captchagen" / "cli"
SHARED_BY_COMMANDS = {"common", "options"}  # what every command may use
# Where the commands are gathered into the group, and reference.py, which writes docs/cli.md from that group.
ENTRY = {"__init__", "__main__", "reference"}


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function: `from a.b import c` gives a.b and a.b.c."""
    return imported_tree(ast.parse(path.read_text("utf-8")))


def imported_tree(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported_at_run_time(path: Path) -> set[str]:
    """What `imported` finds, less the imports under `if TYPE_CHECKING:` (for the type checker only)."""
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    return imported_tree(tree)


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offending(paths: list[Path], forbidden: list[str]) -> list[str]:
    return [
        f"{p.relative_to(REPO)} imports {name}"
        for p in paths
        for name in sorted(imported(p))
        if any(under(name, f) for f in forbidden)
    ]


def test_the_dataset_library_imports_neither_torch_nor_trainer_nor_the_cli():
    library = [p for p in modules(REPO / "captchagen") if CLI not in p.parents and p.name != "__main__.py"]
    assert len(library) > 10
    assert offending(library, ["torch", "trainer", "captchagen.cli"]) == []


def test_trainer_never_imports_the_command_line():
    assert offending(modules(REPO / "trainer"), ["captchagen.cli"]) == []


@pytest.mark.parametrize("part", ["data", "training", "inference"])
def test_the_model_side_does_not_import_serving(part):
    assert offending(modules(REPO / "trainer" / part), ["trainer.serving"]) == []


def test_the_data_side_does_not_import_the_network():
    # trainer.models.arch imports trainer.data (the normalisation inside ImageReader); the other way would be a cycle
    assert offending(modules(REPO / "trainer" / "data"), ["trainer.models"]) == []


def test_inference_does_not_import_training():
    assert offending(modules(REPO / "trainer" / "inference"), ["trainer.training"]) == []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(packages: list[str]) -> dict[str, set[str]]:
    """Each module of `packages` and the modules of theirs it imports, at the top or inside a function (a
    deferred import holds a cycle as surely as one at the top). `from a import b` names a.b when that is a
    module, else a."""
    paths = [p for package in packages for p in modules(REPO / package)]
    known = {module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for p in paths:
        names = {n if n in known else n.rpartition(".")[0] for n in imported(p)}
        graph[module_name(p)] = {n for n in names if n in known and n != module_name(p)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): each is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_round_about():
    graph = import_graph(["captchagen", "trainer"])
    assert len(graph) > 80 and "trainer.models.crnn" in graph
    assert graph["trainer.models.arch"] >= {"trainer.data.preprocess", "trainer.models.config"}
    assert cycles(graph) == []


def test_the_model_config_and_catalog_import_no_torch():
    """--help, planning and the checks of a checkpoint's description read these without importing torch."""
    torch_free = {"trainer.models", "trainer.models.config", "trainer.models.catalog", "trainer.shape",
                  "trainer.records", "trainer.training.events", "trainer.training.request"}  # fmt: skip
    for name in torch_free:
        path = REPO / (name.replace(".", "/") + ("/__init__.py" if name == "trainer.models" else ".py"))
        names = imported_at_run_time(path)
        assert not [n for n in names if under(n, "torch")], name
        trainer = {n if n in torch_free else n.rpartition(".")[0] for n in names if under(n, "trainer")}
        assert trainer <= torch_free, (name, trainer - torch_free)


def test_no_command_imports_another_command():
    commands = [p for p in modules(CLI) if p.stem not in SHARED_BY_COMMANDS | ENTRY]
    assert {p.stem for p in commands} >= {"dataset", "train", "read", "evaluate", "export", "serve"}
    allowed = [f"captchagen.cli.{name}" for name in SHARED_BY_COMMANDS]
    for path in [*commands, *(CLI / f"{name}.py" for name in SHARED_BY_COMMANDS)]:
        cli_imports = [n for n in imported(path) if under(n, "captchagen.cli")]
        assert all(any(under(n, a) for a in allowed) for n in cli_imports), (path.name, cli_imports)


def test_no_module_outside_tests_is_named_like_a_test():
    assert [p for p in REPO.glob("[!t]*/**/test_*.py") if ".venv" not in p.parts] == []


def test_tests_share_helpers_through_one_module_not_conftest():
    tests = modules(REPO / "tests")
    assert offending(tests, ["tests.conftest", "conftest"]) == []
    shared = {name for p in tests for name in imported(p) if under(name, "tests")}
    assert {n.split(".")[1] for n in shared if n.count(".") >= 1} <= {"helpers"}


def test_every_module_is_in_the_development_map():
    """docs/development.md's map names every module of both packages (by file name or, inside a described
    folder, by its stem), so a newcomer finds where a thing lives from the map alone."""
    import re

    text = (REPO / "docs" / "development.md").read_text("utf-8")
    maps = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
    block = max(maps, key=len)  # the big map (the small one is the import direction)
    missing = [
        str(p.relative_to(REPO))
        for package in ("captchagen", "trainer")
        for p in modules(REPO / package)
        if p.stem not in ("__init__", "__main__") and not re.search(rf"(?<![\w-]){re.escape(p.stem)}(?![\w-])", block)
    ]
    assert missing == []


def test_only_planning_reads_the_request():
    """TrainRequest is settled into a Plan by plan.py (with resume.py and finetune.py); loop.py takes it only
    to hand it to make_plan. Everything after planning (data, steps, validation, saving) reads the Plan."""
    readers = {
        module_name(p)
        for package in ("trainer", "captchagen")
        for p in modules(REPO / package)
        if "trainer.training.request" in imported(p)
    }
    planning = {"trainer.training.plan", "trainer.training.resume", "trainer.training.finetune"}
    assert readers == planning | {"trainer.training.loop", "captchagen.cli.train"}
    tree = ast.parse((REPO / "trainer" / "training" / "loop.py").read_text("utf-8"))
    used = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "request" and isinstance(n.ctx, ast.Load)]
    handed = [
        a
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "make_plan"
        for a in n.args
        if isinstance(a, ast.Name) and a.id == "request"
    ]
    assert len(used) == len(handed) == 1


def test_no_function_of_the_training_loop_is_over_60_lines():
    """The loop reads top to bottom as named calls (as nanoGPT's and accelerate's do): a function that grows
    past a screen is cut into named parts, not left to grow."""
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules(REPO / "trainer" / "training")
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


# The picture in docs/development.md: the packages as boxes, a module of trainer/ itself in the box of what it
# is made for. Every import between two boxes is an arrow, and the arrows never go round.
BOXES = {
    "captchagen.cli": "cli", "captchagen.__main__": "cli", "captchagen.adapt": "adapt",
    "captchagen.fitting": "fitting", "captchagen": "dataset library",
    "trainer.serving": "serving", "trainer.labeling": "labeling", "trainer.training": "training",
    "trainer.inference": "inference", "trainer.models": "models", "trainer.data": "data",
    "trainer.checkpoint": "checkpoint, runs, metrics", "trainer.runs": "checkpoint, runs, metrics",
    "trainer.metrics": "checkpoint, runs, metrics", "trainer": "shape, records, device, bundled",
}  # fmt: skip


def box(module: str) -> str:
    """The box of the longest prefix of `module` that BOXES names."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in BOXES:
            return BOXES[".".join(parts[:n])]
    raise KeyError(module)


def box_arrows() -> set[tuple[str, str]]:
    """(box, box) for every import from a module of one box into another."""
    graph = import_graph(["captchagen", "trainer"])
    return {(box(a), box(b)) for a, targets in graph.items() for b in targets if box(a) != box(b)}


def reachable(arrows: set[tuple[str, str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for a, b in arrows:
            if a == todo[-1] and b not in seen:
                seen.add(b)
                todo.insert(0, b)
        todo.pop()
    return seen


def package_picture() -> list[str]:
    """The mermaid lines docs/development.md draws: each import between boxes, less those another path of
    imports already implies (the picture reads as layers; every arrow is still a real import)."""
    arrows = box_arrows()
    direct = {
        (a, b)
        for a, b in arrows
        if not any(b in reachable(arrows - {(a, b)}, c) for a2, c in arrows if a2 == a and c != b)
    }
    return sorted(f'  "{a}" --> "{b}"' for a, b in direct)


def test_the_picture_of_the_packages_draws_their_imports_and_they_go_one_way():
    text = (REPO / "docs" / "development.md").read_text("utf-8")
    drawn = text.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    expected = package_picture()
    assert sorted(line for line in drawn if "-->" in line) == expected, "\n".join(["flowchart TD", *expected])
    boxes = {name: {b for a, b in box_arrows() if a == name} for name in set(BOXES.values())}
    assert cycles(boxes) == []
