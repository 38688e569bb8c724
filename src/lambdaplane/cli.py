"""The ``lambdaplane`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from lambdaplane.deploy.strategy import Kind, Strategy, StrategyError, parse_duration, predefined
from lambdaplane.settings import Settings, SettingsError, data_dir_default, from_environ


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
        "--url-port",
        type=int,
        default=None,
        help="also serve function URLs on this port (they are always served on --port)",
    )
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
        "--burst-limit",
        type=int,
        default=None,
        help="new environments per function per 10 s, AWS's scaling rate (default 1000)",
    )
    envs.add_argument(
        "--stream-bandwidth",
        type=float,
        default=None,
        metavar="MBPS",
        help="a streamed response's rate after its first 6 MB, as AWS caps it "
        "(default 2; 0: no cap)",
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
    esm = serve.add_argument_group("event source mappings (SQS sources use --sqs-endpoint)")
    esm.add_argument("--kinesis-endpoint", default=None, help="endpoint for Kinesis sources")
    esm.add_argument(
        "--dynamodbstreams-endpoint",
        default=None,
        help="endpoint for DynamoDB Streams sources (and DynamoDB)",
    )
    esm.add_argument(
        "--mq-broker",
        action="append",
        default=[],
        metavar="ARN=URL",
        help="an Amazon MQ broker ARN and the URL it is reached at (amqp:// or amqps:// for "
        "RabbitMQ, stomp:// or stomp+ssl:// for ActiveMQ); repeatable",
    )
    esm.add_argument(
        "--esm-secret",
        action="append",
        default=[],
        metavar="ARN=USER:PASSWORD",
        help="credentials for a BASIC_AUTH secret ARN, in place of Secrets Manager; "
        "repeatable (also read from <data-dir>/esm-secrets.json)",
    )
    observe = serve.add_argument_group("observability")
    observe.add_argument(
        "--otlp-endpoint",
        default=None,
        help="OTLP/HTTP collector (e.g. http://127.0.0.1:4318): a span per invocation "
        "(default: $OTEL_EXPORTER_OTLP_ENDPOINT, else none)",
    )
    observe.add_argument(
        "--metrics-auth",
        choices=["none", "sigv4", "token"],
        default=None,
        help="who may GET /metrics: anyone, SigV4-signed requests, or a bearer token (or "
        "SigV4) (default: none on a loopback address, sigv4 elsewhere)",
    )
    observe.add_argument(
        "--metrics-token-file",
        default=None,
        metavar="PATH",
        help="with --metrics-auth token: the token's file (default <data-dir>/metrics-token, "
        "created at first start)",
    )
    install = sub.add_parser(
        "install-runtimes", help="install each host Python's /var/runtime (awslambdaric, boto3)"
    )
    install.add_argument(
        "--dir", default=None, help="where runtimes go (default: in the virtualenv)"
    )
    _add_deploy_alias(sub)
    _add_logs(sub)
    _add_usage(sub)
    _add_keys(sub)
    return parser


def _add_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser(
        "keys",
        help="add or list keys of other accounts' principals (see docs/permissions.md)",
        description="Keys for principals of other accounts. They may invoke a function "
        "when its resource-based policy (AddPermission) allows them, and nothing else. "
        "Exit status: 0, or 2 when the key cannot be added or removed.",
    )
    actions = keys.add_subparsers(dest="keys_action", required=True)
    add = actions.add_parser("add", help="create a key for another account's root or user")
    add.add_argument("--account-id", required=True, help="the principal's account (12 digits)")
    add.add_argument("--user", default=None, metavar="NAME", help="an IAM user of that account")
    add.add_argument("--org-id", default=None, help="the account's organization (o-...)")
    listing = actions.add_parser("list", help="the foreign keys (secrets are not shown)")
    remove = actions.add_parser(
        "remove", help="revoke a foreign key (a running server: within 1 s)"
    )
    remove.add_argument("access_key_id", help="the key to revoke")
    for parser in (add, listing, remove):
        parser.add_argument("--json", action="store_true", help="JSON for scripts")
        parser.add_argument(
            "--data-dir",
            default=None,
            help="the server's data directory (default $LAMBDAPLANE_DATA_DIR or ./.lambdaplane)",
        )


def _keys(args: argparse.Namespace) -> int:
    from lambdaplane.auth.keys_command import KeysOptions, run

    return run(
        KeysOptions(
            data_dir=Path(args.data_dir) if args.data_dir else data_dir_default(os.environ),
            action=args.keys_action,
            account_id=getattr(args, "account_id", None),
            user=getattr(args, "user", None),
            org_id=getattr(args, "org_id", None),
            access_key_id=getattr(args, "access_key_id", None),
            json=args.json,
        )
    )


def _add_usage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    usage = sub.add_parser(
        "usage",
        help="requests, GB-seconds and cost per function, from the store",
        description="What the functions used and would cost on AWS Lambda: requests, billed "
        "GB-seconds and cost per function and in total, read from the data directory's store. "
        "Exit status: 0, or 2 when the store or the price file cannot be used.",
    )
    usage.add_argument(
        "--since",
        default=None,
        help="from this long ago (30s, 10m, 2h, 1d) or an ISO time (default: this month, UTC)",
    )
    usage.add_argument("--until", default=None, help="up to this time (default: now)")
    usage.add_argument("--function", default=None, metavar="NAME", help="one function only")
    usage.add_argument("--region", default=None, help="one region only (default: all)")
    usage.add_argument(
        "--prices",
        default=None,
        metavar="FILE",
        help="a price file (default: <data-dir>/prices.json, else AWS's us-east-1 prices)",
    )
    usage.add_argument("--json", action="store_true", help="JSON for scripts")
    usage.add_argument(
        "--data-dir",
        default=None,
        help="the server's data directory (default $LAMBDAPLANE_DATA_DIR or ./.lambdaplane)",
    )


def _usage(args: argparse.Namespace) -> int:
    from lambdaplane.usage.command import UsageOptions, run

    return run(
        UsageOptions(
            data_dir=(Path(args.data_dir) if args.data_dir else data_dir_default(os.environ)),
            since=args.since,
            until=args.until,
            function=args.function,
            region=args.region,
            prices=Path(args.prices) if args.prices else None,
            json=args.json,
        )
    )


def _add_logs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser(
        "logs",
        help="print a function's log lines (--follow to keep watching)",
        description="A function's log lines, from the server's CloudWatch Logs API. "
        "Exit status: 0, or 2 when the function or the server cannot be reached.",
    )
    logs.add_argument(
        "function", metavar="FUNCTION", nargs="?", help="function name or ARN (its log group)"
    )
    logs.add_argument("--log-group", default=None, help="read this log group instead")
    logs.add_argument(
        "--since", default="10m", help="from this long ago (30s, 10m, 2h, 1d) or an ISO time"
    )
    logs.add_argument(
        "--filter", default=None, metavar="PATTERN", help="a CloudWatch Logs filter pattern"
    )
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines as they arrive"
    )
    logs.add_argument(
        "--color", choices=["auto", "always", "never"], default="auto", help="default: auto"
    )
    logs.add_argument(
        "--endpoint",
        default=f"http://127.0.0.1:{Settings.port}",
        help=f"the lambdaplane server (default http://127.0.0.1:{Settings.port})",
    )
    logs.add_argument("--region", default=None, help="default: the AWS config's, or us-east-1")
    logs.add_argument(
        "--data-dir",
        default=None,
        help="credentials.json is read here when no AWS credentials are configured",
    )
    logs.set_defaults(usage_error=logs.error)


def _logs(args: argparse.Namespace) -> int:
    from lambdaplane.logtail import LogsOptions, run

    if (args.function is None) == (args.log_group is None):
        args.usage_error("give a FUNCTION or --log-group (one of them)")
    return run(
        LogsOptions(
            function=args.function,
            log_group=args.log_group,
            since=args.since,
            pattern=args.filter,
            follow=args.follow,
            color=args.color,
            endpoint=args.endpoint.rstrip("/"),
            region=args.region,
            data_dir=Path(args.data_dir) if args.data_dir else data_dir_default(os.environ),
        )
    )


def _add_deploy_alias(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser(
        "deploy-alias",
        help="move an alias to a new version step by step, rolling back on errors",
        description=(
            "Shift an alias's traffic to VERSION the way CodeDeploy does for Lambda "
            "(UpdateAlias with RoutingConfig weights), watching the new version's error rate "
            "on the server's metrics and rolling back when it is too high. Exit status: "
            "0 deployed, 1 rolled back, 2 refused or failed."
        ),
    )
    deploy.set_defaults(usage_error=deploy.error)
    deploy.add_argument("function", metavar="FUNCTION", help="function name or ARN")
    deploy.add_argument("alias", metavar="ALIAS", help="the alias to move")
    deploy.add_argument("version", metavar="VERSION", help="the published version to deploy")
    how = deploy.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--strategy",
        metavar="NAME",
        help="a CodeDeploy configuration: LambdaAllAtOnce, LambdaCanary10Percent5Minutes "
        "(10, 15, 30), LambdaLinear10PercentEvery1Minute (2, 3, 10 Minutes)",
    )
    how.add_argument(
        "--canary", type=_percent, metavar="PERCENT", help="PERCENT for --interval, then 100%%"
    )
    how.add_argument(
        "--linear", type=_percent, metavar="PERCENT", help="PERCENT more every --interval"
    )
    deploy.add_argument(
        "--interval", type=_duration, metavar="DURATION", help="with --canary/--linear: 90s, 5m, 1h"
    )
    deploy.add_argument(
        "--max-error-rate",
        type=float,
        default=0.1,
        metavar="F",
        help="roll back when more than this fraction of the new version's invocations fail (default 0.1)",
    )
    deploy.add_argument(
        "--min-invocations",
        type=int,
        default=10,
        metavar="N",
        help="judge the error rate only after N invocations of the new version (default 10)",
    )
    deploy.add_argument(
        "--endpoint",
        default=f"http://127.0.0.1:{Settings.port}",
        help=f"the lambdaplane server (default http://127.0.0.1:{Settings.port})",
    )
    deploy.add_argument("--region", default=None, help="default: the AWS config's, or us-east-1")
    deploy.add_argument(
        "--poll",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="how often the metrics are read (default 10s)",
    )
    deploy.add_argument(
        "--data-dir",
        default=None,
        help="credentials.json is read here when no AWS credentials are configured "
        "(default $LAMBDAPLANE_DATA_DIR or ./.lambdaplane)",
    )


def _percent(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 99:
        raise argparse.ArgumentTypeError(f"a whole percentage 1-99, not {text!r}")
    return int(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except StrategyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _deploy_alias(args: argparse.Namespace) -> int:
    """Turn deploy-alias's flags into options and run it (usage errors exit 2)."""
    from lambdaplane.deploy.command import DeployOptions, run
    from lambdaplane.deploy.health import Thresholds

    if not args.endpoint.startswith(("http://", "https://")):
        args.usage_error(f"--endpoint must be an http:// or https:// URL, not {args.endpoint!r}")
    try:
        if args.strategy is not None:
            if args.interval is not None:
                args.usage_error("--interval goes with --canary or --linear, not --strategy")
            strategy = predefined(args.strategy)
        elif args.interval is None:
            args.usage_error("--canary and --linear need --interval")
        else:
            kind = Kind.CANARY if args.canary is not None else Kind.LINEAR
            strategy = Strategy(kind, args.canary or args.linear, args.interval)
        thresholds = Thresholds(args.max_error_rate, args.min_invocations)
    except ValueError as exc:  # StrategyError too
        args.usage_error(str(exc))
    options = DeployOptions(
        function=args.function,
        alias=args.alias,
        version=args.version,
        strategy=strategy,
        thresholds=thresholds,
        endpoint=args.endpoint.rstrip("/"),
        region=args.region,
        poll=args.poll,
        data_dir=Path(args.data_dir) if args.data_dir else data_dir_default(os.environ),
    )
    return run(options)


