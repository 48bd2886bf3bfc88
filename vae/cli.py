"""What every stage shares: argument defaults, params loading, and turning UserError into one line."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from rich.console import Console
from rich.markup import escape

from vae import UserError
from vae.config import Params, load_params

console = Console(stderr=True)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    return p


def run(main: Callable[[argparse.Namespace, Params], None], p: argparse.ArgumentParser, argv=None) -> None:
    """Parse arguments, load params, run `main`; a UserError exits 1 with its message, no traceback."""
    args = p.parse_args(argv)
    try:
        main(args, load_params(args.params))
    except UserError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
