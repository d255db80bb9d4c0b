"""IAM mode: every AWS call of a deployed role is judged under IAM, inline.

Off by default. `POST /_aurora_dr/iam` switches it on:

    {"mode": "enforce" | "audit",
     "evaluator": ["node", "/repo/tools/rehearse/evaluator.mjs"],
     "principals": {"arn:aws:iam::111111111111:role/NAME": "CreateSnapshotFunction", ...}}

A call signed with keys from sts:AssumeRole into one of `principals` is
judged: the operation table (iam_actions.py) turns it into authorization
requests; the role's identity policies (inline and attached, as deployed in
the emulator's IAM) and the resource's own policy (KMS key policy, SNS topic
policy, Lambda function policy) go with each request to the evaluator, a
long-lived process running @cloud-copilot/iam-simulate
(tools/rehearse/evaluator.mjs). In `enforce` mode a denied call is answered
as AWS answers it, in the request's protocol, and never reaches moto; in
`audit` mode it goes through. Either way the decision is recorded: in the
call log (`"iam": {...}`) and in `GET /_aurora_dr/iam` (`decisions`).
Calls of other principals (the deployer, the test's set-up) are not judged.

`"invokers": {"<function ARN>": "http://127.0.0.1:PORT/PATH"}` in the
configuration stands in for Lambda: SNS's delivery to a `lambda`
subscription of that function is judged as SNS invoking it
(lambda:InvokeFunction by sns.amazonaws.com with aws:SourceArn and
aws:SourceAccount, against the function's policy) and, when allowed, the
Lambda event SNS sends is POSTed there in the background (an asynchronous
invocation: Publish never waits for it). An EventBridge rule's delivery to
a Lambda target (compat/lambda_targets.py, which also reads `invokers`) is
judged the same way, as events.amazonaws.com with the rule's ARN.

    GET    iam            mode, principals, decisions (oldest first), unjudged,
                          deliveries (SNS to lambda subscriptions, see below)
    POST   iam            configure (above); starts the evaluator
    GET    iam/count      {"decisions": N} (cheap progress for a caller)
    POST   iam/check      judge one request that is not an API call (a
                          service acting on a resource policy, e.g. SNS
                          invoking a function): {"principal", "action",
                          "resource", "context", "policy": "lambda-function"|...,
                          "identityPolicies"?: [...] for a principal that is
                          no role of the emulator}
    POST   iam/judge      judge an API call another local server received
                          (the Step Functions engine's API):
                          {"authorization": <its Authorization header>,
                          "service", "operation", "params", "region"}; the
                          answer is {"allowed": true} or {"allowed": false,
                          "code", "status", "message"} (the denial to send)
    DELETE iam            off; stops the evaluator, forgets the decisions

Error shapes of a denial ("Common Errors" of each API reference): RDS and
STS answer AccessDenied (HTTP 403), SNS AuthorizationError (403), KMS, Step
Functions and Secrets Manager AccessDeniedException (400), Lambda
AccessDeniedException (403). A KMS permission RDS needs on the caller's
behalf fails the RDS call with KMSKeyNotAccessibleFault (400), as RDS
reports it (RestoreDBClusterFromSnapshot, CopyDBClusterSnapshot: "Errors");
one SNS needs to publish to an encrypted topic fails Publish with
KMSAccessDenied (400, Publish: "Errors").
"""

import ast
import json
import re
import subprocess
import threading
from urllib.parse import unquote

import iam_actions

# (error code, HTTP status) of an IAM denial, by service.
DENIAL = {
    "rds": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "kms": ("AccessDeniedException", 400),
    "states": ("AccessDeniedException", 400),
    "secretsmanager": ("AccessDeniedException", 400),
    "dynamodb": ("AccessDeniedException", 400),
    "lambda": ("AccessDeniedException", 403),
}
MAX_DECISIONS = 20000
# The elements of a policy statement ("IAM JSON policy elements reference",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html).
STATEMENT_ELEMENTS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


class IamError(ValueError):
    pass


def parse_document(document):
    """A policy document as moto keeps it: dict, JSON text, URL-encoded JSON,
    or (from its CloudFormation) the repr of a Python dict."""
    if isinstance(document, dict):
        return document
    text = str(document or "")
    for candidate in (text, unquote(text)):
        try:
            return json.loads(candidate)
        except ValueError:
            pass
        try:
            value = ast.literal_eval(candidate)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    raise IamError(f"unreadable policy document: {text[:80]}")


