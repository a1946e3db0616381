"""``verify``, ``inspect``, ``diff``, ``sbom``: what CI runs on archives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from photonpack.cli._app import cli, progress_shown
from photonpack.cli._photon import name_option, one_photon, stored_photon
from photonpack.errors import PhotonpackError, UsageError

# -- CI: verify / inspect / diff / sbom ------------------------------------

_ARCHIVE = click.Path(path_type=Path, dir_okay=False)


@cli.command()
@click.argument("archive", type=_ARCHIVE, required=False)
@name_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--store", "check_store", is_flag=True, help="Re-hash the local store instead of an archive."
)
@click.option(
    "--rebuild",
    "rebuild_from",
    metavar="SPEC",
    help="Also rebuild from this source (file.py[:Class]) and its lock; exit 3 unless "
    "the digest is identical.",
)
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Also require the archive to be this photon (exit 3 otherwise).",
)
@click.pass_context
def verify(
    ctx: click.Context,
    archive: Path | None,
    photon_name: str | None,
    as_json: bool,
    check_store: bool,
    rebuild_from: str | None,
    digest: str | None,
) -> None:
    """Re-hash ARCHIVE (or -n NAME) offline: exit 0 if clean, 3 on any integrity failure."""
    import json

    from photonpack._units import format_size
    from photonpack.admit import parse_expected
    from photonpack.cli._progress import ProgressLine
    from photonpack.verify import verify_stored

    expected = parse_expected(digest)
    if check_store:
        if archive is not None or photon_name is not None:
            raise UsageError("verify --store takes no ARCHIVE or -n NAME")
        if rebuild_from is not None or digest is not None:
            raise UsageError("verify --store takes no --rebuild or --digest")
        ctx.exit(_verify_store(as_json))
    if archive is None and photon_name is None:
        raise UsageError("verify needs a photon: ARCHIVE or -n NAME (or --store)")
    one_photon("verify", archive, photon_name)
    if photon_name is not None:
        stored = stored_photon(photon_name)
        total = stored.manifest.total_size
        with ProgressLine("verifying", total, enabled=progress_shown() and total > 0) as line:
            result = verify_stored(
                stored.store,
                stored.manifest,
                archive_size=stored.archive_size,
                expected=expected,
                progress=line.update,
            )
    else:
        assert archive is not None
        result = _verify_file(archive, expected)
    shown = archive if archive is not None else f"the photon named {photon_name}"
    if as_json:
        report = result.to_dict()  # "path": null for -n: the photon came from no file
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif result.ok and result.manifest is not None:
        m = result.manifest
        verified = f"{len(m.blobs())} blobs, {format_size(m.total_size)} verified"
        click.echo(f"ok {m.name} {m.digest} ({verified})")
    else:
        for problem in result.problems:
            click.echo(f"FAIL {problem}")
        count = len(result.problems)
        click.echo(
            f"error: {shown} failed verification ({count} problem{'s' * (count != 1)}); "
            "the archive was damaged or altered: fetch or build it again",
            err=True,
        )
    if not result.ok:
        ctx.exit(3)
    if rebuild_from is not None and result.manifest is not None:
        ctx.exit(_verify_rebuild(result.manifest, rebuild_from, archive))


def _verify_file(archive: Path, expected: str | None) -> Any:
    """``verify_archive`` with a progress line on a terminal (the file's bytes read)."""
    from photonpack.cli._progress import ProgressLine
    from photonpack.verify import verify_archive

    try:
        total = archive.stat().st_size
    except OSError:
        total = 0  # verify_archive says what is wrong with the file
    with ProgressLine("verifying", total, enabled=progress_shown() and total > 0) as line:
        return verify_archive(archive, expected=expected, progress=line.update)


def _verify_store(as_json: bool) -> int:
    import json

    from photonpack.store import Store
    from photonpack.verify import verify_store

    store = Store()
    problems = verify_store(store)
    if as_json:
        click.echo(json.dumps({"ok": not problems, "problems": problems}, indent=2))
    for problem in [] if as_json else problems:
        click.echo(f"FAIL {problem}")
    if problems:
        return 3
    if not as_json:
        click.echo(f"ok the store {store.root} is intact")
    return 0


def _verify_rebuild(built: Any, spec_text: str, archive: Path | None) -> int:
    import tempfile

    from photonpack.build import rebuild
    from photonpack.diff import diff
    from photonpack.diff_render import render_text
    from photonpack.diff_sides import side_from_manifest
    from photonpack.serving.source import parse_spec
    from photonpack.store import Store

    if archive is not None:
        # The archive carries its wheels, its sdists and their build wheels: with them in
        # the store, the rebuild fetches nothing (it works air-gapped, from an empty store).
        Store().import_archive(archive)
    with tempfile.TemporaryDirectory(prefix="photonpack-rebuild-") as scratch:
        again = rebuild(parse_spec(spec_text), built, Path(scratch) / "rebuilt.photon")
    if again.digest == built.digest:
        click.echo(f"reproducible: rebuilding {spec_text} gives {built.digest}")
        return 0
    changes = diff(side_from_manifest(built, "archive"), side_from_manifest(again, "rebuild"))
    click.echo(render_text(changes))
    click.echo(
        f"error: not reproducible: the archive is {built.digest}, rebuilding {spec_text} "
        f"gives {again.digest}",
        err=True,
    )
    return 3


@cli.command("inspect")
@click.argument("archive", metavar="ARCHIVE | REF", required=False)
@name_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_(archive: str | None, photon_name: str | None, as_json: bool) -> None:
    """Show what ARCHIVE, -n NAME or the photon at registry REF holds, from its manifest alone.

    Fast, and not a verification. For a REF, the artifacts attached to it
    (referrers, such as its SBOM) are listed too; logins come from the auth files.
    """
    import json

    from photonpack.admit import is_archive_path
    from photonpack.archive import read_manifest
    from photonpack.summary import inspect_report, render_inspect

    one_photon("inspect", archive, photon_name)
    if archive is None:
        stored = stored_photon(photon_name or "")
        report = inspect_report(stored.manifest, archive_size=stored.archive_size)
    elif is_archive_path(archive):
        path = Path(archive)
        report = inspect_report(read_manifest(path), archive_size=path.stat().st_size)
    else:
        from photonpack.cli.registry import inspect_remote

        report = inspect_remote(archive)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render_inspect(report), nl=False)


