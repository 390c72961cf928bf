"""The comparison for `meltano run tap-chatra target-duckdb`: a dlt `rest_api` pipeline.

The approach the project started from: dlt's declarative REST source, one GET per message
ID (resolved from a resource that reads the ID file), loaded into DuckDB. Runs in the bench's
own virtualenv (dlt pinned by bench/dlt-constraints.txt; bench/meltano_bench.py makes it):

    DLT_VENV/bin/python bench/dlt_pipeline.py API_URL IDS_FILE DUCKDB_FILE PIPELINES_DIR

The key pair comes from BENCH_KEY_PAIR. Prints the rows loaded, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import dlt  # type: ignore[import-not-found]  # only in the bench's dlt virtualenv
from dlt.sources.rest_api import rest_api_source  # type: ignore[import-not-found]


def main(argv: list[str]) -> int:
    """Load every message of the ID file into DuckDB."""
    api_url, ids_file, duckdb_file, pipelines_dir = argv

    @dlt.resource(selected=False)
    def message_ids() -> object:
        # In pages, as a REST parent resource would give them (rest_api expects lists).
        with Path(ids_file).open(encoding="utf-8") as lines:
            ids = [{"id": line.strip()} for line in lines if line.strip()]
        for start in range(0, len(ids), 1000):
            yield ids[start : start + 1000]

    source = rest_api_source(
        {
            "client": {
                "base_url": api_url.rstrip("/") + "/",
                "headers": {"Authorization": f"Chatra.Simple {os.environ['BENCH_KEY_PAIR']}"},
                "paginator": "single_page",
            },
            "resources": [
                message_ids,
                {
                    "name": "messages",
                    "primary_key": "id",
                    "endpoint": {
                        "path": "messages/{id}",
                        "data_selector": "$",
                        "params": {
                            "id": {"type": "resolve", "resource": "message_ids", "field": "id"}
                        },
                    },
                },
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="chatra_bench",
        destination=dlt.destinations.duckdb(duckdb_file),
        dataset_name="chatra",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(source)
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("messages", 0)
    print(json.dumps({"messages": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
