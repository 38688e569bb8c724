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
    envs = serve.add_argument_group("execution environments")
    envs.add_argument(
        "--keep-alive",
        type=float,
        default=None,
        help="seconds an idle environment is kept (default 600)",
    )
    envs.add_argument(
        "--cpu-mode",
        choices=["shares", "quota"],
        default=None,
        help="CPU in proportion to memory as weighted shares (default) or AWS-faithful hard quotas",
    )
    envs.add_argument(
        "--memory-share",
        type=float,
        default=None,
        help="share of host RAM the live environments' MemorySize may add up to (default 0.8)",
    )
    envs.add_argument(
        "--account-concurrency", type=int, default=None, help="concurrent executions (default 1000)"
    )
    envs.add_argument(
        "--init-timeout", type=float, default=None, help="init phase limit in seconds (default 10)"
    )
    envs.add_argument(
        "--prewarm",
        type=int,
        default=None,
        help="pre-initialised sandboxes kept per kind of environment (default 2; 0 turns it off)",
    )
    events = serve.add_argument_group("asynchronous invocation")
    events.add_argument(
        "--async-workers", type=int, default=None, help="delivery workers (default 4)"
    )
    events.add_argument(
        "--async-retry-delays",
        default=None,
        help="seconds before the 2nd and 3rd attempt after a function error (default 60,120)",
    )
    events.add_argument(
        "--async-throttle-backoff",
        default=None,
        help="min,max seconds between attempts of a throttled event (default 1,300)",
    )
    for service in ("sqs", "sns", "events"):
        events.add_argument(
            f"--{service}-endpoint",
            default=None,
            help=f"endpoint for {service.upper() if service != 'events' else 'EventBridge'} destinations and DLQs",
        )
    install = sub.add_parser(
        "install-runtimes", help="install each host Python's /var/runtime (awslambdaric, boto3)"
    )
    install.add_argument(
        "--dir", default=None, help="where runtimes go (default: in the virtualenv)"
    )
    return parser


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    return tuple(float(part) for part in text.split(",") if part.strip())


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
                keep_alive_seconds=args.keep_alive,
                cpu_mode=args.cpu_mode,
                memory_share=args.memory_share,
                account_concurrency=args.account_concurrency,
                init_timeout_seconds=args.init_timeout,
                prewarm_per_kind=args.prewarm,
                async_workers=args.async_workers,
                async_retry_delays=_floats(args.async_retry_delays),
                async_throttle_backoff=_floats(args.async_throttle_backoff),
                destination_endpoints=tuple(
                    (service, url)
                    for service, url in (
                        ("sqs", args.sqs_endpoint),
                        ("sns", args.sns_endpoint),
                        ("events", args.events_endpoint),
                    )
                    if url
                )
                or None,
            )
        except SettingsError as exc:
            print(f"lambdaplane: {exc}", file=sys.stderr)
            return 2
        from lambdaplane.server.runner import run

        run(settings)
    elif args.command == "install-runtimes":
        from pathlib import Path

        from lambdaplane.service.runtime_install import install_all
        from lambdaplane.settings import from_environ as settings_from_environ

        target = Path(args.dir) if args.dir else settings_from_environ().runtimes_dir
        installed = install_all(target)
        print(f"runtimes ready in {target}: {', '.join(installed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