@cli.command("diff")
@click.argument("sides", nargs=-1, type=_ARCHIVE, metavar="[A] [B]")
@click.option(
    "-n",
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="A side that is the photon of this name in the local store; give it twice for "
    "both sides. Names come first: 'diff -n old new.photon' compares old with new.photon.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 if A and B differ, 2 if a difference breaks the handler API.",
)
@click.pass_context
def diff_(
    ctx: click.Context,
    sides: tuple[Path, ...],
    names: tuple[str, ...],
    fmt: str,
    as_json: bool,
    exit_code: bool,
) -> None:
    """Compare two photons (archives, -n NAMEs, or two pylock .toml files): packages,
    hashes, API, files."""
    import json
    import sys

    from photonpack.diff import diff
    from photonpack.diff_render import render_markdown, render_text
    from photonpack.diff_sides import load_side, side_from_manifest

    if len(names) + len(sides) != 2:
        raise UsageError(
            f"diff compares two photons, got {len(names) + len(sides)}: give A B, "
            "-n OLD -n NEW, or -n OLD B"
        )
    if as_json:
        if fmt not in ("text", "json"):
            raise UsageError(f"diff takes --json or --format {fmt}, not both")
        fmt = "json"
    loaded = [side_from_manifest(stored_photon(name).manifest, f"-n {name}") for name in names]
    loaded.extend(load_side(path) for path in sides)
    result = diff(loaded[0], loaded[1])
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        from photonpack.serving.logs import colour_wanted  # asyncio: not for every command

        colour = colour_wanted(sys.stdout)  # a terminal, and NO_COLOR unset or empty
        click.echo(render_text(result, colour=colour), nl=False, color=colour)
    if exit_code:
        ctx.exit(result.exit_code)


@cli.command()
@click.argument("archive", type=_ARCHIVE, required=False)
@name_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cyclonedx", "spdx"]),
    default="cyclonedx",
    show_default=True,
    help="CycloneDX 1.6 JSON or SPDX 2.3 JSON.",
)
def sbom(archive: Path | None, photon_name: str | None, output: Path | None, fmt: str) -> None:
    """Print a deterministic SBOM of ARCHIVE (or -n NAME): its wheels, their dependency
    graph (from the lock) and licenses (from each wheel's METADATA), and its files."""
    from photonpack.sbom.document import archive_sbom, photon_sbom

    one_photon("sbom", archive, photon_name)
    if photon_name is not None:
        stored = stored_photon(photon_name)
        data = photon_sbom(stored.manifest, stored.store.blob_path, fmt)
    else:
        assert archive is not None
        data = archive_sbom(archive, fmt)
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise PhotonpackError(f"cannot write {output}: {exc.strerror or exc}") from exc
