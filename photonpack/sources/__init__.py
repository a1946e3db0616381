"""Sources: the inputs a wheel is built from, pinned and turned into source archives.

A *source* is a local project directory, a git commit, or an archive URL. Each
is pinned once (a tree digest, a commit id, a sha256) and exported as a
deterministic ``.tar.gz`` (:mod:`photonpack.sources.tarball`): the same bytes
for the same pinned source on any machine with the same zlib. The builder takes
it from there. Standard library and the git CLI only.

- :mod:`photonpack.sources.form`     the source forms (frozen dataclasses)
- :mod:`photonpack.sources.tree`     a project directory: its digest and archive
- :mod:`photonpack.sources.vcs`      git: a ref resolved to a commit, its tree exported
- :mod:`photonpack.sources.remote`   an archive URL, downloaded and hashed
- :mod:`photonpack.sources.archive`  ``source_archive(form, base_dir, cache_dir)``
"""
