"""`python -m botify serve|load`: the service's command line."""

from __future__ import annotations

import sys

import redis

from botify import load, serve
from botify.arguments import OneLineParser
from botify.data_files import DataError


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="botify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    serve.add_arguments(commands.add_parser("serve", help="run the service under gunicorn"))
    load.add_arguments(commands.add_parser("load", help="load catalog and recommendation sets into Redis"))
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve.run(args)
        load.run(args)
        return 0
    except (DataError, ValueError, RuntimeError, OSError, redis.RedisError) as error:
        print(f"botify {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: a load publishes nothing half-way (all it loads goes live at its end)
        print(f"botify {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
