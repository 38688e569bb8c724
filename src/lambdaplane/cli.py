"""The ``lambdaplane`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from lambdaplane.settings import SettingsError, from_environ


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambdaplane",
        description="A self-hosted serverless platform that speaks the AWS Lambda API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the platform (API on --host:--port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9000, help="port to bind (default 9000)")
    serve.add_argument(
        "--data-dir",
        default=None,
        help="where state lives (default $LAMBDAPLANE_DATA_DIR or ./.lambdaplane)",
    )
    serve.add_argument(
        "--region", default="us-east-1", help="the region served (default us-east-1)"
    )
    serve.add_argument(
        "--account-id",
        default="000000000000",
        help="the 12-digit account id (default 000000000000)",
    )
    serve.add_argument(
        "--insecure-any-credentials",
        action="store_true",
        help="accept any well-formed SigV4 signature, like local emulators (loopback only!)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        try:
            settings = from_environ(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                region=args.region,
                account_id=args.account_id,
                insecure_any_credentials=args.insecure_any_credentials,
            )
        except SettingsError as exc:
            print(f"lambdaplane: {exc}", file=sys.stderr)
            return 2
        from lambdaplane.server.runner import run

        run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
