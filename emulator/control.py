"""Fault injection, call log and the control endpoint (`/_aurora_dr/...`).

`ControlMiddleware` wraps moto's WSGI application. For every AWS request it
works out service, operation, account and region, answers with an armed
fault if one matches (moto never sees that request), and records the call and
its outcome. Paths under `/_aurora_dr/` are the control endpoint; see
README.md for its JSON format.
"""

import fnmatch
import io
import itertools
import json
import re
import threading
import uuid
from urllib.parse import parse_qsl

from iam import IAM
from progress import LATENCY
from settings import QUOTA_DEFAULTS, SETTINGS

PREFIX = "/_aurora_dr/"
MAX_CALLS = 20000
SECRET_WORDS = ("password", "secret", "token", "signature", "plaintext")
QUERY_NAMESPACES = {
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}


class RuleError(ValueError):
    pass


class Faults:
    """Armed rules. `error` rules are answered here; the other kinds are read
    by the compatibility layer (compat/)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.ids = itertools.count(1)
        self.on_add = []  # callbacks(rule) run after a rule is armed

    def add(self, spec):
        rule = parse_rule(spec)
        with self.lock:
            rule["id"] = next(self.ids)
            self.rules.append(rule)
        for callback in self.on_add:
            callback(rule)
        return rule

    def reset(self):
        with self.lock:
            self.rules = []

    def to_json(self):
        with self.lock:
            return [dict(rule) for rule in self.rules]

    def take_error(self, call):
        """The first armed `error` rule matching the call, with its count spent."""
        with self.lock:
            for rule in self.rules:
                if rule["kind"] == "error" and matches(rule, call) and spend(rule):
                    return dict(rule)
        return None

    def snapshot_status(self, account, region, snapshot_id):
        with self.lock:
            for rule in self.rules:
                if rule["kind"] == "snapshot_status" and scope_matches(rule, account, region):
                    if fnmatch.fnmatchcase(snapshot_id.lower(), rule["id_lower"]):
                        return rule["status"]
        return None

    def instance_status(self, account, region, instance_id):
        """The final status of an instance that now gets `instance_id` (created
        or renamed), spending the first matching rule's `skip` and `count`."""
        with self.lock:
            for rule in self.rules:
                if rule["kind"] != "instance_status" or not scope_matches(rule, account, region):
                    continue
                if fnmatch.fnmatchcase(instance_id.lower(), rule["id_lower"]) and spend(rule):
                    return rule["status"]
        return None

    def quota(self, name, account, region):
        """The lowest limit a `quota` rule (or, for `concurrent_copies`, a
        `copy_quota` rule) sets on the named quota, or None."""
        with self.lock:
            limits = [
                rule["limit"]
                for rule in self.rules
                if scope_matches(rule, account, region)
                and (
                    (rule["kind"] == "quota" and rule["name"] == name)
                    or (rule["kind"] == "copy_quota" and name == "concurrent_copies")
                )
            ]
        return min(limits) if limits else None

    def delivery(self, topic, topic_arn):
        """The first `sns_delivery` rule that takes this notification (to a
        topic of `topic.account` in `topic.region`), with its count spent."""
        with self.lock:
            for rule in self.rules:
                if rule["kind"] != "sns_delivery" or not scope_matches(rule, topic.account, topic.region):
                    continue
                if fnmatch.fnmatchcase(topic_arn.lower(), rule["topic_lower"]) and spend(rule):
                    return dict(rule)
        return None


    def rds_event(self, account, region, event_id, identifier):
        """The first `rds_event` rule that takes this RDS event (`event_id`
        about resource `identifier`), with its count spent."""
        with self.lock:
            for rule in self.rules:
                if rule["kind"] != "rds_event" or not scope_matches(rule, account, region):
                    continue
                if (
                    fnmatch.fnmatchcase(event_id.lower(), rule["event_id_lower"])
                    and fnmatch.fnmatchcase(identifier.lower(), rule["source_lower"])
                    and spend(rule)
                ):
                    return dict(rule)
        return None


