"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular lists the success answers a view declares; the errors come from layers it cannot see
(authentication, permissions, the body-size guard, parsers, throttling, pagination). This hook adds
them where they apply, so that a client (and the schema fuzzer) knows every status it may receive.
"""

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": 'An error: `{"detail": "...", "code": "..."}`.',
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": 'Field errors `{"field": ["message", ...]}`, or an error `{"detail", "code"}`.',
    "additionalProperties": True,
}

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: the fields or parameters at fault and why.",
    "401": "Not authenticated (see `WWW-Authenticate`).",
    "403": "Authenticated, but the role does not allow this.",
    "404": "No such resource, or no such page.",
    "413": "Request body too large.",
    "415": "Unsupported media type.",
    "429": "Throttled: retry after `Retry-After` seconds.",
}


def drop_slashless_root(endpoints: list[tuple]) -> list[tuple]:
    """PREPROCESSING_HOOKS entry: ``/api`` and ``/api/`` are one endpoint; document it once."""
    return [endpoint for endpoint in endpoints if endpoint[0] != "/api"]


def _error_response(code: str) -> dict[str, Any]:
    ref = "ValidationError" if code == "400" else "Error"
    return {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _is_public(operation: dict[str, Any]) -> bool:
    return any(requirement == {} for requirement in operation.get("security", [{}]))


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: add the error answers that apply to each operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["429"]
            if not _is_public(operation):
                codes += ["401", "403"]
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if "requestBody" in operation:
                codes += ["400", "413", "415"]
            elif has_query or method == "delete":
                codes.append("400")
            if "{" in path or has_query:
                codes.append("404")
            for code in codes:
                operation["responses"].setdefault(code, _error_response(code))
    return result
