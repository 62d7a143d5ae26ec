"""Every example in the OpenAPI document is valid against the schema it illustrates."""

from __future__ import annotations

import jsonschema
import pytest

from service.openapi import spec_dict

SPEC = spec_dict()


def _examples():
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" in body:
                yield f"{method.upper()} {path} request", body["schema"], body["example"]
            for status, response in operation.get("responses", {}).items():
                for kind in ("application/json", "application/problem+json"):
                    content = response.get("content", {}).get(kind, {})
                    if "example" in content and "schema" in content:
                        yield f"{method.upper()} {path} {status}", content["schema"], content["example"]


EXAMPLES = list(_examples())


def test_every_operation_with_a_json_body_or_answer_has_an_example():
    illustrated = {name.rsplit(" ", 1)[0] for name, _, _ in EXAMPLES}
    missing = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            has_json = "requestBody" in operation or any(
                "application/json" in r.get("content", {})
                for code, r in operation.get("responses", {}).items()
                if code.startswith("2")
            )
            if has_json and f"{method.upper()} {path}" not in illustrated:
                missing.append(f"{method.upper()} {path}")
    assert not missing


@pytest.mark.parametrize(("name", "schema", "example"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_matches_its_schema(name, schema, example):
    validator = jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
    assert not errors, errors
