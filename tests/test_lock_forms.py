"""Every requirement line form, parsed as pip reads it, and the files -r and -c include."""

from __future__ import annotations

from pathlib import Path

import pytest

from photonpack.errors import ResolutionError
from photonpack.lock.forms import (
    Form,
    FormError,
    Include,
    IndexOption,
    Requirement,
    Uninstall,
    parse_line,
)
from photonpack.lock.requirements import RequirementSet, read_requirements
from photonpack.sources.form import ArchiveSource, DirectorySource, VcsSource

H = "a" * 64


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("numpy>=1.26", Requirement(text="numpy>=1.26")),
        ('torch==2.13.0; platform_machine == "x86_64"',
         Requirement(text='torch==2.13.0; platform_machine == "x86_64"')),
        ("uvicorn[standard]  # the fast one", Requirement(text="uvicorn[standard]")),
        ("# a comment", None),
        ("   ", None),
        (f"six==1.16.0 --hash=sha256:{H.upper()}", Requirement(text="six==1.16.0", hashes=(H,))),
        (f"six==1.16.0 --hash=sha256:{'b' * 64} --hash sha256:{H}".replace(" sha256", "=sha256"),
         Requirement(text="six==1.16.0", hashes=(H, "b" * 64))),
        ("beta @ https://host/files/beta-2.0-py3-none-any.whl#sha256=" + H,
         Requirement(text="beta @ https://host/files/beta-2.0-py3-none-any.whl#sha256=" + H)),
        ("./wheels/alpha-1.0-py3-none-any.whl",
         Requirement(text="./wheels/alpha-1.0-py3-none-any.whl")),
        ("git+https://github.com/facebookresearch/segment-anything.git",
         VcsSource(url="https://github.com/facebookresearch/segment-anything.git")),
        ("nougat @ git+https://host/nougat@0c4f1e2",
         VcsSource(url="https://host/nougat", rev="0c4f1e2", name="nougat")),
        ("git+ssh://git@host/org/repo.git@v1.2#egg=repo&subdirectory=python",
         VcsSource(url="ssh://git@host/org/repo.git", rev="v1.2", name="repo",
                   subdirectory="python")),
        ('x[a,b] @ git+file:///srv/x@main ; python_version >= "3.10"',
         VcsSource(url="file:///srv/x", rev="main", name="x", extras=("a", "b"),
                   marker='python_version >= "3.10"')),
        ("-e git+https://host/r.git@abc#egg=r", VcsSource(url="https://host/r.git", rev="abc",
                                                          name="r")),
        ("x @ https://host/x-1.0.tar.gz", ArchiveSource(url="https://host/x-1.0.tar.gz", name="x")),
        (f"https://host/y.zip#egg=y&sha256={H}",
         ArchiveSource(url="https://host/y.zip", name="y", sha256=H)),
        ("../vendor/z-2.0.tar.gz", ArchiveSource(url="../vendor/z-2.0.tar.gz")),
        ("./mylib", DirectorySource(path="./mylib")),
        ("./mylib[cli]", DirectorySource(path="./mylib", extras=("cli",))),
        ("./mylib ; sys_platform == 'linux'",
         DirectorySource(path="./mylib", marker='sys_platform == "linux"')),
        ("-e ./mylib", DirectorySource(path="./mylib", editable=True)),
        ("--editable=../lib", DirectorySource(path="../lib", editable=True)),
        ("lib @ file:///srv/lib", DirectorySource(path="/srv/lib", name="lib")),
        ("-f https://download.pytorch.org/whl/cpu",
         IndexOption(option="--find-links", value="https://download.pytorch.org/whl/cpu")),
        ("--find-links=./wheels", IndexOption(option="--find-links", value="./wheels")),
        ("-i https://mirror/simple", IndexOption(option="--index-url", value="https://mirror/simple")),
        ("--extra-index-url=https://mirror/simple",
         IndexOption(option="--extra-index-url", value="https://mirror/simple")),
        ("--pre", IndexOption(option="--pre")),
        ("-r other.txt", Include(option="-r", path="other.txt")),
        ("--constraint=c.txt", Include(option="-c", path="c.txt")),
        ("uninstall opencv-python Pillow", Uninstall(names=("opencv-python", "pillow"))),
    ],
)  # fmt: skip
def test_each_form_is_read_as_pip_reads_it(line: str, expected: Form | None) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("--no-binary :all:", "is pip's option --no-binary, which photonpack does not read; "
         "photonpack takes a package's wheel when the index has one: drop it"),
        ("--user", "is pip's option --user, which photonpack does not read; photonpack reads "
         "-r, -c, -e, -i/--index-url, --extra-index-url, -f/--find-links, --pre and --hash"),
        ("six --install-option=--x", "carries --install-option, which photonpack does not read; "
         "the per-requirement option it reads is --hash=sha256:<64 hex digits>"),
        ("six --hash=md5:abc", "carries --hash=md5:abc, which is not sha256:<64 hex digits>; "
         "photonpack checks sha256 hashes (the one the lock records)"),
        (f"./mylib --hash=sha256:{H}", "carries --hash, which applies to a package from an "
         "index; pin an archive with #sha256= in its URL, a git requirement with a commit id"),
        ("-r", "needs a file after -r"),
        ("-f", "needs one location after -f"),
        ("--pre=yes", "is --pre with a value; --pre takes none"),
        ("-e numpy", "is -e without a local project directory or git URL; -e takes one of those"),
        ("uninstall", "is an uninstall line without project names; write uninstall NAME ..."),
        ("x @ ftp://host/x.tar.gz", "is a URL with the scheme ftp://, which photonpack does not "
         "fetch; use an http://, https:// or file:// URL"),
        ("x @ https://host/x", "is a URL that names neither a wheel nor a source archive "
         "(.tar.gz, .zip); point it at one of those, or use git+ for a repository"),
        ("git+https://host/r.git@", "ends its URL with @ and no branch, tag or commit; name one "
         "after @"),
        ("a @ git+https://host/r#egg=b", "names the project a and #egg=b; keep one name"),
        ("git+git@github.com:org/repo.git", "is a git URL with the transport none; write "
         "git+https://host/repo, git+ssh://git@host/repo or git+file:///path"),
    ],
)  # fmt: skip
def test_a_line_photonpack_cannot_read_says_why_and_what_to_do(line: str, why: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_line(line)
    assert str(caught.value) == why


def test_a_malformed_requirement_is_one_line() -> None:
    with pytest.raises(FormError) as caught:
        parse_line("numpy>>1")
    assert str(caught.value).startswith("is not a requirement pip reads: Expected ")
    assert str(caught.value).endswith("; fix its spelling")
    assert "\n" not in str(caught.value)


def test_hg_is_a_vcs_form_that_pinning_refuses() -> None:
    assert parse_line("hg+https://host/repo@tip") == VcsSource(
        vcs="hg", url="https://host/repo", rev="tip"
    )


def test_a_pinned_form_is_a_requirement_line_again() -> None:
    form = parse_line("x[a] @ git+https://host/x.git@main#subdirectory=py")
    assert isinstance(form, VcsSource)
    pinned = VcsSource(**{**form.__dict__, "commit": "c" * 40})
    assert str(pinned) == f"x[a] @ git+https://host/x.git@{'c' * 40}#subdirectory=py"
    assert parse_line(str(pinned)) == VcsSource(
        **{**pinned.__dict__, "commit": None, "rev": "c" * 40}
    )


def test_includes_are_read_recursively_relative_to_their_file(tmp_path: Path) -> None:
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "base.txt").write_text(
        "# shared\nbeta>=1 \\\n  ; python_version >= '3'\n-c pins.txt\n-r more/extra.txt\n"
        "-f ../wheels\n./lib\nuninstall opencv-python\n"
    )
    (tmp_path / "reqs" / "pins.txt").write_text("beta==2.0\n")
    (tmp_path / "reqs" / "more").mkdir()
    (tmp_path / "reqs" / "more" / "extra.txt").write_text("--pre\ngamma\n")
    wanted = read_requirements(["alpha", "-r reqs/base.txt", "--extra-index-url=https://x/simple"],
                               tmp_path, photon="Svc")  # fmt: skip
    assert wanted == RequirementSet(
        requirements=(
            Requirement(text="alpha"),
            Requirement(text="beta>=1   ; python_version >= '3'"),
            Requirement(text="gamma"),
        ),
        sources=(DirectorySource(path="reqs/lib"),),
        constraints=("beta==2.0",),
        exclusions=("opencv-python",),
        extra_index_urls=("https://x/simple",),
        find_links=(str(tmp_path / "wheels"),),
        pre=True,
    )


