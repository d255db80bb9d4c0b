"""aurora-dr local AWS emulator: moto's server plus the compatibility layer.

    python launcher.py [--host 127.0.0.1] [--port 0] [--latency JSON]
                       [--strict JSON] [--quotas JSON] [--faults FILE]
                       [--stock] [--quiet] [--exit-on-stdin-eof]

Port 0 (the default) takes a free port. Once the server accepts requests it
prints exactly one line on stdout, `ready http://HOST:PORT`. SIGINT/SIGTERM
(and, with --exit-on-stdin-eof, the end of stdin) stop it cleanly.

--stock serves plain moto: no compatibility layer, no latency, no fault
rules, no control endpoint. The tests run every RDS behaviour against it to
show that the behaviour comes from the compatibility layer.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading

# Services whose Flask apps are built before the ready line, so the first
# calls of a test do not pay for it.
WARM_SERVICES = ("rds", "sts", "kms", "sns", "iam")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--latency",
        default='{"polls": 2}',
        help='JSON: {"polls": N} or {"seconds": S} for all kinds, or per kind '
        '{"snapshot": {...}, "copy": {...}, "cluster": {...}, "instance": {...}}',
    )
    parser.add_argument(
        "--strict",
        default="true",
        help="JSON: true (every RDS rule, the default), false (lenient), or "
        '{"switch": bool, ...} per rule (see settings.py)',
    )
    parser.add_argument(
        "--quotas",
        default="{}",
        help='JSON: quota -> limit, e.g. {"clusters": 40, "manual_cluster_snapshots": 100}',
    )
    parser.add_argument("--faults", help="JSON file with a list of fault rules to arm at start")
    parser.add_argument(
        "--stock", action="store_true", help="plain moto, without the compatibility layer (for tests)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent gone)"
    )
    return parser.parse_args(argv)


def share_region_lookups():
    """Start-up time only: moto builds a new boto3 Session (and reloads
    botocore's endpoint data) for each region list it computes at import;
    one shared session and a cache give the same answers about 1 s sooner."""
    import functools

    import boto3.session

    shared = boto3.session.Session()
    original = boto3.session.Session.get_available_regions

    @functools.lru_cache(maxsize=None)
    def regions(service_name, partition_name, allow_non_regional):
        return tuple(original(shared, service_name, partition_name, allow_non_regional))

    def get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
        return list(regions(service_name, partition_name, allow_non_regional))

    boto3.session.Session.get_available_regions = get_available_regions


def compatible(args):
    """Installs the compatibility layer, latency, settings and fault rules;
    returns the control endpoint's extra routes and the module names."""
    import compat
    import control
    import progress
    from settings import SETTINGS

    try:
        progress.LATENCY.configure(json.loads(args.latency))
        SETTINGS.configure_strict(json.loads(args.strict))
        SETTINGS.configure_quotas(json.loads(args.quotas))
    except ValueError as error:
        sys.exit(f"error: {error}")
    routes = {}
    patches = compat.apply(routes)
    if args.faults:
        with open(args.faults, encoding="utf-8") as file:
            for spec in json.load(file):
                control.FAULTS.add(spec)
    return routes, patches


def main(argv=None):
    args = parse_args(argv)
    if "MOTO_ACCOUNT_ID" in os.environ:
        sys.exit("error: MOTO_ACCOUNT_ID forces one account for every request; unset it")
    share_region_lookups()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if args.stock and args.faults:
        sys.exit("error: --stock serves plain moto; fault rules need the compatibility layer")
    # The layer patches moto's classes before any service app is built.
    routes, patches = ({}, ["none (stock moto)"]) if args.stock else compatible(args)
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for service in WARM_SERVICES:
        dispatcher.app_instances[service] = create_backend_app(service)
    if args.stock:
        app = dispatcher
    else:
        import control

        app = control.ControlMiddleware(dispatcher, routes)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop()), daemon=True).start()

    print(f"compatibility modules: {', '.join(patches)}", file=sys.stderr, flush=True)
    print(f"ready http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    print("emulator stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
