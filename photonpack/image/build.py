"""A photon and a base image -> an OCI image, without a daemon, without pip, offline.

The base is read and checked first (``checks.py``): nothing is written for a
base that cannot run the photon. Then the environment is installed into a
staging directory from the archive's verified wheels (or linked from the
store's environments that hold them installed and compiled: the same bytes,
see ``environment.py``), split into layers (``layering.py``), and each layer
written deterministically (``layer.py``) in parallel, the wheels' own deflate
streams copied into it (``streams.py``). The result is the config, the
manifest and the blobs; the writers
(``output.py``) put them in an OCI layout, a docker-archive or a registry.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from photonpack.archive.manifest import Manifest
from photonpack.errors import ImageError, IntegrityError
from photonpack.image.base import CONFIG_TYPE, BaseImage, Blob, canonical
from photonpack.image.checks import BasePython, base_facts, match_target, missing_packages
from photonpack.image.config import LABEL_PREFIX, image_config, image_manifest
from photonpack.image.environment import ENV_PATH, bytecode_python, image_interpreter, stage
from photonpack.image.layer import Compression, Entry, LayerFile, write_layer
from photonpack.image.layering import PlannedLayer, plan_layers
from photonpack.image.libraries import MissingLibrary, describe, missing_libraries
from photonpack.image.platforms import target_platform
from photonpack.image.rootfs import RootFS, read_rootfs
from photonpack.image.streams import Stream, wheel_streams
from photonpack.image.users import lepton_user
from photonpack.install.cache import WheelCache
from photonpack.install.environment import wheels_for_target
from photonpack.lock.target import Target
from photonpack.store import Store

__all__ = ["Image", "ImageOptions", "Progress", "build_image"]


class Progress(Protocol):
    """Where a build reports its stages (the CLI's progress line): bytes done of a total."""

    def retitle(self, label: str, total: int) -> None: ...
    def update(self, done: int) -> None: ...


class _Count:
    """Bytes done across threads, passed on to a :class:`Progress`."""

    def __init__(self, progress: Progress | None, label: str, total: int) -> None:
        self._progress, self._done, self._lock = progress, 0, threading.Lock()
        if progress is not None:
            progress.retitle(label, total)
            progress.update(0)

    def __call__(self, count: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._done += count
                self._progress.update(self._done)


@dataclass(frozen=True, kw_only=True)
class ImageOptions:
    """``epoch``: the mtime and ``created`` of everything (``SOURCE_DATE_EPOCH``).

    ``compression`` applies to the layers the image adds; the base's stay as they are.
    ``progress`` hears the stages: reading the base, installing, compressing the layers.
    """

    epoch: int = 0
    check_system: bool = True
    compression: Compression = "gzip"
    reuse_environments: bool = True  # link wheels the store's environments hold (same bytes)
    workers: int = 0  # threads writing layers; 0: one a core (the bytes do not depend on it)
    progress: Progress | None = None


@dataclass(frozen=True, kw_only=True)
class Image:
    """A built image: its manifest and config bytes and every blob, base layers first."""

    photon: Manifest
    base: BaseImage
    target: Target  # the archive's target that the image runs
    python: BasePython
    manifest: bytes
    digest: str  # the manifest's: the image's identity
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    tar_sizes: tuple[int, ...]  # each layer's uncompressed size
    added: int  # how many layers the image adds to the base's
    warnings: tuple[str, ...]
    work: Path | None = None  # where the blobs this build made lie (the config, added layers)
    variant: str = ""  # the platform variant of the config (arm's v6 or v7)

    @property
    def platform(self) -> dict[str, str]:
        """``os``, ``architecture`` and ``variant`` (when there is one), as an index lists them."""
        config = self.base.config
        found = {"os": str(config.get("os") or "linux"), "architecture": self.base.architecture}
        return found | ({"variant": self.variant} if self.variant else {})

    @property
    def size(self) -> int:
        """Bytes of every blob: what a registry holds for it."""
        return len(self.manifest) + self.config.size + sum(b.size for b in self.layers)


def _verified_blobs(store: Store, manifest: Manifest) -> None:
    """Re-hash the photon's blobs in the store: they may have changed since they entered it."""
    for sha, size in manifest.blobs().items():
        if not store.verify_blob(sha, size):
            raise IntegrityError(
                f"blob sha256:{sha} of {manifest.name} ({manifest.digest}) is missing from the "
                "store or was altered after it was verified; import the archive again"
            )


def _bytes(layer: PlannedLayer) -> int:
    """The layer's content bytes, as planned (for the progress line)."""
    return sum(_planned_size(entry) for entry in layer.entries)


def _planned_size(entry: Entry) -> int:
    if isinstance(entry.source, Path):
        return entry.size if entry.size is not None else entry.source.stat().st_size
    return len(entry.source or b"")


def _write(
    plan: list[PlannedLayer], folder: Path, epoch: int, options: ImageOptions
) -> list[LayerFile]:
    """Write the planned layers in parallel, biggest first (the last one started is then a
    small one, so no core idles while another compresses a big wheel alone); in plan order."""
    folder.mkdir()
    sizes = [_bytes(layer) for layer in plan]
    written = _Count(options.progress, "compressing layers", sum(sizes))
    suffix = ".tar.zst" if options.compression == "zstd" else ".tar.gz"

    def write(number: int) -> LayerFile:
        return write_layer(
            plan[number].entries,
            folder / f"{number:03d}{suffix}",
            mtime=epoch,
            compression=options.compression,
            on_written=written,
        )

    biggest_first = sorted(range(len(plan)), key=lambda number: -sizes[number])
    workers = options.workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {number: pool.submit(write, number) for number in biggest_first}
        return [futures[number].result() for number in range(len(plan))]


def _with_streams(plan: list[PlannedLayer], streams: Mapping[str, Stream]) -> list[PlannedLayer]:
    """The plan, its wheels' files carrying their wheel's deflate stream (``streams.py``)."""
    return [
        replace(
            layer,
            entries=tuple(
                replace(entry, stream=streams[entry.path]) if entry.path in streams else entry
                for entry in layer.entries
            ),
        )
        for layer in plan
    ]


def _library_problems(missing: list[MissingLibrary], *, base: str, strict: bool) -> list[str]:
    """Raise for a missing library manylinux wheels assume; warn about the others."""
    assumed = [item for item in missing if item.assumed]
    if assumed and strict:
        raise ImageError(
            f"base {base} lacks shared libraries the photon's wheels assume the system has: "
            f"{describe(assumed)}; choose a base that has them, or build one (FROM the base, "
            "install them); --skip-system-check builds anyway"
        )
    others = [item for item in missing if not item.assumed or not strict]
    if not others:
        return []
    return [
        f"base {base} has no {describe(others)}; the photon fails to import them unless the "
        "host provides them at run time (as a GPU driver provides libcuda)"
    ]


def _variant(base: BaseImage, target: Target) -> str:
    """The base's platform variant, else the target's (``armv7l`` -> ``v7``): arm/v6 is not v7."""
    if base.config.get("variant"):
        return str(base.config["variant"])
    platform = target_platform(str(target)) or ""
    return platform.split("/")[2] if platform.count("/") == 2 else ""


def build_image(
    store: Store,
    manifest: Manifest,
    base: BaseImage,
    work: Path,
    options: ImageOptions,
    *,
    rootfs: RootFS | None = None,
) -> Image:
    """Build the image of ``manifest`` (its blobs in ``store``) on ``base`` under ``work``.

    ``work`` must be an empty directory; the blobs of the image stay there.
    ``rootfs``: the base's tree, when the caller has read it already (``read_rootfs``).
    """
    # The photon's blobs are re-hashed while the base's layers are read: both are mostly
    # sha256 and zlib, which run without the GIL. The base's problems are reported first.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="photonpack-verify") as side:
        verifying = side.submit(_verified_blobs, store, manifest)
        base_size = sum(blob.size for blob in base.layers)
        if rootfs is None:
            rootfs = read_rootfs(base, _Count(options.progress, f"reading {base.name}", base_size))
        fs = rootfs
        facts = base_facts(fs, base.config)
        python, own, target = match_target(facts, manifest.targets, base=base.name)
        if options.check_system:
            missing = missing_packages(facts, manifest.photon.system_dependency, base=base.name)
            if missing:
                raise ImageError(
                    f"base {base.name} lacks the system packages {manifest.name} needs: "
                    f"{', '.join(missing)} (checked its {facts.package_db} database); choose a "
                    "base that has them, or build one (FROM the base, apt-get install them)"
                )
        verifying.result()
    compiler = bytecode_python(python)
    warnings = []
    if compiler is None:
        bytecode = f"none: this machine's Python is not {python.short_version}"
        warnings.append(
            f"no bytecode in the image: the base has Python {python.version} and photonpack runs "
            f"on {sys.version_info[0]}.{sys.version_info[1]}; the photon will start slower. "
            f"Run photonpack image with Python {python.short_version} to include it"
        )
    else:
        bytecode = f"cpython-3{python.minor}"
    wheels = wheels_for_target(manifest, target)
    sizes = {wheel.sha256: wheel.size for wheel in manifest.wheels}
    wheel_bytes = sum(sizes.get(sha, 0) for sha, _name in wheels)
    installed = _Count(
        options.progress,
        f"installing {len(wheels)} wheel{'' if len(wheels) == 1 else 's'}",
        wheel_bytes,
    )
    interpreter = image_interpreter(python, own, facts)
    wheel_paths = [(name, store.blob_path(sha)) for sha, name in wheels]
    staged = stage(
        work / "env",
        interpreter,
        wheels=wheel_paths,
        runtime_files={entry.path: store.blob_path(entry.sha256) for entry in manifest.runtime},
        compiler=compiler,
        cache=WheelCache(store) if options.reuse_environments else None,
    )
    installed(wheel_bytes)
    glibc = facts.libc is not None and facts.libc[0] == "glibc"
    user = lepton_user(fs)
    files = [(e, store.blob_path(e.sha256)) for e in manifest.files]
    plan = plan_layers(staged, user, files, init=bool(manifest.photon.cmd))
    if options.compression == "gzip":
        plan = _with_streams(
            plan, wheel_streams(wheel_paths, f"{ENV_PATH}/{interpreter.site_packages}")
        )
    # The library check (Python reading ELF headers) runs while the layers compress (zlib
    # and sha256 in C, without the GIL); it still comes before anything leaves ``work``.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="photonpack-elf") as side:
        checking = side.submit(missing_libraries, staged.root, fs, glibc=glibc)
        written = _write(plan, work / "layers", options.epoch, options)
        libraries = checking.result()
    warnings.extend(_library_problems(libraries, base=base.name, strict=options.check_system))
    variant = _variant(base, target)
    config = image_config(
        manifest,
        base,
        diff_ids=[layer.diff_id for layer in written],
        history=[layer.title for layer in plan],
        uid=user.uid,
        gid=user.gid,
        epoch=options.epoch,
        bytecode=bytecode,
        variant=variant,
    )
    config_bytes = canonical(config)
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config_path = work / "config.json"
    config_path.write_bytes(config_bytes)
    ours = [
        Blob(media_type=layer.media_type, digest=layer.digest, size=layer.size, path=layer.path)
        for layer in written
    ]
    layers = (*base.layers, *ours)
    annotations = {
        "org.opencontainers.image.base.digest": base.digest,
        f"{LABEL_PREFIX}.photon.digest": manifest.digest,
    }
    manifest_bytes = canonical(
        image_manifest(
            (config_digest, len(config_bytes)), [b.descriptor() for b in layers], annotations
        )
    )
    return Image(
        photon=manifest,
        base=base,
        target=target,
        python=python,
        manifest=manifest_bytes,
        digest="sha256:" + hashlib.sha256(manifest_bytes).hexdigest(),
        config=Blob(
            media_type=CONFIG_TYPE, digest=config_digest, size=len(config_bytes), path=config_path
        ),
        layers=layers,
        diff_ids=(*base.diff_ids, *(layer.diff_id for layer in written)),
        tar_sizes=(*fs.uncompressed_sizes, *(layer.tar_size for layer in written)),
        added=len(written),
        warnings=tuple(warnings),
        work=work,
        variant=variant,
    )
