"""The ``resnet-bench`` command line: thin; each command calls the library. ``parser`` holds
the grammar, ``commands`` one function per command, ``output`` tables, JSON, CSV, markdown and
the progress bar. Bad input prints one line naming the problem and exits 2, without a traceback.
"""

from __future__ import annotations

import sys

from resnet_bench.cli.parser import EXIT_BAD_INPUT, build_parser
from resnet_bench.util.errors import first_line, is_out_of_memory


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # every validation error in the library is a ValueError
        sys.stderr.write(f"resnet-bench: error: {exc}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except Exception as exc:  # an allocation failed: a batch or input size the estimate let through
        if not is_out_of_memory(exc):
            raise
        sys.stderr.write(f"resnet-bench: error: out of memory, try a smaller batch or input size "
                         f"({first_line(exc)})\n")
        return EXIT_BAD_INPUT


__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]
