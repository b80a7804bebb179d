from __future__ import annotations

from ldfix.diagnose.finding import Report


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
        out.append(f"| `{lib.soname}` | {lib.status} | {_cell(lib.path)} | {_cell(lib.via)} | {verified} |")
    out.append("")
    if report.findings:
        out += ["### Findings", ""]
        for f in report.findings:
            where = f" (`{f.soname}`)" if f.soname else ""
            out.append(f"- **{f.code}** ({f.severity}){where}: {f.message}")
            if f.fix:
                out.append(f"  - fix: {f.fix}")
        out.append("")
    else:
        out += ["No findings: every library resolves.", ""]
    if report.fix:
        out += ["### Fix", "", report.fix.reason + ".", "", "```dockerfile", report.fix.dockerfile.rstrip("\n"), "```",
                ""]
    return "\n".join(out)
