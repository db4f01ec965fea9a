"""The layering the architecture page promises, checked where import-linter cannot look."""

from __future__ import annotations

import subprocess
import sys

import pytest


def fresh_interpreter(code: str) -> str:
    """What ``code`` prints, run in a new interpreter (nothing imported yet)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_the_codec_imports_alone_without_litestar() -> None:
    # In a fresh interpreter: ``import litestar_sse.codec`` runs the package's __init__ first,
    # which must import nothing eagerly.
    code = (
        "import sys, litestar_sse.codec as codec; "
        "assert codec.encode_event('x') == b'data: x\\r\\n\\r\\n'; "
        "loaded = sorted(m for m in sys.modules if m == 'litestar' or m.startswith('litestar.')); "
        "others = sorted(m for m in sys.modules if m.startswith('litestar_sse.')); "
        "print(loaded, others)"
    )
    out = fresh_interpreter(code)
    assert (
        out
        == "[] ['litestar_sse.codec', 'litestar_sse.codec._decoder', 'litestar_sse.codec._encoder']"
    )


def test_every_public_name_is_importable_from_the_top() -> None:
    import litestar_sse
    import litestar_sse.broadcast

    for name in litestar_sse.__all__:
        assert getattr(litestar_sse, name) is not None, name
    for name in litestar_sse.broadcast.__all__:
        assert getattr(litestar_sse.broadcast, name) is not None, name
    assert litestar_sse.broadcast.RedisStreamBackend.__name__ == "RedisStreamBackend"


def test_the_faces_list_their_public_names_only() -> None:
    # dir() is what help(), completion and inspect.getmembers() show: the public names, not
    # the helpers of __init__ (typing, importlib, annotations) nor the moved names.
    code = (
        "import warnings; warnings.simplefilter('error'); import inspect, litestar_sse, "
        "litestar_sse.broadcast as b; "
        "assert dir(litestar_sse) == sorted(litestar_sse.__all__), dir(litestar_sse); "
        "assert set(dir(b)) == set(b.__all__) - {'RedisStreamBackend'}, dir(b); "
        "inspect.getmembers(litestar_sse); inspect.getmembers(b); print(len(litestar_sse.__all__))"
    )
    assert fresh_interpreter(code) == "17"


def test_the_type_checkers_imports_mirror_the_one_list_of_public_names() -> None:
    # litestar_sse/__init__.py keeps one list (_HOMES) of the public names and their homes;
    # the imports under TYPE_CHECKING repeat it for type checkers, which cannot run
    # __getattr__. They must agree, name for name and home for home.
    import ast
    from pathlib import Path

    import litestar_sse

    tree = ast.parse(Path(litestar_sse.__file__).read_text(encoding="utf-8"))
    typed = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        if node.module.startswith("litestar_sse.")
        for alias in node.names
    }
    assert typed == litestar_sse._HOMES
    assert tuple(litestar_sse.__all__) == tuple(litestar_sse._HOMES)


@pytest.mark.parametrize(
    ("face", "name", "home"),
    [
        ("litestar_sse", "Broadcaster", "litestar_sse.broadcast"),
        ("litestar_sse", "EventDecoder", "litestar_sse.codec"),
        ("litestar_sse", "ASGIStreamingResponse", "litestar_sse.asgi"),
        ("litestar_sse", "set_sync_thread_limit", "litestar_sse.asgi"),
        ("litestar_sse.broadcast", "Snapshot", "litestar_sse.broadcast._backends.base"),
        ("litestar_sse.broadcast", "ReplayPage", "litestar_sse.broadcast._backends.replay"),
        ("litestar_sse.broadcast", "Subscription", "litestar_sse.broadcast.types"),
        ("litestar_sse.broadcast", "NotPublishedError", "litestar_sse.broadcast.errors"),
    ],
)
def test_a_moved_name_still_imports_with_a_warning_naming_its_home(
    face: str, name: str, home: str
) -> None:
    import importlib

    module = importlib.import_module(face)
    with pytest.warns(DeprecationWarning, match=home.replace(".", r"\.")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)
    assert name not in module.__all__
    assert name not in dir(module)


def test_the_package_can_be_inspected_without_the_optional_redis() -> None:
    # help() and inspect.getmembers() get every name dir() lists: RedisStreamBackend, which
    # raises ImportError without redis, is not listed until it was imported.
    code = (
        "import sys, inspect; sys.modules['redis'] = None; import litestar_sse.broadcast as b; "
        "assert 'RedisStreamBackend' not in dir(b); "
        "names = [name for name, _ in inspect.getmembers(b)]; "
        "assert set(b.__all__) - {'RedisStreamBackend'} <= set(names); print('ok')"
    )
    out = fresh_interpreter(code)
    assert out == "ok"


def test_the_package_works_without_the_optional_mcp_sdk() -> None:
    # Nothing but litestar_sse.mcp imports the MCP SDK; that module says how to get it.
    code = (
        "import sys; sys.modules['mcp'] = None; import litestar_sse, asyncio; "
        "from litestar_sse.broadcast import Broadcaster; "
        "import litestar_sse.broadcast._pipeline, litestar_sse.broadcast._messages; "
        "b = Broadcaster(); asyncio.run(b.publish('t', 'x')); "
        "assert not [m for m in sys.modules if m.startswith('mcp') and sys.modules[m]]\n"
        "try:\n    import litestar_sse.mcp\nexcept ImportError as exc:\n    print(exc)"
    )
    out = fresh_interpreter(code)
    assert out == "litestar_sse.mcp needs the MCP python SDK: pip install 'litestar-sse[mcp]'"


def test_every_module_names_its_one_idea_in_its_docstring() -> None:
    # A module holds one idea, and its docstring's first line says which: a file per noun, a
    # class whole in one file. Size is a hint, not a rule: past about 600 lines of code, look
    # for a second idea to move out (never split one class across files to fit a cap).
    import ast
    from pathlib import Path

    import litestar_sse

    root = Path(litestar_sse.__file__).parent
    unnamed, large = [], {}
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text))
        first = doc.splitlines()[0].strip() if doc else ""
        if len(first.split()) < 3:
            unnamed.append(name)
        code = [line for line in text.splitlines() if line.strip()]
        if len(code) > 650:
            large[name] = len(code)
    assert unnamed == []
    # Past the hint, a module says why it is one idea anyway; none grows without bound.
    whole = {
        "asgi/_stream.py": "ASGIStreamingResponse whole: the send loop, its stops, checks",
        "broadcast/_hub/subscription.py": "Subscription whole: cursors, batches, pushes, ends",
    }
    assert {name: lines for name, lines in large.items() if name not in whole} == {}
    assert {name: lines for name, lines in large.items() if lines > 1000} == {}


def _architecture_tree() -> tuple[set[str], dict[str, int]]:
    """The modules the architecture page lists (paths under litestar_sse/), and the layer it
    gives each top-level entry."""
    import re
    from pathlib import Path

    page = Path(__file__).parent.parent / "docs" / "architecture.rst"
    text = page.read_text(encoding="utf-8")
    block = text.split("   litestar_sse/\n", 1)[1].split("\n\n", 1)[0]
    listed: set[str] = set()
    layers: dict[str, int] = {}
    folders: list[tuple[int, str]] = []  # (indent, folder) from the top down
    for line in block.splitlines():
        entry = re.match(r"^( +)([^\s,]+(?:, [^\s,]+)*)(?:\s+(\d+)\s| |$)", line)
        if entry is None or not re.match(r"[\w*]", entry.group(2)):
            continue
        indent = len(entry.group(1))
        while folders and folders[-1][0] >= indent:
            folders.pop()
        names = [name.strip() for name in entry.group(2).split(",")]
        if not names[0].endswith((".py", "/")):
            continue  # a description's second line
        prefix = "".join(folder for _, folder in folders)
        for name in names:
            if name.endswith("/"):
                folders.append((indent, name))
            else:
                listed.add(prefix + name)
            if entry.group(3) is not None:
                layers[name.rstrip("/").removesuffix(".py")] = int(entry.group(3))
    return listed, layers


def test_the_architecture_page_lists_every_module_and_only_those() -> None:
    from pathlib import Path

    import litestar_sse

    root = Path(litestar_sse.__file__).parent
    modules = {
        str(path.relative_to(root)) for path in root.rglob("*.py") if path.name != "__init__.py"
    }
    listed, _ = _architecture_tree()
    assert sorted(modules - listed) == []  # modules the page does not list
    assert sorted(listed - modules) == []  # entries of the page with no module


def test_the_layer_numbers_come_from_the_import_contract() -> None:
    # One source: the order of the layers contract in pyproject.toml (bottom = 1). The page's
    # numbers and every package docstring that names its layer agree with it.
    import ast
    import re
    from pathlib import Path

    import tomllib

    import litestar_sse

    project = Path(__file__).parent.parent / "pyproject.toml"
    contracts = tomllib.loads(project.read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["name"].startswith("Layers:"))
    number = {
        module.strip().removeprefix("litestar_sse."): index
        for index, layer in enumerate(reversed(layers["layers"]), start=1)
        for module in layer.split("|")
    }
    _, on_page = _architecture_tree()
    assert on_page == number

    root = Path(litestar_sse.__file__).parent
    stated = {}
    for name in number:
        path = root / name / "__init__.py"
        if not path.exists():
            path = root / f"{name}.py"
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        said = re.match(r"Layer (\d+)", doc)
        if said is not None:
            stated[name] = int(said.group(1))
    assert stated == {name: number[name] for name in stated}
    assert {"asgi", "_response", "_plugin"} <= set(stated)


# The package's faces: what a user imports. Everything else lives in a module whose dotted
# path has a part starting with an underscore, so nobody mistakes an internal for an API.
PUBLIC_MODULES = frozenset(
    {
        "litestar_sse",
        "litestar_sse.asgi",
        "litestar_sse.broadcast",
        "litestar_sse.broadcast.errors",
        "litestar_sse.broadcast.types",
        "litestar_sse.client",
        "litestar_sse.codec",
        "litestar_sse.mcp",
        "litestar_sse.metrics",
        "litestar_sse.testing",
    }
)


def test_every_module_is_a_public_face_or_private_by_name() -> None:
    from pathlib import Path

    import litestar_sse

    root = Path(litestar_sse.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.add(".".join(parts))
    stray = sorted(
        name
        for name in found - PUBLIC_MODULES
        if not any(part.startswith("_") for part in name.split("."))
    )
    assert stray == [], f"internal modules without a leading underscore: {stray}"
    assert found >= PUBLIC_MODULES
