"""The seed example written for Lepton AI's SDK: it runs unchanged on photonpack.

Serve it with ``photonpack run -m counter.py`` (no leptonai installed needed), then
``Client(local()).add(x=3)``.
"""

from leptonai.photon import Photon


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
