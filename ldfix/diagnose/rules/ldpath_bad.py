"""LDPATH_BAD, for the scan and the Dockerfile lint alike: one judgement of an LD_LIBRARY_PATH entry.

Severities (root causes §3 says warning, error when the entry is the only route to a wanted library): an
entry with a stray '#', quote, backslash, '$' or whitespace, and an empty entry, are errors: they are never
what their author wrote the line for (the loader searches a directory nobody named, or the working directory),
so the route the line was meant to open is broken. A relative, missing or non-directory entry is a warning."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.image.base import Kind
from ldfix.image.pathwalk import Walker
from ldfix.knowledge import cuda
from ldfix.loader.env import split_ld_library_path

GUARD = "${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"  # how ldfix always appends the inherited value
_JUNK = re.compile(r"[#'\"`\s\\]")
_DST = re.compile(r"\$(\{?)(ORIGIN|LIB|PLATFORM)")


@dataclass(frozen=True)
class EntryProblem:
    message: str
    severity: Severity
    fix: str


def entry_problem(entry: str, working_dir: str, walker: Walker | None = None) -> EntryProblem | None:
    """What is wrong with one LD_LIBRARY_PATH entry; None when nothing is. `walker` (the image) adds the
    existence checks; without it (a Dockerfile alone) only the text is judged."""
    if entry == "":
        return EntryProblem(f"LD_LIBRARY_PATH has an empty entry: the loader searches the working directory "
                            f"({working_dir}) there", Severity.ERROR, f"use the {GUARD} guard and no empty entries")
    if "#" in entry:
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' does not exist: '#' is part of the value",
                            Severity.ERROR,
                            "delete the '#' and anything after it (Dockerfiles have no trailing comments)")
    if _JUNK.search(entry) or ("$" in entry and not _DST.search(entry)):
        what = ("a quote" if re.search(r"['\"`]", entry) else "'$'" if "$" in entry else
                "a backslash" if "\\" in entry else "whitespace")
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' contains {what}, which becomes part of the directory "
                            "name", Severity.ERROR,
                            "remove it (single quotes stop expansion; quotes inside a legacy value are literal)")
    if not entry.startswith("/") and "$" not in entry:
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' is relative: it depends on the working directory",
                            Severity.WARNING, "use an absolute directory")
    if re.search(r"/include(/|$)|/(bin|share/doc)/?$", entry):
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' is a {'header' if 'include' in entry else 'program'} "
                            "directory, not a library directory: the loader finds nothing there",
                            Severity.WARNING, "remove it (libraries live in .../lib or .../lib64)")
    if walker is None or not entry.startswith("/") or entry.rstrip("/") in cuda().runtime_mount_dirs:
        return None
    st = walker.stat(entry)
    if st is None:
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' does not exist in the image", Severity.WARNING,
                            "remove it, or create the directory it names")
    if st[1].kind is not Kind.DIR:
        return EntryProblem(f"LD_LIBRARY_PATH entry '{entry}' is a file, not a directory", Severity.WARNING,
                            "name the directory that holds the library")
    return None


def check(ctx: ScanContext) -> list[Finding]:
    value = ctx.env.get("LD_LIBRARY_PATH")
    out = []
    for raw in split_ld_library_path(value) or []:
        problem = entry_problem(raw, ctx.facts.view.config.working_dir, ctx.walker)
        if problem is not None:
            out.append(RULE.finding(problem.message, problem.severity, paths=(raw,),
                                    evidence=(f"LD_LIBRARY_PATH={value}",), fix=problem.fix))
    return out


RULE = Rule(
    "LDPATH_BAD", Severity.WARNING, "an LD_LIBRARY_PATH entry is empty, relative, missing, a file, or "
    "has stray characters",
    "Each element of the effective LD_LIBRARY_PATH is checked against the image filesystem. Empty entries and "
    "stray '#', quotes or whitespace are errors; relative, missing and non-directory entries are warnings.",
    f"Rewrite the value with absolute directories and the {GUARD} guard.",
    "ENV LD_LIBRARY_PATH $LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu#", check=check)
