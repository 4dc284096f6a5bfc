"""``Idempotency-Key`` on the POSTs that create something: a retry gets the first answer and writes nothing new.

As Stripe's API does it. The first request with a key runs; its answer (status, JSON body, ``Location`` and
``ETag``) is stored with a SHA-256 of the request, in the same transaction as the view's writes. A retry by the
same user with the same key and the same request within ``IDEMPOTENCY_TTL_SECONDS`` gets that answer again,
with ``Idempotent-Replayed: true``, and runs nothing; the same key with another request (body, query, route or
method) is a 422. Concurrent requests with one key wait for the first (a PostgreSQL advisory lock on the user
and the key) and then replay its answer. Without the header a view runs exactly as before, at no extra query.
See docs/idempotency.md.
"""

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from .fastpath.session import try_advisory_xact_lock
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
STORED_HEADERS = ("Location", "ETag")
# 4xx answers that are not stored: they depend on the moment, not on the request (credentials or role,
# a conflict, a precondition, a throttle), or the body was not read whole (413). A retry runs again.
NOT_STORED = frozenset({401, 403, 408, 409, 412, 413, 423, 425, 429})
LOCK_NAMESPACE = 0x1DE4  # first key of the two-key advisory locks: a key space of their own
LOCK_WAIT_SECONDS = 30.0  # a request waits this long for one in flight with its key, then answers 409
MARK = "idempotent_methods"  # attribute of a decorated view method: the methods it applies to (issues.openapi)
READ_CHUNK = 256 * 1024


def parse_key(raw: str) -> str:
    """The header's value, if it is 1–255 printable ASCII characters; else a 400 naming the header."""
    if 1 <= len(raw) <= MAX_KEY_LENGTH and all(" " <= char <= "~" for char in raw):
        return raw
    raise ValidationError({HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]})


def is_stored(status: int) -> bool:
    return 200 <= status < 300 or (400 <= status < 500 and status not in NOT_STORED)


def lock_id(user_id: int, key: str) -> int:
    """The second key of the advisory lock of (user, key): 32 bits of a hash (a collision only makes two
    requests wait for each other)."""
    digest = hashlib.sha256(f"{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


# --- what the request asks: its digest ---------------------------------------------------------------------


class _Digest:
    """SHA-256 of what a request asks besides its method and path: the query, the media type and the body.
    Subclasses feed the body; ``finish()`` reads what the view left unread and answers None when the body
    could not be read whole (then nothing is stored)."""

    def __init__(self, request: HttpRequest, media_type: str, charset: str) -> None:
        self.request = request
        self.sha = hashlib.sha256()
        query = sorted(parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True))
        self.feed("query", json.dumps(query).encode())
        self.feed("type", f"{media_type};{charset}".encode())

    def feed(self, label: str, data: bytes) -> None:
        self.sha.update(f"{label}:{len(data)}:".encode() + data)

    def finish(self) -> str | None:
        return self.sha.hexdigest()


class _JsonDigest(_Digest):
    """A JSON body (small: the middleware caps it), canonicalised: key order and spacing do not matter."""

    def __init__(self, request: HttpRequest, media_type: str, charset: str) -> None:
        super().__init__(request, media_type, charset)
        self.complete = True
        try:
            body = request.body
        except RawPostDataException:  # read as a stream already: cannot be hashed
            self.complete = False
            return
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
            self.feed("json", canonical)
        except (ValueError, RecursionError):  # not JSON after all (the view answers 400): the bytes as sent
            self.feed("raw", body)

    def finish(self) -> str | None:
        return super().finish() if self.complete else None


