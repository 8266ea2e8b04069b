"""The overhead baseline: a bare ``httpx.Client`` keep-alive loop.

``python bench/bare_httpx.py URL BODY_FILE HEADERS_JSON COUNT`` POSTs the same
bytes with the same headers COUNT times, one after another, on one pooled
connection, and fails on any non-2xx answer: what moxiehook's
``fire --concurrency 1`` does, minus everything moxiehook adds (config,
ids, logging, retries).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx


def main() -> None:
    url, body_file, headers_json, count = sys.argv[1:5]
    body = Path(body_file).read_bytes()
    headers = json.loads(headers_json)
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        for _ in range(int(count)):
            client.post(url, content=body, headers=headers).raise_for_status()


if __name__ == "__main__":
    main()
