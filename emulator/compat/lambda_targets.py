"""EventBridge rules with Lambda targets: the matched event is POSTed to an
http URL that stands in for the function, asynchronously, with retries.

moto matches a rule's event pattern but delivers only to CloudWatch Logs,
SQS, archives, event buses and API destinations; a Lambda target made
PutEvents fail (NotImplementedError, HTTP 500). Here a Lambda target gets
the event document Lambda receives from EventBridge, and a disabled rule
delivers nothing.

- EventBridge User Guide, "Amazon EventBridge events" (the event's
  top-level fields: version, id, detail-type, source, account, time,
  region, resources, detail):
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
- EventBridge User Guide, "Event retry policy and using dead-letter
  queues": a target that fails is retried with exponential back-off and
  jitter for up to 24 hours and 185 attempts; Lambda is invoked
  asynchronously ("Using Lambda with EventBridge",
  https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge.html):
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
  The emulator retries RETRIES times, doubling BACKOFF_SECONDS, on a
  connection error or a non-2xx answer (a function error or throttling).
- EventBridge User Guide, "Using resource-based policies for Amazon
  EventBridge": the function's policy must allow lambda:InvokeFunction to
  the principal events.amazonaws.com, with aws:SourceArn the rule's ARN:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
  Judged only while IAM mode is on (iam.py), as SNS's deliveries are.
- Input transformation ("Target", EventBridge API reference): a target's
  `Input` (constant JSON), `InputPath` (a JSONPath) or `InputTransformer`
  replaces the event:
  https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html

Registration: `POST /_aurora_dr/lambda-endpoints {"<function ARN>":
"http://..."}` (merged into the registered ones; IAM mode on or off);
IAM mode's `invokers` count too. A target ARN with a version or alias
qualifier falls back to the unqualified function's URL. A target with no
registered URL is recorded (`"status": null`), not invoked.
"""

import copy
import datetime
import json
import threading
import time
import urllib.error
import urllib.request

from compat.common import wrap

RETRIES = 3
BACKOFF_SECONDS = 0.2
MAX_DELIVERIES = 5000
BASE_EVENT_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)

_lock = threading.Lock()
ENDPOINTS = {}
DELIVERIES = []


def endpoint_of(function_arn):
    """The URL standing in for a function (qualified ARNs fall back to the
    unqualified one)."""
    from iam import IAM

    parts = function_arn.split(":")
    candidates = [function_arn, ":".join(parts[:7])] if len(parts) > 7 else [function_arn]
    with _lock:
        for arn in candidates:
            if arn in ENDPOINTS:
                return ENDPOINTS[arn]
    for arn in candidates:
        if arn in IAM.invokers:
            return IAM.invokers[arn]
    return None


def iso_time(value):
    """EventBridge's `time`: ISO 8601 in UTC to the second (moto keeps a
    Unix timestamp)."""
    if isinstance(value, (int, float)):
        stamp = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def lambda_event(event):
    """The document a Lambda target receives: the event's own fields only."""
    document = {key: copy.deepcopy(event[key]) for key in BASE_EVENT_FIELDS if key in event}
    document["time"] = iso_time(document.get("time"))
    return document


def target_input(target, document):
    """What the target receives after its Input, InputPath or InputTransformer."""
    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        found = parse(target["InputPath"]).find(document)
        return found[0].value if found else None
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=document,
        )
    return document


def is_lambda(target):
    return str(target.get("Arn", "")).startswith("arn:aws:lambda:")


def judge(rule, function_arn):
    """None while IAM mode is off; else the evaluator's decision on
    events.amazonaws.com invoking the function for this rule."""
    import iam_actions
    from iam import IAM

    if IAM.mode == "off" or IAM.evaluator is None:
        return None
    check = iam_actions.service_invokes_function(rule.arn, function_arn)
    answer = IAM.check(
        {
            "function": "EventBridge",
            "principal": "events.amazonaws.com",
            "action": check.action,
            "resource": check.resource,
            "context": check.context,
            "policy": check.policy,
            "operation": "(service) events:Deliver",
        }
    )
    return answer.get("decision")


