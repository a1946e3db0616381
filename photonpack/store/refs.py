"""Names for photons in the store: ``refs/<name>.json`` -> an archive digest."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING

from photonpack.errors import PhotonpackError, StoreError
from photonpack.store.names import store_errors, validate_name

if TYPE_CHECKING:
    from photonpack.store.store import Store

__all__ = ["Ref", "Refs"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ref:
    """A name in the store pointing at an archive digest."""

    name: str
    digest: str
    size: int
    created: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class Refs:
    """The store's named photons (``store.refs``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, name: str, digest: str, size: int) -> Ref:
        """Name ``digest`` (an archive of ``size`` bytes) ``name``."""
        validate_name(name)
        created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        ref = Ref(name=name, digest=digest, size=size, created=created)
        data = json.dumps(ref.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
        self._store.write_atomic(self._store._dir("refs") / f"{name}.json", data)
        return ref

    def get(self, name: str) -> Ref:
        """The ref of ``name``, or a StoreError listing the names there are."""
        validate_name(name)
        path = self._store.root / "refs" / f"{name}.json"
        try:
            raw = json.loads(path.read_bytes())
            return Ref(**{k: raw[k] for k in ("name", "digest", "size", "created")})
        except FileNotFoundError:
            known = ", ".join(ref.name for ref in self.all()) or "none"
            raise StoreError(
                f"no photon named {name!r} in the store {self._store.root} (known: {known}); "
                "create one with 'photonpack create -n NAME -m file.py'"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the ref file {path} is corrupt ({exc}); remove it") from exc

    def all(self) -> list[Ref]:
        """Named photons, newest first."""
        refs = []
        for path in sorted((self._store.root / "refs").glob("*.json")):
            with contextlib.suppress(PhotonpackError):
                refs.append(self.get(path.stem))
        return sorted(refs, key=lambda ref: (ref.created, ref.name), reverse=True)

    def remove(self, name: str) -> Ref:
        """Forget ``name`` (not its blobs); the ref it was."""
        ref = self.get(name)
        with store_errors(self._store.root, f"remove {name}"):
            (self._store.root / "refs" / f"{name}.json").unlink()
        return ref
