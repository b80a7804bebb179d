from __future__ import annotations

from ldfix.diagnose.finding import Report
from ldfix.report.frameworks import blocks, rows, title
from ldfix.report.group import groups


def _cell(text: object) -> str:
    return str(text if text is not None else "—").replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    img = report.image
    out = [f"## ldfix: `{img.ref}`", ""]
    facts = [f"platform `{img.platform}`"]
    if img.cuda_version:
        facts.append(f"CUDA {img.cuda_version}")
    if img.cudnn_version:
        facts.append(f"cuDNN {img.cudnn_version}")
    if img.glibc:
        facts.append(f"glibc {img.glibc}")
    out += [", ".join(facts) + ".", "", f"`LD_LIBRARY_PATH={img.env.get('LD_LIBRARY_PATH', '')}`", ""]
    out += ["| library | status | path | found via | checked by the image's loader |", "|---|---|---|---|---|"]
    for lib in report.libraries:
        verified = {True: "yes", False: "**disagrees**", None: "not run"}[lib.verified]
        via = lib.via.value if lib.via else None
        out.append(f"| `{lib.soname}` | {lib.status.value} | {_cell(lib.path)} | {_cell(via)} | {verified} |")
    out.append("")
    for entry in blocks(report):
        out += [f"### {title(entry)}", ""]
        if entry.get("note"):
            out += [entry["note"] + ".", ""]
        listed = list(rows(entry))
        if listed:
            out += ["| library | how | status | resolves to | requester |", "|---|---|---|---|---|"]
            out += [f"| `{a}` | {b} | {c} | {_cell(d)} | {_cell(e)} |" for a, b, c, d, e in listed]
            out.append("")
    if report.findings:
        out += ["### Findings", ""]
        for g in groups(report):
            single = g.findings[0] if len(g.findings) == 1 else None
            where = f" (`{single.soname}`)" if single and single.soname else ""
            out.append(f"- **{g.code}** ({g.severity}){where}: {g.title}")
            if single is None:
                out += [f"  - {f.message}" for f in g.findings]
            out += [f"  - fix: {fix}" for fix in g.fixes]
        out.append("")
    else:
        out += ["No findings: every library resolves.", ""]
    if report.fix:
        out += ["### Fix", "", report.fix.reason + ".", "", "```dockerfile", report.fix.dockerfile.rstrip("\n"), "```",
                ""]
    return "\n".join(out)
