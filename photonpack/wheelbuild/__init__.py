"""Wheels built from locked sources: hermetic builds of sdists (issue 15).

Above `install` (the build environment is installed by photonpack's installer) and
`lock`; the pinned sources themselves are `photonpack.sources`, below `lock`.
"""
