"""What every stage shares: argument defaults, params loading, and one error path for the user.

Whatever stops a stage ends in one line on stderr and a non-zero exit, never a traceback:
a UserError prints its message (exit 1); Ctrl-C prints "interrupted" (exit 130); an OSError
(full disk, permission denied) names the file (exit 1); anything else is an internal error,
printed as its type and message with a hint (exit 1). With VAE_TRACEBACK=1 in the environment
every error is re-raised instead, so Python prints the full traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Callable

from rich.console import Console
from rich.markup import escape

from vae import UserError
from vae.config import Params, load_params, load_point

console = Console(stderr=True)

TRACEBACK_VARIABLE = "VAE_TRACEBACK"
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some disk space and run again",
    errno.EDQUOT: "your disk quota is full: free some space within it and run again",
    errno.EACCES: "check the permissions of the file and of its folder",
    errno.EPERM: "check the permissions of the file and of its folder",
    errno.EROFS: "the file system is read-only; write the outputs elsewhere",
}


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    return p


def model_arguments(p: argparse.ArgumentParser) -> None:
    """Which model a stage works on: `--variant NAME` of params.yaml, or `--point NAME` of the studies
    pipeline (a variant with some settings changed: vae.config.StudyPoint). Either way the stage reads
    and writes files named `args.name`."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--variant", help="a variant of params.yaml")
    which.add_argument("--point", help="a point of --points: a variant with some settings changed")
    p.add_argument("--points", default="studies/params.yaml", help="the studies' points (default: studies/params.yaml)")


def load(args: argparse.Namespace) -> Params:
    """params.yaml, with a study point's settings applied when the stage was given `--point`."""
    if getattr(args, "point", None) is None:
        if hasattr(args, "variant"):
            args.name = args.variant
        return load_params(args.params)
    point = load_point(args.points, args.point)
    args.variant, args.name = point.variant, args.point
    params = load_params(args.params, point.set)
    if point.variant not in params.variants:
        raise UserError(f"'points.{args.point}.variant' names no variant of {args.params}: {point.variant!r}; "
                        f"known: {', '.join(params.variants)}")
    return params


def error(message: str, label: str = "error") -> None:
    """`label: message` on stderr, never wrapped, with the message's brackets printed as they are."""
    console.print(f"[bold red]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)


def os_error_message(err: OSError) -> str:
    """'<file>: <reason> (<ERRNO>); <advice>' from an OSError such as a full disk or a denied permission."""
    reason = err.strerror or str(err) or type(err).__name__
    code = errno.errorcode.get(err.errno) if err.errno is not None else None
    where = f"{err.filename}: " if err.filename is not None else ""
    if err.filename2 is not None:
        where = f"{err.filename} → {err.filename2}: "
    advice = _OS_ADVICE.get(err.errno)
    return f"{where}{reason}" + (f" ({code})" if code else "") + (f"; {advice}" if advice else "")


def run(main: Callable[[argparse.Namespace, Params], None], p: argparse.ArgumentParser, argv=None) -> None:
    """Parse arguments, load params, run `main`; every error becomes one line and an exit code."""
    args = p.parse_args(argv)
    show_traceback = os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")
    try:
        main(args, load(args))
    except KeyboardInterrupt:
        if show_traceback:
            raise
        console.print("interrupted", highlight=False)
        sys.exit(130)
    except UserError as err:
        if show_traceback:
            raise
        error(str(err))
        sys.exit(1)
    except OSError as err:
        if show_traceback:
            raise
        error(os_error_message(err))
        sys.exit(1)
    except Exception as err:
        if show_traceback:
            raise
        message = " ".join(str(err).split())  # one line, whatever the exception's text
        error(f"{type(err).__name__}: {message} (set {TRACEBACK_VARIABLE}=1 to see the traceback)",
              label="internal error")
        sys.exit(1)