def parse_rule(spec):
    if not isinstance(spec, dict):
        raise RuleError("a rule must be a JSON object")
    kind = spec.get("kind", "error")
    scope = {"account": spec.get("account"), "region": spec.get("region")}
    if kind == "error":
        for key in ("service", "operation", "error_code"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise RuleError(f"error rule needs a string {key!r}")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise RuleError("count must be a non-negative integer or null")
        match = spec.get("match") or {}
        if not isinstance(match, dict):
            raise RuleError("match must be an object of parameter -> value (glob, '*' = present)")
        return {
            "kind": "error",
            "service": spec["service"].lower(),
            "operation": spec["operation"],
            "error_code": spec["error_code"],
            "http_status": int(spec.get("http_status", 400)),
            "message": spec.get("message") or f"Injected fault: {spec['error_code']}",
            "count": count,
            "skip": int(spec.get("skip", 0)),
            "match": {str(k): str(v) for k, v in match.items()},
            "after": bool(spec.get("after", False)),
            "hits": 0,
            **scope,
        }
    if kind == "instance_status":
        if not isinstance(spec.get("id"), str) or not isinstance(spec.get("status"), str):
            raise RuleError("instance_status rule needs string 'id' and 'status'")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise RuleError("count must be a non-negative integer or null")
        return {
            "kind": kind,
            "id_lower": spec["id"].lower(),
            "status": spec["status"],
            "count": count,
            "skip": int(spec.get("skip", 0)),
            "hits": 0,
            **scope,
        }
    if kind == "snapshot_status":
        if not isinstance(spec.get("id"), str) or not isinstance(spec.get("status"), str):
            raise RuleError("snapshot_status rule needs string 'id' and 'status'")
        return {
            "kind": kind,
            "id_lower": spec["id"].lower(),
            "status": spec["status"],
            **scope,
        }
    if kind in ("copy_quota", "quota"):
        limit = spec.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise RuleError(f"{kind} rule needs a non-negative integer 'limit'")
        if kind == "copy_quota":
            return {"kind": kind, "limit": limit, **scope}
        if spec.get("name") not in QUOTA_DEFAULTS:
            raise RuleError(f"quota rule needs a 'name' among {list(QUOTA_DEFAULTS)}")
        return {"kind": kind, "name": spec["name"], "limit": limit, **scope}
    if kind == "sns_delivery":
        mode = spec.get("mode")
        if mode not in ("duplicate", "reorder"):
            raise RuleError("sns_delivery rule needs 'mode': 'duplicate' or 'reorder'")
        copies = spec.get("copies", 2)
        hold = spec.get("hold_seconds", 2.0)
        if not isinstance(copies, int) or copies < 1:
            raise RuleError("copies must be a positive integer")
        if not isinstance(hold, (int, float)) or hold < 0:
            raise RuleError("hold_seconds must be a non-negative number")
        return {
            "kind": kind,
            "mode": mode,
            "topic_lower": str(spec.get("topic") or "*").lower(),
            "copies": copies if mode == "duplicate" else 1,
            "hold_seconds": float(hold),
            **counted(spec),
            **scope,
        }
    if kind == "rds_event":
        mode = spec.get("mode", "lost")
        if mode not in ("lost", "delay"):
            raise RuleError("rds_event rule needs 'mode': 'lost' or 'delay'")
        delay = spec.get("delay_seconds", 5.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise RuleError("delay_seconds must be a non-negative number")
        for key in ("event_id", "source"):
            if not isinstance(spec.get(key, "*"), str):
                raise RuleError(f"{key} must be a string (a glob)")
        return {
            "kind": kind,
            "mode": mode,
            "event_id_lower": spec.get("event_id", "*").lower(),
            "source_lower": spec.get("source", "*").lower(),
            "delay_seconds": float(delay),
            **counted(spec),
            **scope,
        }
    raise RuleError(f"unknown rule kind {kind!r}")


def counted(spec):
    """`count` (None: every time) and `skip` of a rule that fires a number of times."""
    count = spec.get("count")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise RuleError("count must be a non-negative integer or null")
    return {"count": count, "skip": int(spec.get("skip", 0)), "hits": 0}


def scope_matches(rule, account, region):
    return rule.get("account") in (None, account) and rule.get("region") in (None, region)


def spend(rule):
    """Whether a matching rule fires now: its first `skip` matches pass it
    by, then it fires `count` times (`None`: always). Called under the lock."""
    if rule["skip"] > 0:
        rule["skip"] -= 1
        return False
    if rule["count"] is not None:
        if rule["count"] <= 0:
            return False
        rule["count"] -= 1
    rule["hits"] += 1
    return True


def matches(rule, call):
    if rule["service"] != call["service"] or rule["operation"] != call["operation"]:
        return False
    if not scope_matches(rule, call["account"], call["region"]):
        return False
    for name, expected in rule["match"].items():
        value = call["params"].get(name)
        if value is None:
            return False
        if not fnmatch.fnmatchcase(str(value).lower(), expected.lower()):
            return False
    return True


FAULTS = Faults()


class Calls:
    """Log of AWS calls in arrival order, with their outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.seq = itertools.count(1)

    def add(self, record):
        with self.lock:
            record["seq"] = next(self.seq)
            self.items.append(record)
            del self.items[:-MAX_CALLS]

    def reset(self):
        with self.lock:
            self.items = []

    def to_json(self):
        with self.lock:
            return list(self.items)


CALLS = Calls()


def account_of(environ, access_key):
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return header
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "")


def describe_call(environ):
    """Service, operation, account, region and parameters of an AWS request.

    Reads the body and puts it back for moto. Returns None for anything that
    is not a signed AWS API call."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    found = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", auth)
    if not found:
        return None
    access_key, region, service = found.groups()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    params = {}
    protocol = "query"
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded") or not body:
        text = body.decode("utf-8", "replace") + "&" + environ.get("QUERY_STRING", "")
        params = dict(parse_qsl(text, keep_blank_values=True))
    target = environ.get("HTTP_X_AMZ_TARGET")
    operation = params.get("Action")
    if target:
        protocol = "json"
        operation = target.split(".")[-1]
        try:
            data = json.loads(body or b"{}")
            params = {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))}
        except ValueError:
            params = {}
    if not operation:
        return None
    return {
        "service": service.lower(),
        "operation": operation,
        "account": account_of(environ, access_key),
        "region": region,
        "params": params,
        "protocol": protocol,
    }


