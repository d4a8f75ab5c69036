"""Checks one answer of the portal's JSON API against its OpenAPI document, with real validators.

    python openapi_check.py DOCUMENT METHOD PATH_TEMPLATE STATUS CHECK_SPEC < BODY

DOCUMENT is the served `/api/v1/openapi.json`, saved to a file; BODY (stdin) is the answer's JSON,
or empty when the answer had no body. With CHECK_SPEC=1 the document itself is first validated
as OpenAPI 3.1 (openapi-spec-validator). Then the status must be documented for that operation,
and the body must validate (jsonschema, draft 2020-12, OpenAPI 3.1's dialect) against the
schema documented for that status. Objects are checked closed: a field the document does not
name is an error, so the document cannot fall behind what the endpoints answer.

Exits 0 when the answer is documented; otherwise prints why and exits 1.
"""

import copy
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

COMPOSITION = ("allOf", "anyOf", "oneOf", "not", "if", "$ref")


def closed(schema):
    """The schema with every object that lists its properties closed to others."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and "unevaluatedProperties" not in out
        and not any(k in out for k in COMPOSITION)
    ):
        out["additionalProperties"] = False
    return out


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def main():
    document_path, method, template, status, check_spec = sys.argv[1:6]
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    raw = sys.stdin.read()
    body = json.loads(raw) if raw.strip() else None

    if check_spec == "1":
        try:
            validate_spec(document)
        except Exception as e:  # the validator's own error says where
            fail(f"the OpenAPI document is not valid OpenAPI: {e}")
        if not str(document.get("openapi", "")).startswith("3.1"):
            fail(f"the document is OpenAPI {document.get('openapi')}, not 3.1")

    operation = document.get("paths", {}).get(template, {}).get(method.lower())
    if operation is None:
        fail(f"{method} {template} is not in the OpenAPI document")
    responses = operation.get("responses", {})
    response = (
        responses.get(status)
        or responses.get(status[0] + "XX")
        or responses.get("default")
    )
    if response is None:
        fail(
            f"{method} {template} answered {status}, which its OpenAPI entry does not list "
            f"(it lists {', '.join(sorted(responses))})"
        )
    media = response.get("content", {}).get("application/json")
    if body is None:
        if media is not None and "schema" in media:
            fail(f"{method} {template} {status} answered no body, but the document promises JSON")
        return
    if media is None or "schema" not in media:
        fail(f"{method} {template} {status} answered JSON, but the document gives no JSON schema")

    # The operation's schema, with the document's components beside it so that its
    # `#/components/schemas/...` references resolve within one root.
    schema = closed(copy.deepcopy(media["schema"]))
    root = dict(schema)
    root["components"] = closed(copy.deepcopy(document.get("components", {})))
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors[:10]
        ]
        fail(
            f"{method} {template} {status}: the body does not match the documented schema:\n"
            + "\n".join(lines)
            + f"\nbody: {json.dumps(body)[:2000]}"
        )


if __name__ == "__main__":
    main()
