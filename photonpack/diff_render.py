"""Diff renderers: terminal text (colour when the caller asks) and pull-request markdown."""

from __future__ import annotations

import json
from typing import Any

from photonpack._units import format_size
from photonpack.diff import Diff

__all__ = ["render_markdown", "render_text"]


_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def _delta(n: int) -> str:
    return format_size(n, signed=True)


def _list_change(old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        parts = [f"+{x}" for x in new if x not in old] + [f"-{x}" for x in old if x not in new]
        return " ".join(parts) if parts else f"{old} -> {new}"
    return f"{json.dumps(old, ensure_ascii=False)} -> {json.dumps(new, ensure_ascii=False)}"


def _package_lines(d: Diff) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if d.rehashed:
        out.append(("red", "!! SAME VERSION, DIFFERENT HASH (supply-chain red flag):"))
        for p in d.rehashed:
            out += [("red", f"   {p.name} {p.new}: {w}") for w in p.wheels]
    marks = {"added": "+", "removed": "-", "upgraded": "^", "downgraded": "v"}
    moved = [p for p in d.packages if p.kind != "rehashed"]
    if moved:
        out.append(("bold", "packages:"))
    for p in moved:
        colour = {"added": "green", "removed": "red"}.get(p.kind, "yellow")
        version = {"added": p.new, "removed": p.old}.get(p.kind, f"{p.old} -> {p.new}")
        out.append((colour, f"  {marks[p.kind]} {p.name} {version} ({p.kind})"))
    return out


def _coverage_lines(d: Diff) -> list[tuple[str, str]]:
    if not (d.wheels or d.targets_added or d.targets_removed):
        return []
    out = [("bold", "targets and wheels:" if d.a.targets or d.b.targets else "locked files:")]
    out += [("green", f"  + target {t}") for t in d.targets_added]
    out += [("red", f"  - target {t}") for t in d.targets_removed]
    for w in d.wheels:
        if w.kind == "retargeted":
            text = f"  ~ {w.filename}: {', '.join(w.old_targets)} -> {', '.join(w.new_targets)}"
            out.append(("yellow", text))
        elif w.kind == "added":
            out.append(("green", f"  + {w.filename}{_targets(w.new_targets)}"))
        else:
            out.append(("red", f"  - {w.filename}{_targets(w.old_targets)}"))
    return out


def _targets(targets: tuple[str, ...]) -> str:
    # A lock written by another tool names no targets.
    return f" ({', '.join(targets)})" if targets else ""


def _api_lines(d: Diff) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("bold", "handlers:")] if d.handlers else []
    for h in d.handlers:
        flag = "BREAKING " if h.breaking else ""
        sign = {"added": "+", "removed": "-", "changed": "~"}[h.kind]
        colour = "red" if h.breaking else "green" if h.kind == "added" else "yellow"
        out.append((colour, f"  {sign} {flag}{h.name} ({h.kind}): {'; '.join(h.details)}"))
    return out


def _file_lines(d: Diff) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("bold", "files:")] if d.files else []
    for f in d.files:
        sign = {"added": "+", "removed": "-", "changed": "~"}[f.kind]
        where = f"runtime:{f.path}" if f.runtime else f.path
        if f.kind == "changed":
            old, new = format_size(f.old_size or 0), format_size(f.new_size or 0)
            sizes = f"{old} -> {new} ({_delta(f.delta)})"
        else:
            sizes = format_size((f.new_size if f.kind == "added" else f.old_size) or 0)
        out.append(("yellow", f"  {sign} {where} {sizes}"))
    if d.attributes:
        out.append(("bold", "attributes:"))
        out += [("yellow", f"  {a.field}: {_list_change(a.old, a.new)}") for a in d.attributes]
    return out


def render_text(d: Diff, *, colour: bool = False) -> str:
    """Terminal text; ``colour`` adds ANSI colours (the CLI sets it only on a TTY)."""

    def paint(name: str, text: str) -> str:
        return f"\x1b[{_COLOURS[name]}m{text}\x1b[0m" if colour else text

    head = f"{d.a.label} -> {d.b.label}"
    if d.identical:
        return f"{head}: identical ({d.a.digest or 'same wheels'})\n"
    lines = [paint("bold", head)]
    if d.a.digest and d.b.digest:
        lines.append(f"  digest {d.a.digest} -> {d.b.digest}")
    if d.breaking:
        lines.append(paint("red", "BREAKING: clients of the old handlers may fail"))
    sections = _package_lines(d) + _coverage_lines(d) + _api_lines(d) + _file_lines(d)
    lines += [paint(c, t) for c, t in sections]
    lines.append(
        f"size: {format_size(d.a.size)} -> {format_size(d.b.size)} ({_delta(d.b.size - d.a.size)})"
    )
    return "\n".join(lines) + "\n"


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(d: Diff) -> str:
    """GitHub-flavoured markdown for a pull-request comment."""
    out = [f"### photonpack diff: `{d.a.label}` → `{d.b.label}`", ""]
    if d.identical:
        return "\n".join([*out, f"No differences (`{d.a.digest or 'same wheels'}`).", ""])
    if d.a.digest and d.b.digest:
        out += [f"`{d.a.digest}` → `{d.b.digest}`", ""]
    if d.rehashed:
        out += ["> [!CAUTION]", "> **Same version, different hash** (supply-chain red flag):"]
        out += [f"> - `{p.name}` {p.new}: `{w}`" for p in d.rehashed for w in p.wheels]
        out.append("")
    if d.breaking:
        out += [
            "> [!WARNING]",
            "> **Breaking handler changes**: clients of the old API may fail.",
            "",
        ]
    moved = [p for p in d.packages if p.kind != "rehashed"]
    if moved:
        out += ["| Package | Change | Old | New |", "|---|---|---|---|"]
        out += [f"| `{p.name}` | {p.kind} | {p.old or ''} | {p.new or ''} |" for p in moved]
        out.append("")
    if d.wheels or d.targets_added or d.targets_removed:
        out += ["| Wheel / target | Change | Targets |", "|---|---|---|"]
        out += [f"| target `{t}` | added | |" for t in d.targets_added]
        out += [f"| target `{t}` | removed | |" for t in d.targets_removed]
        for w in d.wheels:
            targets = f"{', '.join(w.old_targets)} → {', '.join(w.new_targets)}"
            out.append(f"| `{w.filename}` | {w.kind} | {_md(targets)} |")
        out.append("")
    if d.handlers:
        out += ["| Handler | Change | Breaking | Details |", "|---|---|---|---|"]
        for h in d.handlers:
            flag = "**yes**" if h.breaking else "no"
            out.append(f"| `{h.name}` | {h.kind} | {flag} | {_md('; '.join(h.details))} |")
        out.append("")
    if d.files:
        out += ["| File | Change | Old size | New size | Delta |", "|---|---|---:|---:|---:|"]
        for f in d.files:
            where = f"runtime:{f.path}" if f.runtime else f.path
            old = format_size(f.old_size) if f.old_size is not None else ""
            new = format_size(f.new_size) if f.new_size is not None else ""
            out.append(f"| `{_md(where)}` | {f.kind} | {old} | {new} | {_delta(f.delta)} |")
        out.append("")
    if d.attributes:
        out += ["| Attribute | Change |", "|---|---|"]
        out += [f"| `{a.field}` | {_md(_list_change(a.old, a.new))} |" for a in d.attributes]
        out.append("")
    total = f"{format_size(d.a.size)} → {format_size(d.b.size)} ({_delta(d.b.size - d.a.size)})"
    out += [f"**Total size:** {total}", ""]
    return "\n".join(out)