def loggable(params):
    shown = {}
    for key, value in params.items():
        if key in ("Action", "Version") or any(w in key.lower() for w in SECRET_WORDS):
            continue
        shown[key] = str(value)[:256]
    return shown


def error_body(call, code, message, status):
    """An error in the request's own protocol, as AWS sends it."""
    request_id = str(uuid.uuid4())
    if call["protocol"] == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
        return body, headers
    kind = "Receiver" if status >= 500 else "Sender"
    namespace = QUERY_NAMESPACES.get(call["service"], "")
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return body, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]


def xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_code_of(body):
    text = body[:4096].decode("utf-8", "replace")
    found = re.search(r"<Code>([^<]+)</Code>", text)
    if found:
        return found.group(1)
    found = re.search(r'"__type"\s*:\s*"([^"]+)"', text)
    return found.group(1).split("#")[-1] if found else None


STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class ControlMiddleware:
    """`routes` maps (method, route) to handler(payload, query) -> JSON for
    the compatibility modules' own control endpoints (resolve, storage)."""

    def __init__(self, app, routes=None):
        self.app = app
        self.routes = dict(routes or {})
        # Launch-time settings, restored by POST /reset.
        self.defaults = {"latency": LATENCY.to_json(), **SETTINGS.to_json()}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self.control(environ, start_response, path[len(PREFIX) :].strip("/"))
        call = describe_call(environ)
        if call is None:
            return self.app(environ, start_response)
        record = {
            "service": call["service"],
            "operation": call["operation"],
            "account": call["account"],
            "region": call["region"],
            "params": loggable(call["params"]),
        }
        # IAM mode (iam.py): authorization comes first, as in AWS.
        denial = IAM.judge(call, environ)
        if "iam" in call:
            record["iam"] = call["iam"]
        if denial is not None:
            code, status, message = denial
            body, headers = error_body(call, code, message, status)
            record.update(status=status, error_code=code)
            CALLS.add(record)
            start_response(f"{status} Denied", headers + [("Content-Length", str(len(body)))])
            return [body]
        rule = FAULTS.take_error(call)
        if rule is not None and rule["after"]:
            # A lost response: the call takes effect, the caller sees the error.
            list(self.app(environ, lambda *args, **kwargs: lambda data: None))
            record["applied"] = True
        if rule is not None:
            status = rule["http_status"]
            body, headers = error_body(call, rule["error_code"], rule["message"], status)
            record.update(status=status, error_code=rule["error_code"], fault=rule["id"])
            CALLS.add(record)
            start_response(f"{status} Injected", headers + [("Content-Length", str(len(body)))])
            return [body]
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        chunks = list(self.app(environ, capture))
        body = b"".join(chunks)
        status = captured.get("status", 500)
        record.update(status=status, error_code=error_code_of(body) if status >= 400 else None)
        CALLS.add(record)
        return [body]

    def control(self, environ, start_response, route):
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            payload = self.read_json(environ) if method in ("POST", "PUT") else None
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            handler = self.routes.get((method, route))
            result = handler(payload, query) if handler else self.dispatch(method, route, payload)
        except (RuleError, ValueError) as error:
            return respond(start_response, 400, {"error": str(error)})
        if result is None:
            return respond(start_response, 404, {"error": f"no route {method} {route}"})
        return respond(start_response, 200, result)

    @staticmethod
    def read_json(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        return json.loads(raw or b"null")

    def dispatch(self, method, route, payload):
        if route == "health" and method == "GET":
            import moto

            return {"status": "ok", "moto": moto.__version__}
        if route == "faults":
            if method == "GET":
                return {"rules": FAULTS.to_json()}
            if method == "POST":
                specs = payload if isinstance(payload, list) else [payload]
                return {"rules": [FAULTS.add(spec) for spec in specs]}
            if method == "DELETE":
                FAULTS.reset()
                return {"rules": []}
        if route == "calls":
            if method == "GET":
                return {"calls": CALLS.to_json()}
            if method == "DELETE":
                CALLS.reset()
                return {"calls": []}
        if route == "latency":
            if method == "POST":
                LATENCY.configure(payload)
            if method in ("GET", "POST"):
                return LATENCY.to_json()
        if route == "iam" or route.startswith("iam/"):
            return IAM.dispatch(method, route, payload)
        if route == "strict":
            if method == "POST":
                SETTINGS.configure_strict(payload)
            if method in ("GET", "POST"):
                return SETTINGS.to_json()["strict"]
        if route == "quotas":
            if method == "POST":
                SETTINGS.configure_quotas(payload)
            if method in ("GET", "POST"):
                return SETTINGS.to_json()["quotas"]
        if route == "reset" and method == "POST":
            FAULTS.reset()
            CALLS.reset()
            LATENCY.configure(self.defaults["latency"])
            SETTINGS.configure_strict(self.defaults["strict"])
            SETTINGS.configure_quotas(self.defaults["quotas"])
            return {"status": "reset"}
        return None


def respond(start_response, status, document):
    body = json.dumps(document).encode()
    start_response(
        f"{status} {STATUS_TEXT.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
