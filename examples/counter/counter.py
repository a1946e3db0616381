"""The seed example: a counter with two handlers.

Serve it with ``photonpack run -m counter.py`` (or ``python counter.py``), then
``Client(local()).add(x=3)``.
"""

from photonpack import Photon


class Counter(Photon):
    """Adds and subtracts, remembering the total."""

    def init(self) -> None:
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        """Add x to the counter and return the new total."""
        self.counter += x
        return self.counter

    @Photon.handler("sub")
    def sub(self, x: int) -> int:
        """Subtract x from the counter and return the new total."""
        return self.add(-x)


if __name__ == "__main__":
    Counter().launch()
