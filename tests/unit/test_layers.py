"""crm (the customer memory) never depends on context (lookup, call events, agent page).

context is the top layer: it imports crm, never the other way round (issue 9). An
import inside a function counts too: hiding one there is how cycles crept in.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
UPPER = "context"
# The site's settings name every app and the root URLconf; that is configuration, not a dependency.
CONFIGURATION = {"crm/settings.py"}


def upward_references(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == UPPER]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == UPPER:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(f"{UPPER}."):
            found.append(f"'{node.value}' (a dotted path: include(), import_string(), ...)")
    return [f"{path.relative_to(root)}:{ref}" for ref in found]


def test_crm_never_imports_context():
    files = [p for p in (ROOT / "crm").rglob("*.py") if str(p.relative_to(ROOT)) not in CONFIGURATION]
    assert len(files) > 20  # the walk found the package

    offenders = [ref for path in files for ref in upward_references(path)]

    assert offenders == []


def test_the_check_sees_every_kind_of_upward_reference(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import context.services\n"
        "from context import selectors\n"
        "def f():\n    from context.services import context_lookup\n"
        "urls = include('context.urls')\n"
        "from crm import card\nimport contextlib\n"
    )
    refs = upward_references(bad, root=tmp_path)

    assert len(refs) == 4
