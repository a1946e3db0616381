"""The one pip session of a lock, built before pip's resolver is imported.

pip-tools builds its repository's session from pip's ``install`` command, whose
import is most of pip (its resolver, finder, build and install code). A cold lock
spent those tenths of a second before its first request could leave. This module
builds the same session from the only options pip's ``_build_session`` reads, the
general and index option groups, parsed by pip's own configuration-aware parser
from the same arguments (:func:`session_args`) and built by pip's own
``SessionCommandMixin._build_session``; the repositories then take it instead of
building theirs (``lock/repository.py``). The index pages start downloading while
the rest of pip is imported.
"""

from __future__ import annotations

from typing import Any

from photonpack.lock.index import IndexSettings
from photonpack.lock.tls import pip_tls

__all__ = ["lock_session", "session_args"]


def session_args(index: IndexSettings) -> list[str]:
    """pip's arguments for ``index`` that shape its session (all in pip's general and index
    option groups)."""
    # --no-input: a 401 must become an error, never a password prompt (CI has no terminal).
    args = ["--index-url", index.index_url, "--no-input"]
    for url in index.extra_index_urls:
        args += ["--extra-index-url", url]
    for location in index.find_links:
        args += ["--find-links", location]
    # One attempt and a bounded wait: an unreachable mirror is reported, not retried for minutes.
    return [*args, "--retries", "0", "--timeout", "30"]


def lock_session(index: IndexSettings) -> Any:
    """pip's session for ``index``, as pip's install command builds it for these arguments."""
    from pip._internal.cli import cmdoptions
    from pip._internal.cli.index_command import SessionCommandMixin
    from pip._internal.cli.parser import ConfigOptionParser
    from pip._internal.utils.misc import normalize_path

    parser = ConfigOptionParser(name="install", add_help_option=False)
    for group in (cmdoptions.general_group, cmdoptions.index_group):
        parser.add_option_group(cmdoptions.make_option_group(group, parser))
    options, _ = parser.parse_args(session_args(index))
    if options.cache_dir:
        options.cache_dir = normalize_path(options.cache_dir)  # as pip-tools' repository does
    with pip_tls():  # its TLS trust set up once for every connection
        return SessionCommandMixin()._build_session(options)
