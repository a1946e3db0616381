"""A photon written for Lepton AI's SDK that uses most of it: it runs unchanged on photonpack.

A Flask app mounted at ``/web``, ``deployment_template`` env read in ``init()``,
a handler taking ``**kwargs``, ``cancel_on_disconnect``, server-side batching,
``get_file_content``, and loguru, which Lepton's runtime had and the photon
never declared (photonpack locks Lepton's runtime set for it). Serve it with
``photonpack run -m full.py``, or build it (``photonpack build full.py``) and
``photonpack run full.photon``; call it from plain Python with
``from leptonai.client import Client, local``.
"""

import asyncio
import os

from flask import Flask
from leptonai.photon import File, Photon, get_file_content
from loguru import logger


class Full(Photon):
    """Greets, squares in batches, waits, measures files, and serves a Flask page."""

    requirement_dependency = ["flask"]
    deployment_template = {
        "resource_shape": "cpu.small",
        "env": {"GREETING": "hello", "PUNCTUATION": "!"},
    }
    handler_max_concurrency = 4

    def init(self) -> None:
        # Lepton's platform set these from the template; so does photonpack, before init().
        self.greeting = os.environ["GREETING"]
        self.punctuation = os.environ["PUNCTUATION"]
        logger.info("greeting with {!r}", self.greeting)

    @Photon.handler
    def greet(self, name: str, **kwargs: str) -> dict[str, object]:
        """Greet ``name``; any other JSON fields come back as they were sent."""
        return {"text": f"{self.greeting}, {name}{self.punctuation}", "extra": kwargs}

    @Photon.handler(max_batch_size=8, max_wait_time=0.05)
    def square(self, x: int) -> int:
        """Square ``x``: concurrent calls arrive together, as a list, and get a list back."""
        # The annotations describe one call, as the API does; batched, the handler sees lists.
        return [value * value for value in x]  # type: ignore[attr-defined,return-value]

    @Photon.handler(cancel_on_disconnect=0.5)
    async def wait(self, seconds: float) -> str:
        """Sleep; stopped early if the caller hangs up."""
        await asyncio.sleep(seconds)
        return f"waited {seconds} s"

    @Photon.handler
    def size(self, file: File) -> int:
        """The number of bytes in ``file`` (base64, a data: URI or a URL)."""
        return len(get_file_content(file))

    @Photon.handler("web", mount=True)
    def web(self) -> Flask:
        site = Flask("full")

        @site.route("/")
        def index() -> str:
            return f"<h1>{self.greeting} from Flask{self.punctuation}</h1>"

        return site


if __name__ == "__main__":
    Full().launch()
