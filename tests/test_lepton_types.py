"""Lepton's ``leptonai.photon.types`` helpers: FileParam, get_file_content, image responses."""

from __future__ import annotations

import base64
import http.server
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from pydantic import BaseModel

from photonpack import File, PNGResponse
from photonpack.serving.lepton_types import (
    FileContentError,
    FileParam,
    JPEGResponse,
    get_file_content,
    make_img_response,
    make_jpeg_response,
    make_png_response,
    to_bool,
)

DATA = b"\x00binary\xff"
B64 = base64.b64encode(DATA).decode()


class Upload(BaseModel):
    file: FileParam


def test_file_param_warns_when_made_in_code_and_behaves_as_file() -> None:
    with pytest.warns(DeprecationWarning) as record:
        param = FileParam(DATA)
    assert str(record[0].message) == (
        "FileParam is deprecated (as it was in Lepton's SDK); use File, which accepts the same "
        "bytes, file objects and base64 text"
    )
    assert isinstance(param, File)
    assert (param.get_content(), param.file.read()) == (DATA, DATA)


def test_file_param_reads_lepton_old_wire_format_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # not GC-time ResourceWarnings of others
        upload = Upload.model_validate({"file": "encoded:" + B64})
        again = Upload.model_validate({"file": "data:application/octet-stream;base64," + B64})
    assert upload.file.content == again.file.content == DATA


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/image.png"
    server.shutdown()
    thread.join()


def test_get_file_content_reads_every_form_lepton_read(url: str, tmp_path: Path) -> None:
    local = tmp_path / "input.bin"
    local.write_bytes(DATA)
    data_uri = "data:image/png;base64," + B64
    sources: list[File | str | bytes] = [DATA, File(DATA), url, data_uri, B64, str(local)]
    contents = [get_file_content(s, allow_local_file=True) for s in sources]
    assert contents == [DATA] * len(sources)


def test_get_file_content_returns_a_file_on_request(url: str) -> None:
    file = get_file_content(url, return_file=True)
    assert not isinstance(file, bytes)
    with file:
        assert file.read() == DATA


def test_get_file_content_refuses_a_local_path_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(DATA)
    with pytest.raises(FileContentError) as info:
        get_file_content(str(tmp_path / "secret"))
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        f"cannot read file content from {str(tmp_path / 'secret')!r}: expected a URL, a data: "
        "URI or base64 text (or a local path, with allow_local_file=True)"
    )


class Canvas:
    """What the helpers use of a PIL image: ``save(fp, format=...)``."""

    def save(self, fp: IO[bytes], format: str) -> None:
        fp.write(f"{format} pixels".encode())


def test_image_responses_carry_the_encoded_image_and_media_type() -> None:
    png, jpeg = make_png_response(Canvas()), make_jpeg_response(Canvas())
    gif = make_img_response(Canvas(), "GIF", PNGResponse)
    assert (png.body, png.media_type) == (b"PNG pixels", "image/png")
    assert (jpeg.body, jpeg.media_type, type(jpeg)) == (b"JPEG pixels", "image/jpeg", JPEGResponse)
    assert gif.body == b"GIF pixels"


def test_to_bool_reads_lepton_flags() -> None:
    assert [to_bool(s) for s in ("Yes", "on", "1", "t", "no", "OFF", "0", "")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="'maybe' is not a boolean"):
        to_bool("maybe")
