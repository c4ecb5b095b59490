#!/usr/bin/env python3
"""Validate experiment files against schemas/experiment.schema.json with Python's jsonschema
(Draft 2020-12): an implementation independent of the Rust one in tests/schema.rs.

usage: scripts/validate-schema.py FILE.toml...   (exit 0 if every file is valid, 1 otherwise)
"""
import json
import sys
import tomllib
from pathlib import Path

import jsonschema

root = Path(__file__).resolve().parent.parent
schema = json.loads((root / "schemas" / "experiment.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        doc = tomllib.load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    for e in errors:
        print(f"{name}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")
    bad += bool(errors)
print(f"{len(sys.argv) - 1 - bad} of {len(sys.argv) - 1} files valid")
sys.exit(1 if bad else 0)