def deliver(rule, target, event):
    """One matched event to one Lambda target: judged, then POSTed in the
    background; recorded in `GET lambda-endpoints` and the call log."""
    function_arn = target["Arn"]
    document = lambda_event(event)
    record = {
        "rule": rule.arn,
        "target": function_arn,
        "event": document,
        "url": endpoint_of(function_arn),
        "decision": judge(rule, function_arn),
        "attempts": 0,
        "status": None,
    }
    with _lock:
        DELIVERIES.append(record)
        del DELIVERIES[:-MAX_DELIVERIES]
    if record["decision"] not in (None, "Allowed"):
        log_call(rule, record, "AccessDeniedException")
        return
    if record["url"] is None:
        log_call(rule, record, None)
        return
    payload = target_input(target, document)
    threading.Thread(target=post, args=(rule, record, payload), daemon=True).start()


def post(rule, record, payload):
    """POSTs with up to RETRIES retries on a connection error or non-2xx."""
    body = json.dumps(payload).encode()
    delay = BACKOFF_SECONDS
    for attempt in range(1 + RETRIES):
        status = None
        request = urllib.request.Request(
            record["url"],
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = None
        with _lock:
            record["attempts"] = attempt + 1
            record["status"] = status
        if status is not None and 200 <= status < 300:
            break
        if attempt < RETRIES:
            time.sleep(delay)
            delay *= 2
    log_call(rule, record, None if record["status"] and record["status"] < 300 else "DeliveryFailed")


def log_call(rule, record, error_code):
    from control import CALLS

    detail = record["event"].get("detail")
    event_id = {"EventID": str(detail["EventID"])} if isinstance(detail, dict) and "EventID" in detail else {}
    CALLS.add(
        {
            "service": "events",
            "operation": "Deliver",
            "account": rule.account_id,
            "region": rule.region_name,
            "params": {
                "Rule": rule.arn,
                "Target": record["target"],
                "DetailType": str(record["event"].get("detail-type")),
                **event_id,
            },
            "status": record["status"],
            "error_code": error_code,
        }
    )


# ---------------------------------------------------------------- control


def register(payload, _query):
    """`POST lambda-endpoints {"<function ARN>": "http://..."}`."""
    if not isinstance(payload, dict) or not all(
        str(k).startswith("arn:aws:lambda:") and isinstance(v, str) and v.startswith("http://")
        for k, v in payload.items()
    ):
        raise ValueError("lambda-endpoints must map function ARNs (arn:aws:lambda:...) to http:// URLs")
    with _lock:
        ENDPOINTS.update(payload)
    return state(None, None)


def state(_payload, _query):
    with _lock:
        return {"endpoints": dict(ENDPOINTS), "deliveries": copy.deepcopy(DELIVERIES)}


def forget(_payload, _query):
    with _lock:
        ENDPOINTS.clear()
        DELIVERIES.clear()
    return {"endpoints": {}, "deliveries": []}


ROUTES = {
    ("POST", "lambda-endpoints"): register,
    ("GET", "lambda-endpoints"): state,
    ("DELETE", "lambda-endpoints"): forget,
}


def install():
    from moto.events import models as events

    @wrap(events.Rule, "send_to_targets")
    def send_to_targets(original, self, event, transform_input=True):
        """Lambda targets here, the others to moto; a disabled rule sends nothing."""
        if self.state != "ENABLED" or not self.event_pattern.matches_event(event):
            return None
        lambdas = [t for t in self.targets if is_lambda(t)]
        if lambdas:
            others = copy.copy(self)
            others.targets = [t for t in self.targets if not is_lambda(t)]
            for target in lambdas:
                deliver(self, target, event)
            return original(others, event, transform_input)
        return original(self, event, transform_input)