class Evaluator:
    """The evaluator process: one JSON request per line, answers in order."""

    def __init__(self, argv):
        self.lock = threading.Lock()
        self.ids = 0
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
            )
        except OSError as e:
            raise IamError(f"cannot start the IAM evaluator {argv}: {e}") from e
        if not self.ask({"ping": True}).get("pong"):
            raise IamError("the IAM evaluator did not answer its handshake")

    def ask(self, request):
        with self.lock:
            self.ids += 1
            request = dict(request, id=self.ids)
            try:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (OSError, ValueError) as e:
                raise IamError(f"IAM evaluator failed: {e}") from e
            if not line:
                raise IamError(f"IAM evaluator exited ({self.proc.poll()})")
            return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class Look:
    """The emulator's state that condition keys and resource policies need."""

    @staticmethod
    def _rds(arn):
        from moto.rds.models import rds_backends

        parts = arn.split(":")
        if len(parts) < 7:
            return None, None, None
        return rds_backends[parts[4]][parts[3]], parts[5], parts[6]

    def _rds_resource(self, arn):
        backend, kind, name = self._rds(arn)
        if backend is None or "*" in name:
            return None
        table = {
            "cluster": backend.clusters,
            "cluster-snapshot": backend.cluster_snapshots,
            "db": backend.databases,
        }.get(kind)
        return table.get(name) if table is not None else None

    def rds_tags(self, arn):
        resource = self._rds_resource(arn)
        tags = getattr(resource, "tags", None) or []
        return {t["Key"]: t.get("Value", "") for t in tags}

    def snapshot_key(self, arn):
        snapshot = self._rds_resource(arn)
        if snapshot is None or not getattr(snapshot, "encrypted", False):
            return None
        key = snapshot.kms_key_id or ""
        if key and not key.startswith("arn:"):
            key = f"arn:aws:kms:{arn.split(':')[3]}:{arn.split(':')[4]}:key/{key}"
        return key or None

    def parameter_group_family(self, snapshot_arn, engine):
        snapshot = self._rds_resource(snapshot_arn)
        version = getattr(snapshot, "engine_version", "") or ""
        major = version.split(".")[0]
        return f"{engine}{major}" if engine and major else engine or "aurora"

    @staticmethod
    def topic_key(topic_arn):
        """The ARN of the KMS key a topic is encrypted with (KmsMasterKeyId:
        key id, key ARN, alias or alias ARN), or None."""
        from moto.kms.models import kms_backends
        from moto.sns.models import sns_backends

        parts = topic_arn.split(":")
        if len(parts) < 6:
            return None
        account, region = parts[4], parts[3]
        topic = sns_backends[account][region].topics.get(topic_arn)
        key = getattr(topic, "kms_master_key_id", "") or ""
        if not key:
            return None
        if key.startswith("arn:") and ":key/" in key:
            return key
        if key.startswith("arn:") and ":alias/" in key:
            account, region = key.split(":")[4], key.split(":")[3]
        try:
            key_id = kms_backends[account][region].any_id_to_key_id(key)
        except (KeyError, TypeError, AttributeError):
            key_id = key  # an alias that does not exist: judged as named
        return f"arn:aws:kms:{region}:{account}:key/{key_id}"

    @staticmethod
    def secret_arn(account, region, name):
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[account][region].secrets
        secret = store.get(name) if name in store else None
        return getattr(secret, "arn", None)

    # ---- policies ----

    @staticmethod
    def role(role_arn):
        from moto.iam.models import iam_backends

        account = role_arn.split(":")[4]
        return iam_backends[account]["aws"].get_role_by_arn(role_arn)

    def identity_policies(self, role_arn):
        from moto.iam.exceptions import NotFoundException

        try:
            role = self.role(role_arn)
        except NotFoundException:
            return []  # a role that does not exist (any more) grants nothing
        policies = [
            {"name": f"{role.name}/{name}", "policy": parse_document(doc)}
            for name, doc in role.policies.items()
        ]
        for arn, managed in role.managed_policies.items():
            version = next(v for v in managed.versions if v.version_id == managed.default_version_id)
            policies.append({"name": arn, "policy": parse_document(version.document)})
        return policies

    def resource_policy(self, kind, resource):
        policy = self._resource_policy(kind, resource)
        if not policy:
            return None
        # Only IAM's statement elements: moto's Lambda adds FunctionName to
        # each statement, which GetPolicy in AWS does not return.
        statements = policy.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        return {
            **policy,
            "Statement": [{k: v for k, v in st.items() if k in STATEMENT_ELEMENTS} for st in statements],
        }

    def _resource_policy(self, kind, resource):
        parts = resource.split(":")
        account, region = parts[4], parts[3]
        if kind == "kms-key":
            from moto.kms.models import kms_backends

            key = kms_backends[account][region].describe_key(parts[5].split("/", 1)[1])
            return parse_document(key.policy)
        if kind == "sns-topic":
            from moto.sns.models import sns_backends

            return sns_backends[account][region].get_topic(resource)._policy_json
        if kind == "lambda-function":
            from moto.awslambda.models import lambda_backends

            try:
                fn = lambda_backends[account][region].get_function(parts[6])
                return fn.policy.get_policy()["Policy"]
            except Exception:  # no such function, or no statements: moto's not-found errors
                return None
        if kind == "rds-shared-snapshot":
            snapshot = self._rds_resource(resource)
            accounts = [
                a for a in (getattr(snapshot, "attributes", {}) or {}).get("restore", []) if a != "all"
            ]
            if not accounts:
                return None
            return {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "SharedWith",
                        "Effect": "Allow",
                        "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
                        "Action": [
                            "rds:DescribeDBClusterSnapshots",
                            "rds:CopyDBClusterSnapshot",
                            "rds:RestoreDBClusterFromSnapshot",
                        ],
                        "Resource": resource,
                    }
                ],
            }
        if kind == "role-trust":
            return parse_document(self.role(resource).assume_role_policy_document)
        return None


