"""The photon SDK: :class:`Photon`, :func:`handler` and the types handlers use.

API-compatible with Lepton AI's ``leptonai.photon``: a photon written for it
runs unchanged (see :mod:`photonpack.serving.lepton`). Declaring a photon is cheap;
FastAPI is imported here only for the types users return or raise.
"""

from __future__ import annotations

import base64
import contextvars
import difflib
import io
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, ClassVar, overload

from fastapi import HTTPException
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ModelWrapValidatorHandler, PrivateAttr, model_validator

from photonpack.serving.deployment import apply_template, check_template
from photonpack.serving.errors import PhotonDefinitionError
from photonpack.serving.fetch import download, is_url
from photonpack.serving.handler import F, HandlerSpec, handler, handler_specs

__all__ = [
    "File",
    "HTTPException",
    "HandlerSpec",
    "JPEGResponse",
    "PNGResponse",
    "Photon",
    "PhotonDefinitionWarning",
    "StreamingResponse",
    "WAVResponse",
    "handler",
    "handler_specs",
]

# Attributes whose misspellings are caught; a near miss is almost always a typo
# that would otherwise silently drop a dependency.
_DECLARED = (
    "requirement_dependency",
    "system_dependency",
    "extra_files",
    "image",
    "handler_max_concurrency",
    "handler_timeout",
    "timeout_graceful_shutdown",  # read by serving.shutdown (Lepton's attribute)
    "incoming_traffic_grace_period",  # read by serving.shutdown (Lepton's attribute)
    "deployment_template",  # serving.deployment (Lepton's attribute)
    "health_check_liveness_tcp_port",  # serving.operations (Lepton's attribute)
    "cmd",  # Lepton's: the command a deployment runs instead of serving handlers
    "exposed_port",
    "args",
    "lepton_dependencies",  # photonpack's: lock Lepton's runtime set (lock.declaration)
)


