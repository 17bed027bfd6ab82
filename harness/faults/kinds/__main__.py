"""`python -m harness.faults.kinds`: the complete suite schema (with every fault kind's
action and settings) on stdout, for an editor's YAML language server."""

import json

from harness.validation import schema

print(json.dumps(schema("suite"), indent=2, ensure_ascii=False))
