"""Stream the ``file`` part of a multipart/form-data request into a blob upload, enforcing the size limit on the way.

The body is parsed as it arrives (python-multipart's streaming parser), so nothing is spooled
before the limit is checked: a request whose file grows past ``max_bytes`` is refused at that point.
Other parts (form fields) are read past and ignored; job parameters travel in the query string.
"""

from __future__ import annotations

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from producers.oliver.blobs import BlobUpload
from producers.oliver.errors import BadRequestError, PayloadTooLargeError

FILE_PART = b"file"
ENVELOPE_BYTES = 64 * 1024  # boundaries, part headers and small form fields on top of the file itself


class _FormReader:
    """Collects the data of the ``file`` part from python-multipart's callbacks."""

    def __init__(self, boundary: bytes) -> None:
        self.filename: str | None = None
        self.ended = False
        self._chunks: list[bytes] = []
        self._in_file = False
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._headers.clear,
                "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, data: bytes) -> bytes:
        """Parse ``data``; return the file bytes it contained."""
        try:
            self.parser.write(data)
        except FormParserError as exc:
            raise BadRequestError(f"malformed multipart body: {exc}") from exc
        found = b"".join(self._chunks)
        self._chunks.clear()
        return found

    def _header_end(self) -> None:
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") != FILE_PART:
            return
        if self.filename is not None:
            raise BadRequestError("multipart part 'file' is given more than once")
        name = options.get(b"filename", b"").decode("utf-8", errors="replace")
        self.filename = name.replace("\\", "/").rsplit("/", 1)[-1]
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._chunks.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        shown = request.headers.get("content-type", "none")
        raise BadRequestError(f"the audio must be sent as multipart/form-data with a part 'file'; got {shown}")
    return boundary


async def receive_file(request: Request, upload: BlobUpload, max_bytes: int) -> str:
    """Write the ``file`` part into ``upload``; returns the uploaded file name ("" when none was given)."""
    reader = _FormReader(_boundary(request))
    body_limit = max_bytes + ENVELOPE_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise PayloadTooLargeError(f"a request body of {declared} bytes exceeds the upload limit of {max_bytes} bytes")
    received = 0
    async for data in request.stream():
        received += len(data)
        found = reader.feed(data)
        if upload.size + len(found) > max_bytes or received > body_limit:
            raise PayloadTooLargeError(f"the uploaded file exceeds the upload limit of {max_bytes} bytes")
        if found:
            await upload.write(found)
    if not reader.ended:
        raise BadRequestError("the multipart body ended before its closing boundary")
    if reader.filename is None:
        raise BadRequestError("multipart part 'file' is missing")
    if upload.size == 0:
        raise BadRequestError("the uploaded file is empty")
    return reader.filename
