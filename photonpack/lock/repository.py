"""A pip-tools repository for one target: its finder and resolver see the target, not this machine.

pip-tools' ``BacktrackingResolver`` drives pip's resolver over a
``PyPIRepository``. For a target other than the running interpreter two
things must describe the target instead of this machine:

* **Wheel tags and Requires-Python.** The repository's ``PackageFinder`` gets
  a pip ``TargetPython`` built from :meth:`Target.platforms` (with
  ``--only-binary :all:``, so no sdist is ever built), and pip's resolver gets
  the target's ``py_version_info`` so ``Requires-Python`` in metadata is
  checked against the target.
* **Environment markers.** pip evaluates every marker with
  ``pip._vendor.packaging.markers.default_environment()``, i.e. the running
  interpreter, even with ``--platform``. While one target resolves, that one
  function is replaced by the target's PEP 508 environment
  (:func:`target_environment`). The replacement is undone on exit;
  resolution is sequential, so no other code observes it. The alternative, a
  resolver loop of our own over pip-tools' repository, would duplicate pip's
  backtracking.

Every target's repository uses the one pip session of the resolve call
(:class:`~photonpack.lock.shared.SharedIndex`): one connection pool, one
set of credentials, certificates loaded once (:mod:`photonpack.lock.tls`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Set
from pathlib import Path
from typing import Any

from photonpack.lock.index import IndexSettings
from photonpack.lock.session import session_args
from photonpack.lock.shared import SharedIndex, TargetView
from photonpack.lock.target import Target
from photonpack.lock.tls import pip_tls

__all__ = ["TargetRepository", "target_environment", "target_view"]


class TargetRepository:
    """A pip-tools repository for one target, and every pip resolver made from it."""

    def __init__(
        self,
        target: Target,
        index: IndexSettings,
        work: Path,
        shared: SharedIndex,
        sources: Set[str] = frozenset(),
    ) -> None:
        self.target = target
        self.index = index
        self.work = work
        self.shared = shared
        self.sources = frozenset(sources)
        self.resolvers: list[Any] = []
        self.repository = _repository(
            target, index, work, resolvers=self.resolvers, sources=set(sources), shared=shared
        )
        known = (view for view in shared.views if view.target == target)
        self.view = next(known, None) or target_view(target, index)
        self.tags = self.view.tag_set

    def with_sources(self, sources: Set[str]) -> TargetRepository:
        """The same target's repository, allowing the sdists of ``sources``."""
        return TargetRepository(self.target, self.index, self.work, self.shared, sources)


@contextlib.contextmanager
def target_environment(target: Target) -> Iterator[None]:
    """pip's marker environment is ``target``'s while this lasts."""
    from pip._vendor.packaging import markers

    environment = target.environment()
    original = markers.default_environment
    markers.default_environment = lambda: dict(environment)  # type: ignore[assignment,return-value]
    try:
        yield
    finally:
        markers.default_environment = original


def _pip_args(index: IndexSettings) -> list[str]:
    args = [*session_args(index), "--only-binary", ":all:"]
    return [*args, "--pre"] if index.pre else args


def target_view(target: Target, index: IndexSettings) -> TargetView:
    """What the shared index needs of ``target`` to fetch ahead for it: its wheel tags (best
    first, as its finder orders them), marker environment and ``--pre``."""
    tags = tuple(str(tag) for tag in _target_python(target).get_sorted_tags())
    return TargetView(target=target, tags=tags, environment=target.environment(), pre=index.pre)


def _target_python(target: Target) -> Any:
    from pip._internal.models.target_python import TargetPython

    return TargetPython(
        platforms=target.platforms(),
        py_version_info=target.python_version,
        abis=[target.interpreter, "abi3", "none"],
        implementation="cp",
    )


@contextlib.contextmanager
def _session_of(shared: SharedIndex) -> Iterator[None]:
    """pip-tools' repository takes the shared session instead of building its own."""
    from pip._internal.cli.index_command import SessionCommandMixin

    if shared.session is None:
        with pip_tls():  # the session pip builds now: its TLS trust set up once
            yield
        return
    original = SessionCommandMixin.__dict__["_build_session"]
    SessionCommandMixin._build_session = lambda self, *a, **k: shared.session  # type: ignore[method-assign]
    try:
        yield
    finally:
        SessionCommandMixin._build_session = original  # type: ignore[method-assign]


def _repository(
    target: Target,
    index: IndexSettings,
    work: Path,
    *,
    resolvers: list[Any],
    sources: set[str],
    shared: SharedIndex,
) -> Any:
    """A pip-tools repository whose finder and resolver see ``target``, not this interpreter.

    Every pip resolver it makes is appended to ``resolvers``: after a failure,
    its factory knows the wheels it discarded as mislabelled.
    """
    from piptools.repositories import PyPIRepository

    with _session_of(shared):
        repository = PyPIRepository(_pip_args(index), cache_dir=str(work))
    if shared.session is None:
        shared.session = repository.session
    _mute_pip_logging()
    python = _target_python(target)
    # pip-tools builds its finder for the running interpreter; rebuild it for the target,
    # and make pip's resolver check Requires-Python against the target's version.
    repository._finder = repository.command._build_package_finder(
        options=repository.options, session=repository.session, target_python=python
    )
    if sources:
        repository._finder.format_control = _sources_for(set(sources))
    make_resolver = functools.partial(
        repository.command.make_resolver, py_version_info=target.python_version
    )

    def recorded(*args: Any, **kwargs: Any) -> Any:
        resolvers.append(resolver := make_resolver(*args, **kwargs))
        return resolver

    repository.command.make_resolver = recorded  # type: ignore[method-assign]
    return repository


def _mute_pip_logging() -> None:
    import logging

    # After PyPIRepository ran pip's logging setup, which sets these levels itself.
    for name in ("pip", "pip._vendor"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _sources_for(names: set[str]) -> Any:
    """A pip ``FormatControl``: wheels only, except sdists for ``names``.

    ``only_binary`` stays ``{":all:"}``, so the isolated build environment
    pip prepares an sdist's metadata in installs its build requirements from
    wheels only (pip passes the finder's format control on).
    """
    from pip._internal.models.format_control import FormatControl

    class SourcesFor(FormatControl):
        __slots__ = ()

        def get_allowed_formats(self, canonical_name: str) -> frozenset[str]:
            if canonical_name in names:
                return frozenset({"binary", "source"})
            return frozenset({"binary"})

    return SourcesFor(set(), {":all:"})
