"""photonpack's version, in one place (read by hatchling and by the manifest)."""

__version__ = "0.1.0"
