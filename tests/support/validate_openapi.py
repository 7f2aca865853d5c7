"""Validates an OpenAPI document read from standard input."""
import json
import sys

from openapi_spec_validator import validate

document = json.load(sys.stdin)
validate(document)
print("valid", document["openapi"], len(document["paths"]), "paths")
