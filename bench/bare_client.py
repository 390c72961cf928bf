"""The baseline the plugins are compared with: the least code that does the same HTTP work.

One `requests.Session`, one request after another, each answer parsed and written to stdout
as a JSON line (as the tap writes its records), no retries, no pacing, no state. Run as its
own process, like the plugin it is compared with, so both pay an interpreter start:

    python bench/bare_client.py get  API_URL RESOURCE IDS_FILE      < /dev/null > out.jsonl
    python bench/bare_client.py post API_URL RESOURCE BODIES_JSONL  < /dev/null > out.jsonl

The key pair comes from the environment variable BENCH_KEY_PAIR (never the command line).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

import requests


def main(argv: list[str]) -> int:
    """Fetch every ID, or POST every body, and print each answer."""
    action, api_url, resource, path = argv
    session = requests.Session()
    session.headers["Authorization"] = f"Chatra.Simple {os.environ['BENCH_KEY_PAIR']}"
    out = sys.stdout
    with Path(path).open(encoding="utf-8") as items:
        for line in items:
            item = line.strip()
            if not item:
                continue
            if action == "get":
                url = f"{api_url}/{resource}/{quote(item, safe='')}"
                response = session.get(url, timeout=30)
            else:
                response = session.post(f"{api_url}/{resource}/", json=json.loads(item), timeout=30)
            response.raise_for_status()
            out.write(json.dumps(response.json()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