class _HashingStream:
    """Wraps the request's body stream: every byte read by anyone (the view streaming a CSV) is hashed."""

    def __init__(self, stream: Any, sha: Any) -> None:
        self.stream = stream
        self.sha = sha
        self.failed = False
        self.closed = False

    def _read(self, method: Callable[..., bytes], size: int | None) -> bytes:
        try:
            data = method(size)
        except Exception:
            self.failed = True
            raise
        self.sha.update(data)
        return data

    def read(self, size: int | None = -1, /) -> bytes:
        return self._read(self.stream.read, size)

    def readline(self, size: int | None = -1, /) -> bytes:
        return self._read(self.stream.readline, size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def close(self) -> None:  # HttpRequest.body closes the stream once it has read it whole
        self.closed = True
        self.stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _StreamDigest(_Digest):
    """A raw body (``text/csv``), hashed as the view reads it; the rest is read when the view is done."""

    def __init__(self, request: HttpRequest, media_type: str, charset: str) -> None:
        super().__init__(request, media_type, charset)
        self.stream = _HashingStream(getattr(request, "_stream", None), self.sha)
        self.complete = True
        if hasattr(request, "_body"):  # read whole already
            self.feed("raw", request.body)
            self.stream.stream = None
        elif self.stream.stream is None or getattr(request, "_read_started", False):
            self.complete = False  # partly read as a stream already: cannot be hashed
        else:
            request._stream = self.stream  # type: ignore[assignment]

    def finish(self) -> str | None:
        if not self.complete or self.stream.failed:
            return None
        try:
            while self.stream.stream is not None and not self.stream.closed and self.stream.read(READ_CHUNK):
                pass
        except Exception:
            return None
        return super().finish()


class _HashingUploadHandler(FileUploadHandler):
    """First of the upload handlers: hashes each file's content as Django parses it and passes it on (or, when
    the body is only read to be compared, keeps nothing)."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request)
        self.files: list[tuple[str, Any]] = []
        self.keep = True
        self.completed = False

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.files.append((field_name, hashlib.sha256()))

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.files[-1][1].update(raw_data)
        return raw_data if self.keep else None

    def file_complete(self, file_size: int) -> None:
        return None

    def upload_complete(self) -> None:
        self.completed = True


class _MultipartDigest(_Digest):
    """A multipart body by its fields and its files' contents, not its bytes: the boundary differs per send."""

    def __init__(self, request: HttpRequest, media_type: str, charset: str) -> None:
        super().__init__(request, media_type, charset)
        self.handler: _HashingUploadHandler | None = None
        if not hasattr(request, "_files"):  # else parsed already (the CSRF check of a session login)
            self.handler = _HashingUploadHandler(request)
            request.upload_handlers = [self.handler, *request.upload_handlers]

    def _file_digests(self) -> list[tuple[str, str]] | None:
        request = self.request
        if self.handler is None:
            digests = []
            for name, uploads in request.FILES.lists():
                for upload in uploads:
                    sha = hashlib.sha256()
                    for chunk in upload.chunks(READ_CHUNK):
                        sha.update(chunk)
                    upload.seek(0)
                    digests.append((name, sha.hexdigest()))
            return digests
        if not hasattr(request, "_files") and not getattr(request, "_read_started", False):
            # The view answered without reading the body: parse it now, hashing and keeping nothing.
            self.handler.keep = False
            request.upload_handlers = [self.handler]
            try:
                request.POST  # noqa: B018 - parses the body
            except (MultiPartParserError, ValueError, OSError):
                return None
        if not self.handler.completed:
            return None
        return [(name, sha.hexdigest()) for name, sha in self.handler.files]

    def finish(self) -> str | None:
        try:
            files = self._file_digests()
        except Exception:
            return None
        if files is None:
            return None
        fields = sorted(self.request.POST.lists())
        self.feed("files", json.dumps(sorted(files)).encode())
        self.feed("fields", json.dumps(fields).encode())
        return super().finish()


def _digest_for(request: Request) -> _Digest:
    media_type, params = parse_header_parameters(request.content_type or "")
    media_type = media_type.lower()
    charset = params.get("charset", "").lower()
    if media_type == "multipart/form-data":
        return _MultipartDigest(request._request, media_type, charset)
    if media_type == "application/json" or media_type.endswith("+json"):
        return _JsonDigest(request._request, media_type, charset)
    return _StreamDigest(request._request, media_type, charset)


# --- records: find, replay, store --------------------------------------------------------------------------


def _is_live(record: IdempotencyRecord) -> bool:
    return record.created_at > timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def _error(status: int, code: str, detail: str, **headers: str) -> Response:
    return Response({"detail": detail, "code": code}, status=status, headers=headers or None)


def _replay_or_refuse(record: IdempotencyRecord, method: str, path: str, digest: _Digest) -> Response:
    fingerprint = digest.finish()
    if (record.method, record.path, record.request_hash) != (method, path, fingerprint):
        return _error(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used with a different request ({record.method} {record.path}, another body or "
            "query); send a new key for a new request.",
        )
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(json.loads(record.response_body), status=record.response_status, headers=headers)


def _lock(user_id: int, key: str) -> bool:
    """Take the transaction-scoped lock of (user, key), waiting at most LOCK_WAIT_SECONDS for the request that
    holds it."""
    return try_advisory_xact_lock(LOCK_NAMESPACE, lock_id(user_id, key), wait_seconds=LOCK_WAIT_SECONDS)


def _store(*, user_id: int, key: str, method: str, path: str, fingerprint: str, response: HttpResponseBase) -> None:
    if not isinstance(response, Response) or not is_stored(response.status_code):
        return
    try:
        body = json.dumps(response.data, cls=JSONEncoder, separators=(",", ":"))
    except (TypeError, ValueError):
        return
    IdempotencyRecord.objects.create(
        user_id=user_id,
        key=key,
        method=method,
        path=path,
        request_hash=fingerprint,
        response_status=response.status_code,
        response_body=body,
        response_headers={name: response[name] for name in STORED_HEADERS if response.has_header(name)},
    )


def _run_view(view_self: Any, run: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """The view's answer, also when it raises: in a savepoint (an error leaves nothing), and an exception
    answered as DRF would answer it, so a 400 or 404 can be stored. Anything else propagates (a 500)."""
    try:
        with transaction.atomic():
            return run()
    except Exception as exc:
        return view_self.handle_exception(exc)


def _idempotent_call(view_self: Any, request: Request, key: str, run: Callable[[], HttpResponseBase]) -> Any:
    user_id: int = request.user.pk  # type: ignore[assignment]  # authenticated users only (the decorator checks)
    method = request.method or "POST"
    path = request.path_info.rstrip("/") or "/"
    digest = _digest_for(request)
    record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if record is not None and _is_live(record):
        return _replay_or_refuse(record, method, path, digest)
    with transaction.atomic():
        if not _lock(user_id, key):
            return _error(
                409,
                "idempotency_key_in_use",
                f"A request with this {HEADER} is still being processed; retry shortly.",
                **{"Retry-After": "1"},
            )
        record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if record is not None:
            if _is_live(record):
                return _replay_or_refuse(record, method, path, digest)
            record.delete()  # expired: the key starts afresh
        response = _run_view(view_self, run)
        fingerprint = digest.finish()
        if fingerprint is not None:
            _store(user_id=user_id, key=key, method=method, path=path, fingerprint=fingerprint, response=response)
        return response


def idempotent(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Decorates a view method (innermost, right above ``def``): its POSTs honour ``Idempotency-Key``."""

    @functools.wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        raw_key = request.headers.get(HEADER)
        if raw_key is None or request.method != "POST" or not request.user.is_authenticated:
            return view(self, request, *args, **kwargs)
        key = parse_key(raw_key)
        return _idempotent_call(self, request, key, lambda: view(self, request, *args, **kwargs))

    setattr(wrapper, MARK, ("POST",))
    return wrapper
