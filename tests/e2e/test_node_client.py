"""Node's ``eventsource`` package (4.x, on the machine's Node.js) on the default framing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.e2e import framing_app
from tests.e2e.live_server import live_server

NODE_DIR = Path(__file__).parent / "node"


def node_client() -> Path:
    """The client script, with its locked dependencies installed from the npm registry."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} missing: .ci/run installs Node.js and npm")
    if not (NODE_DIR / "node_modules" / "eventsource").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return NODE_DIR / "read_events.mjs"


def test_node_eventsource_reads_the_default_framing(tmp_path: Path) -> None:
    script = node_client()
    with live_server("tests.e2e.framing_app:app", tmp_path) as server:
        result = subprocess.run(
            ["node", str(script), f"{server.url}/events"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        log = httpx.get(f"{server.url}/log").json()["connections"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == framing_app.expected_events()
    per = framing_app.PER_CONNECTION
    assert [c["last_event_id"] for c in log] == [
        None,
        *map(str, range(per, framing_app.TOTAL, per)),
    ]
    # The app's retry (200 ms) was taken: the package's default is 3 s.
    assert max(framing_app.reconnection_gaps(log)) < 1.5
