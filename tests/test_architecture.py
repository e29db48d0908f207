"""The floor plan holds: imports go down (or across a floor) and never around a circle."""

import os
import sys

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs"))
import architecture  # noqa: E402  (docs/architecture.py: the floor plan and its picture)


def test_every_module_has_a_floor():
    assert [module for module in architecture.modules() if architecture.floor_of(module) is None] == []


def test_no_module_imports_from_a_higher_floor():
    upward = [
        f"{module} -> {target}"
        for module, targets in architecture.import_graph().items()
        for target in targets
        if architecture.floor_of(target) < architecture.floor_of(module)
    ]
    assert upward == []


def test_no_import_circles_between_modules_or_rooms():
    def circles(graph):
        found, state = [], {}

        def visit(node, path):
            state[node] = "open"
            for target in sorted(graph.get(node, ())):
                if state.get(target) == "open":
                    found.append(" -> ".join(path[path.index(target) :] + [target]))
                elif target not in state:
                    visit(target, path + [target])
            state[node] = "done"

        for node in sorted(graph):
            if node not in state:
                visit(node, [node])
        return found

    assert circles(architecture.import_graph()) == []
    rooms = {}
    for source, target in architecture.room_edges():
        rooms.setdefault(source, set()).add(target)
    assert circles(rooms) == []


def test_the_readme_picture_is_drawn_from_the_code_as_it_is():
    picture = Image.open(architecture.PICTURE)
    drawn = picture.info.get("Description", "")
    assert drawn == architecture.edge_text(architecture.room_edges()), "run: python docs/architecture.py"
    with open(os.path.join(architecture.ROOT, "README.md"), encoding="utf-8") as stream:
        assert "docs/architecture.png" in stream.read()