def record_lambda_deliveries(mode):
    """While IAM mode is on, SNS delivery to a `lambda` subscription is
    recorded instead of run: SNS invokes the function asynchronously and
    Publish succeeds whatever the function does ("Using Lambda with Amazon
    SNS", https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html); moto
    would run the function in Docker and fail the Publish (HTTP 500). Each
    delivery is in `GET iam` (`deliveries`) and in the call log (sns Deliver)."""
    from moto.sns import models as sns

    if getattr(sns.Subscription.publish, "_aurora_dr_lambda", False):
        return
    original = sns.Subscription.publish

    def publish(self, message, message_id, subject=None, message_attributes=None, **kwargs):
        if self.protocol != "lambda" or mode.mode == "off":
            return original(
                self, message, message_id, subject=subject, message_attributes=message_attributes, **kwargs
            )
        from control import CALLS

        topic = self.topic.arn.split(":")
        delivery = {
            "topicArn": self.topic.arn,
            "endpoint": self.endpoint,
            "messageId": message_id,
            "message": message,
            "subject": subject,
        }
        with mode.lock:
            mode.deliveries.append(delivery)
        mode.invoke_subscriber(self, delivery)
        CALLS.add(
            {
                "service": "sns",
                "operation": "Deliver",
                "account": topic[4],
                "region": topic[3],
                "params": {"Endpoint": self.endpoint, "TopicArn": self.topic.arn, "Protocol": "lambda"},
                "status": None,
                "error_code": None,
            }
        )
        return message_id

    publish._aurora_dr_lambda = True
    sns.Subscription.publish = publish


def decision_record(function, role, operation, check, answer):
    """One decision as `GET iam` lists it."""
    return {
        "function": function,
        "role": role,
        "operation": operation,
        **check.to_json(),
        "decision": answer.get("decision"),
        "reason": answer.get("reason"),
        "allowedBy": answer.get("allowedBy", []),
        "grants": answer.get("grants", []),
        "context": check.context,
        "policy": check.policy,
    }