class PhotonDefinitionWarning(UserWarning):
    """A photon declares something photonpack ignores, such as a misspelt attribute."""


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_str_list(cls: type, attr: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise PhotonDefinitionError(
            f"{cls.__name__}.{attr} must be a list of strings, got {value!r}; "
            f'write {attr} = ["{value if isinstance(value, str) else "name"}"]'
        )
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise PhotonDefinitionError(
                f"{cls.__name__}.{attr} must hold non-empty strings, found {item!r}"
            )
    return list(value)


def _is_code(value: Any) -> bool:
    return callable(value) or isinstance(value, staticmethod | classmethod | property)


def _validate_declaration(cls: type[Photon]) -> None:
    own = cls.__dict__
    for attr, value in own.items():
        # Only data attributes can be misspelled declarations; methods are the user's own.
        if attr.startswith("_") or attr in _DECLARED or _is_code(value):
            continue
        close = difflib.get_close_matches(attr, _DECLARED, n=1, cutoff=0.85)
        if close:
            # Lepton ignored such a typo silently and real photons carry one: they must load.
            warnings.warn(
                f"{cls.__name__}.{attr} is not a photon attribute; did you mean {close[0]}? "
                "photonpack ignores it, as Lepton did; rename it to declare it",
                PhotonDefinitionWarning,
                stacklevel=3,  # the class statement: here <- __init_subclass__ <- class body
            )
    for attr in ("requirement_dependency", "system_dependency"):
        merged: list[str] = []
        for base in cls.__bases__:
            merged += getattr(base, attr, [])
        if attr in own:
            merged += _check_str_list(cls, attr, own[attr])
        setattr(cls, attr, _dedupe(merged))
    extra = own.get("extra_files")
    if extra is not None and not (
        (
            isinstance(extra, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())
        )
        or (isinstance(extra, list | tuple) and all(isinstance(p, str) for p in extra))
    ):
        raise PhotonDefinitionError(
            f"{cls.__name__}.extra_files must be a dict {{'path/in/photon': 'local/path'}} "
            f"or a list of relative paths, got {extra!r}"
        )
    _validate_lepton_deployment(cls)
    image = own.get("image")
    if image is not None and not isinstance(image, str):
        raise PhotonDefinitionError(
            f"{cls.__name__}.image must be an image name such as 'python:3.11-slim', got {image!r}"
        )
    limit = own.get("handler_max_concurrency", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PhotonDefinitionError(
            f"{cls.__name__}.handler_max_concurrency must be a positive integer, got {limit!r}"
        )
    timeout = own.get("handler_timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise PhotonDefinitionError(
            f"{cls.__name__}.handler_timeout must be a positive number of seconds or None, "
            f"got {timeout!r}"
        )


def _validate_lepton_deployment(cls: type[Photon]) -> None:
    """Lepton's deployment attributes: the template, the liveness port, ``cmd`` and its port."""
    own = cls.__dict__
    if "deployment_template" in own:
        cls._photon_template = check_template(
            cls.__name__, own["deployment_template"], PhotonDefinitionWarning
        )
    for attr in ("health_check_liveness_tcp_port", "exposed_port"):
        port = own.get(attr)
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise PhotonDefinitionError(
                f"{cls.__name__}.{attr} must be a TCP port number (1-65535) or None, got {port!r}"
            )
    for attr in ("cmd", "args"):
        if own.get(attr) is not None:
            _check_str_list(cls, attr, own[attr])


class Photon:
    """Base class of a photon: declare dependencies, write ``init()`` and handlers.

    ``init()`` runs once before the first handler call: lazily when a handler
    is called in-process, eagerly before the port opens when served.
    """

    requirement_dependency: ClassVar[Sequence[str]] = []
    system_dependency: ClassVar[Sequence[str]] = []
    extra_files: ClassVar[Mapping[str, str] | Sequence[str]] = {}
    image: ClassVar[str | None] = None
    handler_max_concurrency: ClassVar[int] = 1
    handler_timeout: ClassVar[float | None] = None
    # Lepton's deployment attributes (serving.deployment, serving.operations, run's cmd).
    deployment_template: ClassVar[dict[str, Any]] = {
        "resource_shape": None,
        "env": {},
        "secret": [],
    }
    health_check_liveness_tcp_port: ClassVar[int | None] = None
    cmd: ClassVar[Sequence[str] | None] = None
    exposed_port: ClassVar[int | None] = None
    args: ClassVar[Sequence[str] | None] = None
    # None: Lepton's runtime set is locked when the photon's source imports leptonai;
    # False opts out, True opts in (photonpack.serving.requirements.LEPTON_REQUIREMENTS).
    lepton_dependencies: ClassVar[bool | None] = None
    _photon_template: ClassVar[dict[str, Any] | None] = None  # the checked deployment_template
    __photonpack_photon__: ClassVar[bool] = True  # handler.is_photon: a photon to the server

    @overload
    @staticmethod
    def handler(path: F, /) -> F: ...
    @overload
    @staticmethod
    def handler(
        path: str | None = None,
        *,
        method: str = "POST",
        example: Any = None,
        examples: Any = None,
        use_raw_args: bool = False,
        mount: bool = False,
        cancel_on_disconnect: float | None = None,
        max_batch_size: int | None = None,
        max_wait_time: float | None = None,
        include_in_schema: bool = True,
        use_router_if_possible: bool = True,
    ) -> Callable[[F], F]: ...
    @staticmethod
    def handler(path: Any = None, **options: Any) -> Any:
        """The :func:`handler` decorator, as ``@Photon.handler``."""
        return handler(path, **options)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _validate_declaration(cls)

    def __init__(self, name: str | None = None, model: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        if model is not None:  # Lepton's argument; unset, it would shadow a handler named model
            self.model = model
        self._photon_lock = threading.RLock()
        self._photon_state = "new"  # "new" -> "initializing" -> "ready"
        self._photon_init_thread: int | None = None

    def init(self) -> None:
        """Load models and other state; runs once before the first call."""

    def _photon_ensure_init(self) -> None:
        try:
            state = self.__dict__["_photon_state"]
        except KeyError:
            raise PhotonDefinitionError(
                f"{type(self).__name__}.__init__ does not call super().__init__(); "
                "move the set-up into init(), which photonpack runs once before the first call"
            ) from None
        if state == "ready":
            return
        with self._photon_lock:
            if self._photon_state == "ready":
                return
            if self._photon_init_thread == threading.get_ident():
                return  # a handler called from inside init()
            self._photon_state = "initializing"
            self._photon_init_thread = threading.get_ident()
            try:
                # The instance's template: Lepton's photons may adjust it in __init__.
                apply_template(type(self).__name__, getattr(self, "deployment_template", None))
                self.init()
            except BaseException:
                self._photon_state = "new"
                raise
            finally:
                self._photon_init_thread = None
            self._photon_state = "ready"

    def launch(
        self,
        host: str = "0.0.0.0",  # noqa: S104 - Lepton's default: a photon is a server
        port: int = 8080,
        *,
        token: str | None = None,
        log_level: str | None = None,
    ) -> None:
        """Serve this photon with uvicorn until SIGTERM or Ctrl-C (``python photon.py``).

        ``log_level`` defaults to ``$PHOTONPACK_LOG_LEVEL``, else info; the
        format and the access log follow :mod:`photonpack.serving.logs`.
        """
        from photonpack.serving.logs import ready
        from photonpack.serving.server import serve, token_from_environment

        token = token or token_from_environment()

        def announce(url: str) -> None:
            # launch() is a program's entry point, like the CLI: it tells its user where to go.
            ready(self.name, url)

        serve(self, host=host, port=port, token=token, log_level=log_level, on_ready=announce)


# True while File's validator builds an instance: a subclass's __init__ then
# knows it is not being called by the photon's own code (FileParam's warning).
VALIDATING: contextvars.ContextVar[bool] = contextvars.ContextVar("VALIDATING", default=False)


class File(BaseModel):
    """A binary input: bytes, a file object, a ``data:`` URI, base64 text or an http(s) URL.

    A URL is fetched when the content is first read (``get_content()``,
    ``get_bytesio()``, ``file``, ``get_temp_file()``), as in Lepton; until
    then ``content`` is empty and ``url`` names it.
    """

    content: bytes
    _url: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _coerce(cls, value: Any, build: ModelWrapValidatorHandler[File]) -> File:
        value = cls._wire(value)
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            value = cls._wire(value["content"])
        validating = VALIDATING.set(True)  # pydantic calls __init__ from build()
        try:
            if isinstance(value, str) and is_url(value):
                file = build({"content": b""})
                file._url = value
                return file
            return build(_file_fields(value))
        finally:
            VALIDATING.reset(validating)

    @classmethod
    def _wire(cls, value: Any) -> Any:
        """A subclass's older wire format, rewritten to one this class reads."""
        return value

    def __init__(self, content: Any = None, /, **data: Any) -> None:
        if isinstance(content, str) and is_url(content):
            super().__init__(content=b"")
            self._url = content
            return
        if content is not None:
            data = _file_fields(content)
        super().__init__(**data)

    @property
    def url(self) -> str | None:
        """The URL the content comes from, or None when it was sent as bytes."""
        return self._url

    def get_content(self) -> bytes:
        """The file's bytes (a URL is downloaded on the first read; FileContentError offline)."""
        if self._url is not None and not self.content:
            self.content = download(self._url)
        return self.content

    def get_bytesio(self) -> io.BytesIO:
        """The file's bytes as a fresh ``BytesIO``."""
        return io.BytesIO(self.get_content())

    @property
    def file(self) -> io.BytesIO:
        """The content as a fresh file object (Lepton's name for ``get_bytesio()``)."""
        return self.get_bytesio()

    def get_temp_file(self) -> IO[bytes]:
        """The content in a named temporary file, at its start; deleted when closed."""
        temp = tempfile.NamedTemporaryFile()  # noqa: SIM115 - the caller owns it, as in Lepton
        temp.write(self.get_content())
        temp.flush()
        temp.seek(0)
        return temp

    def __repr__(self) -> str:
        if self._url is not None and not self.content:
            return f"File(url={self._url!r})"
        return f"File({len(self.content)} bytes)"


def _file_fields(value: Any) -> Any:
    """The ``File`` fields for any accepted input; other values go to pydantic as they are."""
    if isinstance(value, File):
        return {"content": value.get_content()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"content": bytes(value)}
    if hasattr(value, "read"):
        return {"content": value.read()}
    if isinstance(value, str):
        return {"content": _decode_text(value)}
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return {"content": _decode_text(value["content"])}
    return value


def _decode_text(text: str) -> bytes:
    if text.startswith("data:"):
        _, _, payload = text.partition(",")
        return base64.b64decode(payload)
    return base64.b64decode(text, validate=True)


class _BinaryResponse(Response):
    """A response whose content may be bytes or a readable file object (a ``BytesIO``)."""

    def __init__(self, content: bytes | IO[bytes] | None = None, **kwargs: Any) -> None:
        if content is not None and hasattr(content, "read"):
            if hasattr(content, "seek"):
                content.seek(0)
            content = content.read()
        super().__init__(content=content, **kwargs)


class PNGResponse(_BinaryResponse):
    """An ``image/png`` response."""

    media_type = "image/png"


class JPEGResponse(_BinaryResponse):
    """An ``image/jpeg`` response."""

    media_type = "image/jpeg"


class WAVResponse(_BinaryResponse):
    """An ``audio/wav`` response."""

    media_type = "audio/wav"