def _pairs(values: list[str], flag: str) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` flags as pairs; SettingsError for one without ``=``."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SettingsError(f"{flag} takes KEY=VALUE, got {value!r}")
        pairs.append((key, rest))
    return tuple(pairs)


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
                url_port=args.url_port,
                data_dir=args.data_dir,
                region=args.region,
                account_id=args.account_id,
                insecure_any_credentials=args.insecure_any_credentials,
                keep_alive_seconds=args.keep_alive,
                cpu_mode=args.cpu_mode,
                memory_share=args.memory_share,
                account_concurrency=args.account_concurrency,
                burst_limit=args.burst_limit,
                stream_bandwidth_mb=args.stream_bandwidth,
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
                esm_endpoints=tuple(
                    (service, url)
                    for service, url in (
                        ("kinesis", args.kinesis_endpoint),
                        ("dynamodbstreams", args.dynamodbstreams_endpoint),
                        ("dynamodb", args.dynamodbstreams_endpoint),
                    )
                    if url
                )
                or None,
                mq_brokers=_pairs(args.mq_broker, "--mq-broker") or None,
                esm_secrets=_pairs(args.esm_secret, "--esm-secret") or None,
                otlp_endpoint=args.otlp_endpoint,
                metrics_auth=args.metrics_auth,
                metrics_token_file=Path(args.metrics_token_file)
                if args.metrics_token_file
                else None,
            )
        except SettingsError as exc:
            print(f"lambdaplane: {exc}", file=sys.stderr)
            return 2
        from lambdaplane.server.runner import run

        run(settings)
    elif args.command == "install-runtimes":
        from lambdaplane.service.runtime_install import install_all
        from lambdaplane.settings import from_environ as settings_from_environ

        target = Path(args.dir) if args.dir else settings_from_environ().runtimes_dir
        installed = install_all(target)
        print(f"runtimes ready in {target}: {', '.join(installed) or 'none'}")
    elif args.command == "deploy-alias":
        return _deploy_alias(args)
    elif args.command == "logs":
        return _logs(args)
    elif args.command == "usage":
        return _usage(args)
    elif args.command == "keys":
        return _keys(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