class IamMode:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "off"
        self.evaluator = None
        self.principals = {}
        self.decisions = []
        self.unjudged = {}
        self.deliveries = []
        self.invokers = {}
        self.look = Look()

    # ---- control ----

    def configure(self, payload):
        if not isinstance(payload, dict):
            raise IamError("IAM mode needs a JSON object")
        mode = payload.get("mode", "enforce")
        if mode not in ("enforce", "audit"):
            raise IamError("mode must be 'enforce' or 'audit'")
        argv = payload.get("evaluator")
        principals = payload.get("principals") or {}
        if not isinstance(principals, dict) or not all(isinstance(k, str) for k in principals):
            raise IamError("principals must map role ARNs to names")
        invokers = payload.get("invokers") or {}
        if not isinstance(invokers, dict) or not all(
            isinstance(v, str) and v.startswith("http://") for v in invokers.values()
        ):
            raise IamError("invokers must map function ARNs to http:// URLs")
        with self.lock:
            if argv or self.evaluator is None:
                if not argv or not isinstance(argv, list):
                    raise IamError(
                        "evaluator must be the command line of the evaluator, e.g. ['node', 'evaluator.mjs']"
                    )
                if self.evaluator is not None:
                    self.evaluator.close()
                self.evaluator = Evaluator([str(a) for a in argv])
            self.mode = mode
            self.principals = dict(principals)
            self.invokers = dict(invokers)
            self.decisions = []
            self.unjudged = {}
            self.deliveries = []
        record_lambda_deliveries(self)
        return self.to_json()

    def off(self):
        with self.lock:
            if self.evaluator is not None:
                self.evaluator.close()
            self.evaluator = None
            self.mode = "off"
            self.principals = {}
            self.invokers = {}
            self.decisions = []
            self.unjudged = {}
        return self.to_json()

    def to_json(self):
        with self.lock:
            return {
                "mode": self.mode,
                "principals": dict(self.principals),
                "decisions": list(self.decisions),
                "unjudged": dict(self.unjudged),
                "deliveries": list(self.deliveries),
            }

    def dispatch(self, method, route, payload):
        if route == "iam":
            if method == "GET":
                return self.to_json()
            if method == "POST":
                return self.configure(payload)
            if method == "DELETE":
                return self.off()
        if route == "iam/count" and method == "GET":
            with self.lock:
                return {"decisions": len(self.decisions)}
        if route == "iam/check" and method == "POST":
            return self.check(payload)
        if route == "iam/judge" and method == "POST":
            return self.judge_forwarded(payload)
        return None

    # ---- judging ----

    def principal_of(self, environ, account):
        """The role a request's access key was issued for, when it is judged."""
        found = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        if not found:
            return None, None
        from moto.sts.models import sts_backends

        assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(found.group(1))
        if assumed is None or assumed.role_arn not in self.principals:
            return None, None
        return assumed.role_arn, assumed.arn

    def evaluate(self, role_arn, session_arn, check):
        request = {
            "principal": session_arn,
            "action": check.action,
            "resource": check.resource,
            "resourceAccount": iam_actions.arn_account(check.resource) or role_arn.split(":")[4],
            "context": {
                "aws:PrincipalArn": role_arn,
                "aws:PrincipalAccount": role_arn.split(":")[4],
                **check.context,
            },
            "identityPolicies": self.look.identity_policies(role_arn),
            "resourcePolicy": self.look.resource_policy(check.policy, check.resource)
            if check.policy
            else None,
        }
        return self.evaluator.ask(request)

    def judge(self, call, environ):
        """None when the call goes on; else (code, status, message) of the
        denial. Records the decision either way."""
        if self.mode == "off":
            return None
        role_arn, session_arn = self.principal_of(environ, call["account"])
        if role_arn is None:
            return None
        who = self.principals[role_arn]
        try:
            checks = iam_actions.checks(call, self.look)
        except iam_actions.Unjudged as e:
            with self.lock:
                self.unjudged[f"{call['service']}:{call['operation']}"] = str(e)
            return None
        results = []
        denied = None
        for check in checks:
            answer = self.evaluate(role_arn, session_arn, check)
            allowed = answer.get("decision") == "Allowed"
            result = decision_record(who, role_arn, f"{call['service']}:{call['operation']}", check, answer)
            result.update(account=call["account"], region=call["region"])
            results.append(result)
            if not allowed and denied is None:
                denied = (check, result)
        with self.lock:
            self.decisions.extend(results)
            del self.decisions[:-MAX_DECISIONS]
        call.setdefault("iam", results)
        if denied is None or self.mode != "enforce":
            return None
        check, result = denied
        if check.error_code:
            code, status = check.error_code, 400
            message = (
                f"{result['operation'].split(':')[1]}: the KMS key {check.resource} is not accessible: "
                f"{session_arn} is not authorized to perform {check.action} through "
                f"{(check.via or 'rds').upper()} ({result['reason']})"
            )
        else:
            code, status = DENIAL.get(call["service"], ("AccessDenied", 403))
            message = (
                f"User: {session_arn} is not authorized to perform: {check.action} on resource: "
                f"{check.resource} because {result['reason']}"
            )
        return code, status, message

    def check(self, payload):
        """Judges one request described in full (see the module doc)."""
        if self.evaluator is None:
            raise IamError("IAM mode is off")
        for key in ("principal", "action", "resource"):
            if not isinstance((payload or {}).get(key), str):
                raise IamError(f"check needs a string {key!r}")
        principal = payload["principal"]
        roles = principal if principal.startswith("arn:aws:iam::") and ":role/" in principal else None
        check = iam_actions.Check(
            payload["action"], payload["resource"], payload.get("context") or {}, policy=payload.get("policy")
        )
        request = {
            "principal": principal,
            "action": check.action,
            "resource": check.resource,
            "resourceAccount": iam_actions.arn_account(check.resource) or payload.get("resourceAccount", ""),
            "context": check.context,
            "identityPolicies": payload.get("identityPolicies")
            or (self.look.identity_policies(roles) if roles else []),
            "resourcePolicy": self.look.resource_policy(check.policy, check.resource)
            if check.policy
            else None,
        }
        answer = self.evaluator.ask(request)
        who = payload.get("function") or self.principals.get(roles, principal)
        result = decision_record(who, principal, payload.get("operation", check.action), check, answer)
        if payload.get("identityPolicies"):
            # Kept so the same request can be judged again (the rehearsal's self-test).
            result["identityPolicies"] = payload["identityPolicies"]
        with self.lock:
            self.decisions.append(result)
        return result

    def judge_forwarded(self, payload):
        """An API call another local server received, judged as if it came
        here (see the module doc)."""
        from control import account_of

        if not isinstance(payload, dict):
            raise IamError("judge needs a JSON object")
        for key in ("authorization", "service", "operation", "region"):
            if not isinstance(payload.get(key), str):
                raise IamError(f"judge needs a string {key!r}")
        found = re.search(r"Credential=([^/]+)/", payload["authorization"])
        environ = {"HTTP_AUTHORIZATION": payload["authorization"]}
        call = {
            "service": payload["service"],
            "operation": payload["operation"],
            "account": account_of(environ, found.group(1) if found else ""),
            "region": payload["region"],
            "params": payload.get("params") or {},
        }
        denial = self.judge(call, environ)
        if denial is None:
            return {"allowed": True}
        code, status, message = denial
        return {"allowed": False, "code": code, "status": status, "message": message}

    def invoke_subscriber(self, subscription, delivery):
        """SNS invoking the subscribed function (see the module doc): judged
        against the function's policy; when allowed and an invoker stands in
        for the function, the Lambda event goes there in the background."""
        url = self.invokers.get(subscription.endpoint)
        if url is None or self.evaluator is None:
            return
        check = iam_actions.service_invokes_function(subscription.topic.arn, subscription.endpoint)
        answer = self.check(
            {
                "function": "SNS",
                "principal": "sns.amazonaws.com",
                "action": check.action,
                "resource": check.resource,
                "context": check.context,
                "policy": check.policy,
                "operation": "(service) sns:Deliver",
            }
        )
        delivery["invoke"] = answer.get("decision")
        if answer.get("decision") != "Allowed":
            return
        event = lambda_sns_event(subscription, delivery)
        threading.Thread(target=post_event, args=(url, event), daemon=True).start()


def lambda_sns_event(subscription, delivery):
    """The event SNS invokes a subscribed function with ("Using Lambda with
    Amazon SNS", https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html)."""
    import datetime

    region = subscription.topic.arn.split(":")[3]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription.arn,
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": now,
                    "Signature": "",
                    "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService.pem",
                    "MessageId": delivery["messageId"],
                    "Message": delivery["message"],
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
                    f"&SubscriptionArn={subscription.arn}",
                    "TopicArn": subscription.topic.arn,
                    "Subject": delivery.get("subject"),
                },
            }
        ]
    }


def post_event(url, event):
    """One asynchronous invocation: the answer is not SNS's concern."""
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
    except OSError:
        pass


IAM = IamMode()
