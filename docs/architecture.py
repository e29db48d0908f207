"""keras_gen's floor plan, and its import graph drawn from the code: `python docs/architecture.py`.

Faces (cli, api) call workflows (training, evaluation, studies, serving, report, reproduce,
divergences), which read and write runs (the run directory), which rebuild models, which are made
of networks, losses and data, on top of utilities. A module imports only from its own floor or
below, and no two modules import each other, directly or around a circle (tests/test_architecture.py).
The picture, docs/architecture.png, shows one box per room (package or top-level module) on its floor
and an arrow for every room that imports another (but for imports of the utilities from above, which
every floor may make); the whole edge list is stored in the PNG, so the test can tell when the
picture no longer matches the code.
"""

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICTURE = os.path.join(ROOT, "docs", "architecture.png")
# Top to bottom; a room is a package or a top-level module of keras_gen.
FLOORS = [
    ("faces", ["keras_gen", "keras_gen.__main__", "keras_gen.api", "keras_gen.cli"]),
    ("workflows", ["keras_gen.training", "keras_gen.evaluation", "keras_gen.studies", "keras_gen.serving",
                   "keras_gen.report", "keras_gen.reproduce", "keras_gen.divergences"]),
    ("runs", ["keras_gen.runs"]),
    ("models", ["keras_gen.models"]),
    ("foundations", ["keras_gen.networks", "keras_gen.losses", "keras_gen.data"]),
    ("utilities", ["keras_gen._startup", "keras_gen.errors", "keras_gen.io_utils", "keras_gen.environment",
                   "keras_gen.registry", "keras_gen.plotting"]),
]  # fmt: skip


def modules(package_dir=os.path.join(ROOT, "keras_gen")):
    """{module name: file path} of every module of the package."""
    found = {}
    for directory, _, files in os.walk(package_dir):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[module.removesuffix(".__init__")] = path
    return found


def import_graph():
    """{module: set of keras_gen modules it imports}, from the source (any import, at any depth)."""
    found = modules()

    def resolve(name):
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name

    graph = {module: set() for module in found}
    for module, path in found.items():
        package = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as stream:
            tree = ast.parse(stream.read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = (module if package else module.rpartition(".")[0]).split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1]) + ("." + base if base else "")
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                if name.split(".")[0] != "keras_gen":
                    continue
                target = resolve(name)
                # A module "imports" its own package when it imports a sibling: that is not an edge.
                if target and target != module and not module.startswith(target + "."):
                    graph[module].add(target)
    return graph


def room_of(module):
    """The room (package or top-level module) a module lives in."""
    rooms = [room for _, members in FLOORS for room in members]
    matches = [room for room in rooms if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


def floor_of(module):
    room = room_of(module)
    for index, (_, members) in enumerate(FLOORS):
        if room in members:
            return index
    return None


def room_edges(graph=None):
    """Sorted (room, imported room) pairs."""
    graph = graph or import_graph()
    return sorted(
        {(room_of(a), room_of(b)) for a, targets in graph.items() for b in targets if room_of(a) != room_of(b)}
    )


def edge_text(edges):
    return "\n".join(f"{a} -> {b}" for a, b in edges)


def draw(path=PICTURE):
    """Draws the floors, their rooms and the imports between rooms; the edge list goes in the PNG's metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = room_edges()
    width = max(len(members) for _, members in FLOORS)
    figure, axes = plt.subplots(figsize=(15, 9))
    positions = {}
    for level, (floor, members) in enumerate(FLOORS):
        y = len(FLOORS) - 1 - level
        axes.text(-0.9, y, floor, ha="right", va="center", fontsize=12, fontweight="bold", color="#444")
        axes.axhspan(y - 0.42, y + 0.42, color="#f2f2f2" if level % 2 else "#e8eef7", zorder=0)
        for index, room in enumerate(members):
            x = (index + 0.5) * width / len(members) - 0.5
            positions[room] = (x, y)
            label = room.removeprefix("keras_gen.") if room != "keras_gen" else "keras_gen\n(__init__)"
            axes.text(x, y, label, ha="center", va="center", fontsize=10, zorder=3,
                      bbox={"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "#335"})  # fmt: skip
    utilities = set(FLOORS[-1][1])
    for source, target in edges:
        if target in utilities and source not in utilities:
            continue  # Every floor may use the utilities: those arrows would hide the rest.
        (x1, y1), (x2, y2) = positions[source], positions[target]
        same_floor = y1 == y2
        axes.annotate(
            "", xy=(x2, y2 + (0.0 if same_floor else 0.22)), xytext=(x1, y1 - (0.0 if same_floor else 0.22)),
            arrowprops={"arrowstyle": "->", "color": "#c33" if same_floor else "#778", "lw": 0.8, "alpha": 0.7,
                        "connectionstyle": "arc3,rad=0.25" if same_floor else "arc3,rad=0.0"},
            zorder=1,
        )  # fmt: skip
    axes.set_xlim(-2.2, width)
    axes.set_ylim(-0.6, len(FLOORS) - 0.4)
    axes.axis("off")
    axes.set_title(
        "keras_gen: who imports whom (arrows point to the imported room; red: within a floor; imports of the\n"
        "utilities from above are left out). Drawn from the code by docs/architecture.py",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=80, metadata={"Description": edge_text(edges)})
    plt.close(figure)
    return path


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    print(f"Wrote {draw()}")
