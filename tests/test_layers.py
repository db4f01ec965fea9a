"""The layering the architecture page promises, checked where import-linter cannot look."""

from __future__ import annotations

import subprocess
import sys


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
        == "[] ['litestar_sse.codec', 'litestar_sse.codec.decoder', 'litestar_sse.codec.encoder']"
    )


def test_every_public_name_is_importable_from_the_top() -> None:
    import litestar_sse

    for name in litestar_sse.__all__:
        assert getattr(litestar_sse, name) is not None, name
    assert litestar_sse.RedisStreamBackend.__name__ == "RedisStreamBackend"


def test_the_package_can_be_inspected_without_the_optional_redis() -> None:
    # help() and inspect.getmembers() get every name dir() lists: RedisStreamBackend, which
    # raises ImportError without redis, is not listed until it was imported.
    code = (
        "import sys, inspect; sys.modules['redis'] = None; import litestar_sse; "
        "assert 'RedisStreamBackend' not in dir(litestar_sse); "
        "names = [name for name, _ in inspect.getmembers(litestar_sse)]; "
        "assert set(litestar_sse.__all__) <= set(names); print('ok')"
    )
    out = fresh_interpreter(code)
    assert out == "ok"


def test_the_package_works_without_the_optional_mcp_sdk() -> None:
    # Nothing but litestar_sse.mcp imports the MCP SDK; that module says how to get it.
    code = (
        "import sys; sys.modules['mcp'] = None; import litestar_sse, asyncio; "
        "from litestar_sse.broadcast import Broadcaster; "
        "import litestar_sse.broadcast.pipeline, litestar_sse.broadcast.messages; "
        "b = Broadcaster(); asyncio.run(b.publish('t', 'x')); "
        "assert not [m for m in sys.modules if m.startswith('mcp') and sys.modules[m]]\n"
        "try:\n    import litestar_sse.mcp\nexcept ImportError as exc:\n    print(exc)"
    )
    out = fresh_interpreter(code)
    assert out == "litestar_sse.mcp needs the MCP python SDK: pip install 'litestar-sse[mcp]'"


def test_every_module_is_one_idea_of_at_most_about_400_lines() -> None:
    # The architecture page's rule of thumb, kept: a module past it is split by idea (as
    # broadcaster.py into subscribing.py and stats.py). A class stays whole in one file
    # rather than split into mixins that share its state: asgi/stream.py is one idea, the
    # send loop (its stop, timer checks and sliced writes folded back in), at ~900 lines.
    from pathlib import Path

    import litestar_sse

    root = Path(litestar_sse.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert len(sizes) > 50
    allowance = {"asgi/stream.py": 900}
    assert {name: lines for name, lines in sizes.items() if lines > allowance.get(name, 420)} == {}
