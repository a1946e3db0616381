"""A photon that shows the SDK's features: GET handlers, nested paths, files, errors, streams.

Serve it with ``photonpack run -m showcase.py`` and try, for example::

    curl 'http://localhost:8080/greet?name=Ada'
    curl -X POST -H 'Content-Type: application/json' -d '{"n": 3}' http://localhost:8080/math/square
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from pydantic import BaseModel

from photonpack import (
    File,
    HTTPException,
    Photon,
    PNGResponse,
    StreamingResponse,
)

# The 67 bytes of a 1x1 transparent PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000a49444154789c6300010000050001"
    "0d0a2db40000000049454e44ae426082"
)


class Point(BaseModel):
    x: float
    y: float


class Showcase(Photon):
    """Every kind of handler in one photon."""

    requirement_dependency = ["pydantic>=2"]
    handler_max_concurrency = 4

    def init(self) -> None:
        self.greeting = "Hello"

    @Photon.handler(method="GET")
    def greet(self, name: str = "world") -> str:
        """Greet someone: a GET handler with a query parameter."""
        return f"{self.greeting}, {name}!"

    @Photon.handler("items/{item_id}", method="GET")
    def item(self, item_id: int, detail: bool = False) -> dict[str, object]:
        """A GET handler with a path parameter."""
        return {"id": item_id, "detail": detail}

    @Photon.handler("math/square", example={"n": 3})
    def square(self, n: float) -> float:
        """A nested path: the client calls it as c.math.square(n=3)."""
        return n * n

    @Photon.handler("word-count")
    def word_count(self, text: str) -> int:
        """A dash in the path becomes an underscore in the client: c.word_count(text=...)."""
        return len(text.split())

    @Photon.handler
    def midpoint(self, a: Point, b: Point) -> Point:
        """Pydantic models in and out."""
        return Point(x=(a.x + b.x) / 2, y=(a.y + b.y) / 2)

    @Photon.handler
    def size(self, file: File) -> int:
        """A binary input: bytes, a file object or a data: URI."""
        return len(file.get_content())

    @Photon.handler(method="GET")
    def pixel(self) -> PNGResponse:
        """A PNG image."""
        return PNGResponse(io.BytesIO(PIXEL))

    @Photon.handler
    def count(self, n: int) -> StreamingResponse:
        """A streamed plain-text response, one line per number."""

        def lines() -> Iterator[str]:
            for i in range(n):
                yield f"{i}\n"

        return StreamingResponse(lines(), media_type="text/plain")

    @Photon.handler
    def divide(self, a: float, b: float) -> float:
        """HTTPException keeps its status: dividing by zero answers 400."""
        if b == 0:
            raise HTTPException(400, "b must not be zero")
        return a / b

    @Photon.handler
    def forget(self) -> None:
        """No return value: 204 No Content."""


if __name__ == "__main__":
    Showcase().launch()
