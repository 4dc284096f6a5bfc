"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular lists the success answers a view declares; the errors come from layers it cannot see
(authentication, permissions, the body-size guard, parsers, throttling, pagination). This hook adds
them where they apply, so that a client (and the schema fuzzer) knows every status it may receive.
"""

import re
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
    add_idempotency_key(result, generator)
    return result


IDEMPOTENCY_DESCRIPTIONS = {
    "409": "A request with this `Idempotency-Key` is still in flight (`code: idempotency_key_in_use`); "
    "retry after `Retry-After` seconds.",
    "422": "This `Idempotency-Key` was used with a different request (`code: idempotency_key_reused`).",
}


def _shape(path: str) -> str:
    """A path with its parameters unnamed: the URL conf says ``{pk}`` where the schema says ``{id}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _idempotent_operations(generator: Any) -> set[tuple[str, str]]:
    """(path shape, method) of every operation whose view method carries the ``@idempotent`` mark."""
    from issues.idempotency import MARK

    found = set()
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        cls = getattr(callback, "cls", None)
        actions = getattr(callback, "actions", None) or {}
        handler = getattr(cls, actions.get(method.lower(), method.lower()), None)
        if method.upper() in getattr(handler, MARK, ()):
            found.add((_shape(path), method.lower()))
    return found


def add_idempotency_key(result: dict[str, Any], generator: Any) -> None:
    """Document ``Idempotency-Key`` (issues/idempotency.py) on the operations that honour it: the header, the
    ``Idempotent-Replayed`` answer header, and the 409 and 422 it can answer (a 400 for a bad key is there)."""
    from issues.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER

    marked = _idempotent_operations(generator)
    parameter = {
        "in": "header",
        "name": HEADER,
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]+$"},
        "description": f"1–{MAX_KEY_LENGTH} printable ASCII characters, unique per request you mean to make once. "
        "A retry with the same key and the same request within the replay window (24 hours by default) gets "
        f"the first answer again, with `{REPLAYED_HEADER}: true`, and writes nothing; the same key with "
        "another request is a 422. Keys are per user. See docs/idempotency.md.",
    }
    replayed = {
        "description": "`true` when this answer is the stored answer to an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if (_shape(path), method) not in marked:
                continue
            operation.setdefault("parameters", []).append(parameter)
            responses = operation["responses"]
            for code, response in responses.items():
                if code.startswith("2"):
                    response.setdefault("headers", {})[REPLAYED_HEADER] = replayed
            for code, description in IDEMPOTENCY_DESCRIPTIONS.items():
                error = {"$ref": "#/components/schemas/Error"}
                if code not in responses:
                    responses[code] = {"description": description, "content": {"application/json": {"schema": error}}}
                    continue
                # the operation's own 409 (a bulk's stale versions): either body
                existing = responses[code]
                existing["description"] = f"{existing.get('description') or 'Conflict.'} Or: {description}"
                for content in existing.setdefault("content", {"application/json": {}}).values():
                    content["schema"] = {"anyOf": [content["schema"], error]} if "schema" in content else error
