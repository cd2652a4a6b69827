"""What the table launchers write: `<base>.md` (the table, as printed) and `<base>.json` (the
record), in a directory made if missing."""

import json
import os


def write_table(base, table, record):
    """Writes `table` (Markdown) to `base.md` and `record` (JSON-able) to `base.json`, making
    `base`'s directory if missing."""
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    with open(base + ".md", "w") as f:
        f.write(table + "\n")
    with open(base + ".json", "w") as f:
        json.dump(record, f, indent=1)
