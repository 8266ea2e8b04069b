"""The commands moxiehook is compared with, as argv lists ready for ``processes.run``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def curl_loop(folder: Path, url: str, body: bytes, headers: dict[str, str], count: int) -> list[str]:
    """A bash loop running one ``curl -X POST`` per event (same body and headers)."""
    body_file = folder / "curl-body.json"
    body_file.write_bytes(body)
    header_args = " ".join(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items())
    script = folder / "curl-loop.sh"
    script.write_text(
        "set -e\n"
        f"for ((i = 0; i < {count}; i++)); do\n"
        f"  curl -sS --fail -o /dev/null -X POST {header_args} "
        f"--data-binary @{shlex.quote(str(body_file))} {shlex.quote(url)}\n"
        "done\n")
    return ["bash", str(script)]


def bare_httpx(folder: Path, url: str, body: bytes, headers: dict[str, str], count: int) -> list[str]:
    """A bare httpx keep-alive loop (bench/bare_httpx.py) in the same interpreter as moxiehook."""
    body_file = folder / "httpx-body.json"
    body_file.write_bytes(body)
    return [sys.executable, str(BENCH_DIR / "bare_httpx.py"), url, str(body_file),
            json.dumps(headers), str(count)]


def import_typer() -> list[str]:
    """The start-up floor of any typer CLI in this interpreter."""
    return [sys.executable, "-c", "import typer"]


def jq_failed(log: Path) -> list[str]:
    """jq selecting the failed records of a log, one compact object a line."""
    return ["jq", "-c", 'select(.outcome=="failed")', str(log)]
