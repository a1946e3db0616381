"""``photonpack diff``: semantic differences between archives or locks, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.diff import (
    AttributeChange,
    Diff,
    FileChange,
    HandlerChange,
    PackageChange,
    WheelChange,
    diff,
)
from photonpack.diff_render import render_markdown, render_text
from photonpack.diff_sides import load_side, side_from_manifest
from tests.support.archives import DEFAULT_HANDLERS, Archive, handler, make_archive

MODEL = {"data/model.bin": b"w" * 700}
T311 = "cp311-manylinux_2_28_x86_64"
T312 = "cp312-manylinux_2_28_x86_64"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Archive]:
    """The base counter and variants that each change one thing."""
    root = tmp_path_factory.mktemp("diff")
    add_y = handler("add", [("x", True, "integer"), ("y", True, "integer")], "integer")
    return {
        "base": make_archive(root / "base", extra_files=MODEL),
        "same": make_archive(root / "same", extra_files=MODEL),
        "dep": make_archive(
            root / "dep", extra_files=MODEL, packages=[("tinydep", "1.0"), ("newdep", "0.1")]
        ),
        "sig": make_archive(root / "sig", extra_files=MODEL, handlers=[add_y, DEFAULT_HANDLERS[1]]),
        "file": make_archive(root / "file", extra_files={"data/model.bin": b"w" * 900}),
        "old": make_archive(root / "old", extra_files=MODEL, packages=[("tinydep", "0.9")]),
        "rehash": make_archive(
            root / "rehash",
            extra_files=MODEL,
            wheel_files={"tinydep": {"tinydep/__init__.py": "EVIL = True\n"}},
        ),
        "wide": make_archive(root / "wide", extra_files=MODEL, targets=[T311, T312]),
        "image": make_archive(
            root / "image", extra_files=MODEL, image="python:3.11-slim", system_dependency=["wget"]
        ),
    }


def d(builds: dict[str, Archive], a: str, b: str) -> Diff:
    return diff(
        side_from_manifest(builds[a].manifest, f"{a}.photon"),
        side_from_manifest(builds[b].manifest, f"{b}.photon"),
    )


def cli_diff(builds: dict[str, Archive], a: str, b: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["diff", str(builds[a].path), str(builds[b].path), *args])


def test_identical_builds_have_no_differences(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "same")
    assert result.identical
    assert result.exit_code == 0
    assert render_text(result) == f"base.photon -> same.photon: identical ({result.a.digest})\n"


def test_new_dependency_is_reported_as_added_package(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "dep")
    assert result.packages == (PackageChange(name="newdep", kind="added", old=None, new="0.1"),)
    assert result.handlers == ()
    assert result.wheels == ()
    lock_size = (
        builds["base"].manifest.file("pylock.counter.toml"),
        builds["dep"].manifest.file("pylock.counter.toml"),
    )
    assert lock_size[0] is not None and lock_size[1] is not None
    assert result.files == (
        FileChange(
            path="pylock.counter.toml",
            kind="changed",
            old_size=lock_size[0].size,
            new_size=lock_size[1].size,
        ),
    )
    assert result.attributes == (
        AttributeChange(field="requirement_dependency", old=["tinydep"], new=["tinydep", "newdep"]),
    )
    assert not result.breaking
    assert result.exit_code == 1


def test_changed_handler_signature_is_breaking(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "sig")
    assert result.handlers == (
        HandlerChange(
            name="add",
            kind="changed",
            breaking=True,
            details=("new required parameter y: integer",),
        ),
    )
    assert (result.packages, result.files, result.attributes) == ((), (), ())
    assert result.exit_code == 2


def test_changed_extra_file_is_reported_with_size_delta(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "file")
    assert result.files == (
        FileChange(path="data/model.bin", kind="changed", old_size=700, new_size=900),
    )
    assert result.files[0].delta == 200
    assert (result.packages, result.handlers, result.attributes) == ((), (), ())
    text = render_text(result)
    assert "files:\n  ~ data/model.bin 700 B -> 900 B (+200 B)\n" in text
    assert text.endswith("(+200 B)\n")


def test_downgrade_and_upgrade_are_told_apart(builds: dict[str, Archive]) -> None:
    down = d(builds, "base", "old").packages
    up = d(builds, "old", "base").packages
    assert down == (PackageChange(name="tinydep", kind="downgraded", old="1.0", new="0.9"),)
    assert up == (PackageChange(name="tinydep", kind="upgraded", old="0.9", new="1.0"),)


def test_same_version_with_another_hash_is_flagged(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "rehash")
    old, new = builds["base"].manifest.wheels[0], builds["rehash"].manifest.wheels[0]
    assert result.rehashed == (
        PackageChange(
            name="tinydep",
            kind="rehashed",
            old="1.0",
            new="1.0",
            wheels=(f"{old.filename} {old.sha256} -> {new.sha256}",),
        ),
    )
    text = render_text(result)
    assert text.splitlines()[2:4] == [
        "!! SAME VERSION, DIFFERENT HASH (supply-chain red flag):",
        f"   tinydep 1.0: {old.filename} {old.sha256} -> {new.sha256}",
    ]
    markdown = render_markdown(result)
    assert "> [!CAUTION]\n> **Same version, different hash** (supply-chain red flag):\n" in markdown


def test_added_target_shows_coverage(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "wide")
    wheel = builds["base"].manifest.wheels[0].filename
    assert result.targets_added == (T312,)
    assert result.wheels == (
        WheelChange(
            filename=wheel, kind="retargeted", old_targets=(T311,), new_targets=(T311, T312)
        ),
    )


def test_image_and_system_dependency_changes(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "image")
    assert result.attributes == (
        AttributeChange(field="image", old=None, new="python:3.11-slim"),
        AttributeChange(field="system_dependency", old=[], new=["wget"]),
    )
    assert render_text(result).splitlines()[-4:-1] == [
        "attributes:",
        '  image: null -> "python:3.11-slim"',
        "  system_dependency: +wget",
    ]


@pytest.mark.parametrize(
    ("old", "new", "breaking", "details"),
    [
        (
            [("x", True, "integer")],
            [("x", True, "integer"), ("y", False, "integer")],
            False,
            ("new optional parameter y: integer",),
        ),
        (
            [("x", True, "integer")],
            [("x", True, "string")],
            True,
            ("parameter x: integer -> string",),
        ),
        (
            [("x", False, "integer")],
            [("x", True, "integer")],
            True,
            ("parameter x is now required",),
        ),
        (
            [("x", True, "integer"), ("y", True, "integer")],
            [("x", True, "integer")],
            False,
            ("parameter y removed",),
        ),
    ],
)
def test_parameter_changes_are_classified(
    tmp_path: Path,
    old: list[tuple[str, bool, str]],
    new: list[tuple[str, bool, str]],
    breaking: bool,
    details: tuple[str, ...],
) -> None:
    a = make_archive(tmp_path / "a", handlers=[handler("f", old, "integer")])
    b = make_archive(tmp_path / "b", handlers=[handler("f", new, "integer")])
    result = diff(side_from_manifest(a.manifest, "a"), side_from_manifest(b.manifest, "b"))
    assert result.handlers == (
        HandlerChange(name="f", kind="changed", breaking=breaking, details=details),
    )


def test_return_type_change_and_removed_handler_are_breaking(tmp_path: Path) -> None:
    a = make_archive(tmp_path / "a", handlers=DEFAULT_HANDLERS)
    b = make_archive(
        tmp_path / "b",
        handlers=[
            handler("add", [("x", True, "integer")], "string"),
            handler("mul", [], "integer"),
        ],
    )
    result = diff(side_from_manifest(a.manifest, "a"), side_from_manifest(b.manifest, "b"))
    assert result.handlers == (
        HandlerChange(
            name="add", kind="changed", breaking=True, details=("returns integer -> string",)
        ),
        HandlerChange(name="mul", kind="added", breaking=False, details=("POST /mul",)),
        HandlerChange(name="sub", kind="removed", breaking=True, details=("POST /sub",)),
    )


def test_json_format_is_stable(builds: dict[str, Archive]) -> None:
    result = cli_diff(builds, "base", "file", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    base, changed = builds["base"].manifest, builds["file"].manifest
    assert doc == {
        "format": "photonpack-diff",
        "version": 1,
        "a": {
            "label": str(builds["base"].path),
            "kind": "archive",
            "name": "counter",
            "digest": base.digest,
            "size": base.total_size,
        },
        "b": {
            "label": str(builds["file"].path),
            "kind": "archive",
            "name": "counter",
            "digest": changed.digest,
            "size": changed.total_size,
        },
        "identical": False,
        "breaking": False,
        "size_delta": 200,
        "packages": [],
        "wheels": [],
        "targets": {"added": [], "removed": []},
        "files": [
            {
                "path": "data/model.bin",
                "kind": "changed",
                "old_size": 700,
                "new_size": 900,
                "runtime": False,
                "delta": 200,
            }
        ],
        "handlers": [],
        "attributes": [],
    }


def test_markdown_has_a_table_per_section(builds: dict[str, Archive]) -> None:
    result = cli_diff(builds, "base", "sig", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        f"### photonpack diff: `{builds['base'].path}` → `{builds['sig'].path}`\n"
    )
    assert (
        "| Handler | Change | Breaking | Details |\n|---|---|---|---|\n"
        "| `add` | changed | **yes** | new required parameter y: integer |\n"
    ) in result.stdout


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
@pytest.mark.parametrize(("b", "code"), [("same", 0), ("dep", 1), ("file", 1), ("sig", 2)])
def test_exit_code_follows_git_diff(
    builds: dict[str, Archive], fmt: str, b: str, code: int
) -> None:
    assert cli_diff(builds, "base", b, "--format", fmt, "--exit-code").exit_code == code
    assert cli_diff(builds, "base", b, "--format", fmt).exit_code == 0


def test_text_has_colour_only_when_asked(builds: dict[str, Archive]) -> None:
    result = d(builds, "base", "sig")
    assert "\x1b[" not in render_text(result)
    assert "\x1b[31mBREAKING: clients of the old handlers may fail\x1b[0m" in render_text(
        result, colour=True
    )
    assert "\x1b[" not in cli_diff(builds, "base", "sig").stdout  # not a TTY


def test_lock_files_can_be_compared(builds: dict[str, Archive]) -> None:
    a = builds["base"].path.parent / "pylock.counter.toml"
    b = builds["dep"].path.parent / "pylock.counter.toml"
    result = diff(load_side(a), load_side(b))
    assert result.packages == (PackageChange(name="newdep", kind="added", old=None, new="0.1"),)
    assert (result.files, result.handlers, result.attributes) == ((), (), ())
    assert result.exit_code == 1
    assert diff(load_side(a), load_side(a)).exit_code == 0
    mixed = CliRunner().invoke(cli, ["diff", str(builds["base"].path), str(b), "--exit-code"])
    assert mixed.exit_code == 1
    assert "+ newdep 0.1 (added)" in mixed.stdout


def test_diff_of_a_missing_file_is_an_error(builds: dict[str, Archive], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["diff", str(builds["base"].path), str(tmp_path / "x.photon")])
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: cannot read {tmp_path / 'x.photon'}: No such file or directory\n"
    )


def test_a_new_uninstall_line_is_an_attribute_change(builds: dict[str, Archive]) -> None:
    import dataclasses

    base = builds["base"].manifest
    photon = dataclasses.replace(base.photon, exclusions=("opencv-python",))
    result = diff(
        side_from_manifest(base, "a.photon"),
        side_from_manifest(dataclasses.replace(base, photon=photon), "b.photon"),
    )
    assert result.attributes == (
        AttributeChange(field="exclusions", old=[], new=["opencv-python"]),
    )
