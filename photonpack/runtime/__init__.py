"""The serving side: the photon's environment, the FastAPI app, the serve process.

Kept import-light: importing ``photonpack.runtime`` never imports FastAPI.
"""
