"""Start a reference service: ``python -m pytest_eng5.reference {content|cj-api|cj-worker} ...``.

The HTTP services are served by uvicorn, log to stdout and apply the schema on start (inside
the app's lifespan). The JWT secret may come from ``--jwt-secret`` or ``JWT_SECRET_KEY``; it is
registered for redaction and never printed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette

from pytest_eng5.core.process import REFERENCE_DSN_ENV, REFERENCE_FAULTS_DSN_ENV
from pytest_eng5.redact import RedactingFilter, register_secret
from pytest_eng5.reference.cj_app import create_cj_app
from pytest_eng5.reference.content_app import create_content_app
from pytest_eng5.reference.serving import uvicorn_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_eng5.reference")
    sub = parser.add_subparsers(dest="service", required=True)

    def http_options(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--port", type=int, help="bind 127.0.0.1 (or --host) on this port")
        where.add_argument("--fd", type=int, help="serve on this inherited listening socket")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument(
            "--dsn",
            default=os.environ.get(REFERENCE_DSN_ENV),
            help=f"PostgreSQL DSN (default: env {REFERENCE_DSN_ENV}, kept off the command line)",
        )
        p.add_argument(
            "--http-date-timestamps",
            action="store_true",
            help="render datetimes as RFC 1123 HTTP-dates, as HuleEdu does on the wire",
        )
        p.add_argument("--log-level", default="info")

    content = sub.add_parser("content", help="reference Content Service")
    http_options(content)
    content.add_argument(
        "--faults-dsn",
        default=os.environ.get(REFERENCE_FAULTS_DSN_ENV),
        help=f"database of the fault knobs (default: env {REFERENCE_FAULTS_DSN_ENV}, else --dsn)",
    )
    cj = sub.add_parser("cj-api", help="reference CJ Assessment Service HTTP API")
    http_options(cj)
    cj.add_argument("--content-url", required=True, help="Content Service URL (.../v1/content)")
    cj.add_argument("--jwt-secret", default=None, help="HS256 key; default: env JWT_SECRET_KEY")
    sub.add_parser("cj-worker", help="reference CJ worker (options: see its own --help)")
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _serve(app: Starlette, args: argparse.Namespace) -> None:
    config = uvicorn_config(
        app,
        host=args.host,
        port=args.port or 0,
        log_level=args.log_level,
        log_config=None,  # keep our stdout handler (with redaction)
        access_log=True,
    )
    server = uvicorn.Server(config)
    if args.fd is None:
        server.run()
    else:  # the parent bound the port; the family is read from the socket itself
        server.run(sockets=[socket.socket(fileno=args.fd)])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "cj-worker":
        worker = importlib.import_module("pytest_eng5.reference.worker_main")
        return int(worker.main(argv[1:]) or 0)
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"--dsn or env {REFERENCE_DSN_ENV} is required")
    _configure_logging(args.log_level)
    register_secret(args.dsn)  # may carry a password
    if args.service == "content":
        if args.faults_dsn:
            register_secret(args.faults_dsn)
        app = create_content_app(
            args.dsn, http_date_timestamps=args.http_date_timestamps, faults_dsn=args.faults_dsn
        )
        _serve(app, args)
        return 0
    secret = args.jwt_secret or os.environ.get("JWT_SECRET_KEY")
    if not secret:
        print(
            "cj-api needs a JWT secret: pass --jwt-secret or set JWT_SECRET_KEY "
            "(the same key the admin tokens are signed with).",
            file=sys.stderr,
        )
        return 2
    register_secret(secret)
    app = create_cj_app(
        args.dsn, args.content_url, secret, http_date_timestamps=args.http_date_timestamps
    )
    _serve(app, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
