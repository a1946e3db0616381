"""A photon with a real third-party dependency: numpy, locked and shipped in the archive.

``photonpack build -m stats.py`` locks numpy (and the serving stack), puts its
wheel in ``stats.photon``, and ``photonpack run stats.photon`` serves it on a
machine without network, from that wheel only.
"""

import numpy as np

from photonpack import Photon


class Stats(Photon):
    """Summary statistics of a list of numbers, computed with numpy."""

    requirement_dependency = ["numpy>=1.26"]

    @Photon.handler(example={"values": [1.0, 2.0, 4.0]})
    def summary(self, values: list[float]) -> dict[str, float]:
        """Mean, standard deviation, minimum and maximum of ``values``."""
        data = np.asarray(values, dtype=np.float64)
        return {
            "mean": float(data.mean()),
            "std": float(data.std()),
            "min": float(data.min()),
            "max": float(data.max()),
        }

    @Photon.handler(method="GET")
    def version(self) -> str:
        """The numpy version this photon runs with (the locked one)."""
        return str(np.__version__)


if __name__ == "__main__":
    Stats().launch()
