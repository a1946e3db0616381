"""``photonpack inspect``: what an archive holds, from its manifest alone (fast)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from photonpack._units import format_size
from photonpack.archive.manifest import Manifest

__all__ = ["inspect_report", "render_inspect", "type_of"]

_TITLE = "org.opencontainers.image.title"


def type_of(schema: Mapping[str, Any] | None) -> str:
    """A short name for a JSON Schema: ``integer``, ``array[string]``, ``Item``, ``a | b``."""
    schema = schema or {}
    kind = schema.get("type")
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
    elif "anyOf" in schema or "oneOf" in schema:
        name = " | ".join(type_of(s) for s in schema.get("anyOf", schema.get("oneOf")))
    elif kind == "array":
        name = f"array[{type_of(schema.get('items'))}]"
    elif isinstance(kind, list):
        name = " | ".join(str(k) for k in kind)
    elif kind is not None:
        name = str(kind)
    else:
        name = json.dumps(schema, sort_keys=True) if schema else "any"
    return name


def _origin(source: dict[str, Any]) -> str:
    """An index's sdist by its file name; a git commit, a project or an archive URL as locked."""
    url = str(source.get("url", ""))
    return source["filename"] if not url or url.endswith(source["filename"]) else url


def inspect_report(manifest: Manifest, *, archive_size: int | None = None) -> dict[str, Any]:
    """The ``inspect --json`` document (documented, stable)."""
    packages: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for w in manifest.wheels:
        wheel: dict[str, Any] = {"filename": w.filename, "size": w.size, "targets": list(w.targets)}
        if w.source is not None:  # built from a locked sdist, which the archive carries
            wheel["sha256"] = w.sha256
            wheel["built_from"] = w.source.to_dict()
        packages.setdefault((w.name, w.version), []).append(wheel)
    report: dict[str, Any] = {
        "name": manifest.name,
        "digest": manifest.digest,
        "entry": manifest.entry,
        "targets": list(manifest.targets),
        "image": manifest.photon.image,
        "system_dependency": list(manifest.photon.system_dependency),
        "requirement_dependency": list(manifest.photon.requirement_dependency),
        "handlers": [
            {
                "name": h.name,
                "method": h.method,
                "path": h.path,
                "parameters": [
                    {"name": p.name, "type": type_of(p.schema), "required": p.required}
                    for p in h.parameters
                ],
                "returns": type_of(h.returns) if h.returns is not None else None,
            }
            for h in manifest.handlers
        ],
        "packages": [
            {"name": name, "version": version, "wheels": wheels}
            for (name, version), wheels in sorted(packages.items())
        ],
        "files": [
            {"path": f.path, "size": f.size, "executable": f.executable} for f in manifest.files
        ],
        "runtime": {
            "files": len(manifest.runtime),
            "size": sum(f.size for f in manifest.runtime),
        },
        "tools": dict(manifest.tools),
        "total_size": manifest.total_size,
        "archive_size": archive_size,
    }
    if manifest.photon.lepton_dependencies:  # only for a photon written for Lepton
        report["lepton_dependencies"] = list(manifest.photon.lepton_dependencies)
    if manifest.photon.exclusions:  # only when the photon has uninstall lines
        report["exclusions"] = list(manifest.photon.exclusions)
    return report


def _signature(handler: dict[str, Any]) -> str:
    params = ", ".join(
        f"{p['name']}: {p['type']}" + ("" if p["required"] else " = ...")
        for p in handler["parameters"]
    )
    returns = f" -> {handler['returns']}" if handler["returns"] else ""
    return f"{handler['method']} {handler['path']}  {handler['name']}({params}){returns}"


def render_inspect(report: dict[str, Any]) -> str:
    """The terminal view of an ``inspect_report``."""
    lines = [
        f"{report['name']}  {report['digest']}",
        f"entry     {report['entry']}",
        f"targets   {', '.join(report['targets']) or '-'}",
        f"image     {report['image'] or '-'}",
        f"system    {', '.join(report['system_dependency']) or '-'}",
    ]
    if report.get("lepton_dependencies"):  # written for Lepton: its runtime set was locked too
        lines.append(f"lepton    {', '.join(report['lepton_dependencies'])}")
    if report.get("exclusions"):  # uninstall lines: kept out even when something requires them
        lines.append(f"excluded  {', '.join(report['exclusions'])}")
    lines += [
        f"handlers ({len(report['handlers'])})",
    ]
    lines += [f"  {_signature(h)}" for h in report["handlers"]]
    lines.append(f"packages ({len(report['packages'])})")
    for p in report["packages"]:
        size = format_size(sum(w["size"] for w in p["wheels"]))
        built = [w["built_from"] for w in p["wheels"] if "built_from" in w]
        origin = "".join(f"  built from {_origin(b)} sha256:{b['sha256'][:12]}" for b in built[:1])
        lines.append(f"  {p['name']} {p['version']}  {size}{origin}")
    lines.append(f"files ({len(report['files'])})")
    lines += [f"  {f['path']}  {format_size(f['size'])}" for f in report["files"]]
    runtime = report["runtime"]
    noun = "file" if runtime["files"] == 1 else "files"
    lines.append(f"runtime   {runtime['files']} {noun}, {format_size(runtime['size'])}")
    size = f"size      {format_size(report['total_size'])} uncompressed"
    if report["archive_size"] is not None:
        size += f", {format_size(report['archive_size'])} archive"
    lines.append(size)
    if "referrers" in report:
        lines.append(f"reference {report['reference']}  {report['manifest_digest']}")
        lines.append(f"referrers ({len(report['referrers'])})")
        lines += [
            f"  {r['artifact_type']}  {r['digest']}  {format_size(r['size'])}"
            + (f"  {r['annotations'][_TITLE]}" if _TITLE in r["annotations"] else "")
            for r in report["referrers"]
        ]
    return "\n".join(lines) + "\n"