def test_an_include_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("six\n-r a.txt\n")
    with pytest.raises(ResolutionError) as caught:
        read_requirements(["-r a.txt"], tmp_path, photon="Svc")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert str(caught.value) == (
        f"line 2 of {b} ('-r a.txt', included by Svc) includes a file that includes it again "
        f"({a} -> {b} -> {a}); remove the cycle"
    )


def test_a_missing_include_names_the_path_and_the_rule(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError) as caught:
        read_requirements(["-c nope.txt"], tmp_path, photon="Svc")
    assert str(caught.value) == (
        f"requirement_dependency line '-c nope.txt' of Svc names {tmp_path / 'nope.txt'}, which "
        "cannot be read (No such file or directory); -r and -c paths are relative to the file "
        "naming them (the photon's directory for requirement_dependency)"
    )


def test_a_bad_line_in_an_included_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("six\n\n--user\n")
    with pytest.raises(ResolutionError, match=r"^line 3 of .*r\.txt \('--user', included by Svc\)"):
        read_requirements(["-r r.txt"], tmp_path, photon="Svc")


def test_a_constraints_file_holds_constraints_only(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("./lib\n")
    with pytest.raises(ResolutionError, match=r"\('./lib', included by Svc\) is not a constraint"):
        read_requirements(["-c c.txt"], tmp_path, photon="Svc")


def test_required_and_uninstalled_is_a_contradiction(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError) as caught:
        read_requirements(["Pillow", "uninstall pillow"], tmp_path, photon="Svc")
    assert str(caught.value) == (
        "Svc both requires and uninstalls pillow; an uninstall line keeps a package that "
        "something else pulls in out of the environment: remove one of the two lines"
    )


def test_two_index_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError, match=r"names several index URLs \(https://a, https://b\)"):
        read_requirements(["-i https://a", "-i https://b"], tmp_path, photon="Svc")
