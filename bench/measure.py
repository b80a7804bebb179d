"""Run the ldfix CLI in this process and report its peak RSS (KiB) on stderr as the last line, so a benchmark
can measure one scan without counting its own memory."""

from __future__ import annotations

import resource
import sys


def main() -> None:
    from ldfix.cli.main import main as ldfix_main

    sys.argv = ["ldfix", *sys.argv[1:]]
    try:
        ldfix_main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    else:
        code = 0
    sys.stderr.write(f"\nLDFIX_PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
