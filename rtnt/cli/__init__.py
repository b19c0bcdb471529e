"""Console entry points. Each `main(argv) -> int` parses its arguments and hands the work to `run_command`,
which gives every command the same error reporting and exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rtnt.errors import RtntError

EXIT_OK = 0
EXIT_USER_ERROR = 2  # bad input: a one-line `error:` on stderr, no traceback
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def add_tracking_uri_argument(parser: argparse.ArgumentParser) -> None:
    """`--tracking-uri URI` for commands that read runs (resolved with `rtnt.tracking.uri.existing_tracking_uri`)."""
    parser.add_argument(
        "--tracking-uri",
        default="",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlruns/mlflow.db)",
    )


def run_command(action: Callable[[], int | None], *, interrupted: str = "interrupted") -> int:
    """Run `action` and return its exit status (None counts as success). A user error (`RtntError`), an
    unreadable file (`OSError`) and Ctrl-C each print one `error:` line to stderr instead of a traceback."""
    try:
        return action() or EXIT_OK
    except RtntError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; check the path and permissions", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
