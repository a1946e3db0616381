"""The library check searches the directories the base's ld.so.conf names, includes followed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import write_archive
from photonpack.cli import cli
from photonpack.image.libraries import LIBRARY_DIRS, library_dirs
from photonpack.image.rootfs import Node, RootFS
from tests.support.images import write_base
from tests.support.registry import stage_photon


def _fs(files: dict[str, bytes]) -> RootFS:
    return RootFS(
        nodes={path: Node(kind="file") for path in files}, contents=dict(files)
    )  # fmt: skip


def test_ld_so_conf_directories_and_included_globs_are_searched() -> None:
    fs = _fs({
        "etc/ld.so.conf": b"# the loader's\ninclude /etc/ld.so.conf.d/*.conf\n/opt/top/lib\n",
        "etc/ld.so.conf.d/a.conf": b"/opt/a/lib  # vendored\n/opt/b/lib:/opt/c/lib,/opt/d\n",
        "etc/ld.so.conf.d/z.conf": b"include extra/*.conf\nhwcap 0 nosegneg\n",
        "etc/ld.so.conf.d/extra/x.conf": b"/usr/local/cuda/lib64=ELF\n",
        "etc/ld.so.conf.d/readme.txt": b"/not/a/conf\n",
        "etc/ld.so.conf.d/sub/deeper.conf": b"/not/matched/by/the/star\n",
    })  # fmt: skip
    assert library_dirs(fs) == (
        *LIBRARY_DIRS, "opt/a/lib", "opt/b/lib", "opt/c/lib", "opt/d", "usr/local/cuda/lib64",
        "opt/top/lib",
    )  # fmt: skip


def test_an_include_loop_ends_and_conf_d_is_read_without_ld_so_conf() -> None:
    looping = _fs({
        "etc/ld.so.conf": b"include /etc/ld.so.conf\n/opt/once\n",
    })  # fmt: skip
    assert library_dirs(looping) == (*LIBRARY_DIRS, "opt/once")
    alone = _fs({"etc/ld.so.conf.d/vendor.conf": b"/opt/vendor/lib\n"})
    assert library_dirs(alone) == (*LIBRARY_DIRS, "opt/vendor/lib")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make a real ELF library")
def test_a_library_in_a_directory_ld_so_conf_d_names_is_found(tmp_path: Path) -> None:
    source = tmp_path / "native.c"
    source.write_text("int photonpack_test(void) { return 1; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "native.so"), str(source),
         "-Wl,--no-as-needed", "-lstdc++"],
        check=True, capture_output=True,
    )  # fmt: skip
    extension = (tmp_path / "native.so").read_bytes()
    staged = stage_photon(
        tmp_path, "native", [("native", "1.0")],
        wheel_files={"native": {"native/_ext.cpython-311-x86_64-linux-gnu.so": extension}},
    )  # fmt: skip
    archive = tmp_path / "native.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    vendor = write_base(
        tmp_path / "vendor",
        libraries=(),
        extra_files={
            "etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n",
            "etc/ld.so.conf.d/vendor.conf": b"/opt/vendor/lib\n",
            "opt/vendor/lib/libstdc++.so.6": b"\x7fELF stub\n",
        },
    )
    result = CliRunner().invoke(
        cli, ["image", str(archive), "--base", f"oci:{vendor}", "--oci-layout", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "libstdc++" not in result.stderr
