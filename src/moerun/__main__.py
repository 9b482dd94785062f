"""`python -m moerun` and the `moerun` script: Ctrl-C at any moment, imports included, exits
130 with one line and no traceback."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Run the CLI (imported here, so that an interrupt while importing is caught too)."""
    try:
        from moerun.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("moerun: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
