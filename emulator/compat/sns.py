"""SNS: cross-account subscriptions, permissions on policies without Sid,
and http(s) delivery as SNS does it (in the background, retried, never
failing the Publish), with fault rules for duplicate and out-of-order
deliveries.

- Amazon SNS developer guide, "Amazon SNS access control" (a topic policy
  lets other accounts subscribe): https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
- "Parsing message formats" (the JSON body of an http(s) notification):
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
- "Amazon SNS message delivery retries" (failed deliveries are retried):
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html
- Standard topics deliver at least once and may deliver out of order
  ("Message ordering and deduplication (FIFO topics)", which contrasts them):
  https://docs.aws.amazon.com/sns/latest/dg/fifo-message-dedup.html
"""

import json
import threading
import time

import requests
from moto.sns import models as sns
from moto.sns.exceptions import SNSException, SNSInvalidParameter
from moto.utilities.arns import parse_arn

from compat.common import policy_allows, wrap
from control import CALLS, FAULTS

HELD = {}  # subscription ARN -> [(body, headers, rule id)] held back by a reorder rule
HELD_LOCK = threading.Lock()


def install():
    cross_account_subscribe()
    add_permission_without_sid()
    http_delivery()


class AuthorizationError(SNSException):
    code = "AuthorizationError"


def cross_account_subscribe():
    """Subscribe to another account's topic: allowed only when the topic
    policy lets the caller's account `SNS:Subscribe` (else AuthorizationError),
    and the subscription belongs to the topic (moto kept it in the
    subscriber's account, so the owner's Publish never delivered to it)."""

    @wrap(sns.SNSBackend, "subscribe")
    def subscribe(original, self, topic_arn, endpoint, protocol):
        owner = parse_arn(topic_arn).account
        if owner == self.account_id:
            return original(self, topic_arn, endpoint, protocol)
        topic = self.get_topic(topic_arn)
        if not policy_allows(topic.policy, self.account_id, ["SNS:Subscribe"]):
            caller = f"arn:aws:iam::{self.account_id}:root"
            raise AuthorizationError(
                f"User: {caller} is not authorized to perform: SNS:Subscribe on {topic_arn}"
            )
        subscription = sns.sns_backends[owner][self.region_name].subscribe(topic_arn, endpoint, protocol)
        subscription.account_id = subscription.owner = self.account_id
        subscription.attributes["Owner"] = self.account_id
        self.subscriptions[subscription.arn] = subscription
        return subscription

    @wrap(sns.SNSBackend, "unsubscribe")
    def unsubscribe(original, self, subscription_arn):
        original(self, subscription_arn)
        try:
            arn = parse_arn(subscription_arn)
            sns.sns_backends[arn.account][arn.region].subscriptions.pop(subscription_arn, None)
        except (ValueError, KeyError):
            pass


def add_permission_without_sid():
    """AddPermission/RemovePermission work on a topic policy whose statements
    have no `Sid` (e.g. one set with SetTopicAttributes); moto: HTTP 500."""

    def add_permission(self, region_name, topic_arn, label, aws_account_ids, action_names):
        topic = self.get_topic(topic_arn)
        statements = topic._policy_json.setdefault("Statement", [])
        if any(s.get("Sid") == label for s in statements):
            raise SNSInvalidParameter("Statement already exists")
        if any(name not in sns.VALID_POLICY_ACTIONS for name in action_names):
            raise SNSInvalidParameter("Policy statement action out of service scope!")
        principals = [f"arn:aws:iam::{account}:root" for account in aws_account_ids]
        actions = [f"SNS:{name}" for name in action_names]
        statements.append(
            {
                "Sid": label,
                "Effect": "Allow",
                "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": topic_arn,
            }
        )

    def remove_permission(self, topic_arn, label):
        topic = self.get_topic(topic_arn)
        statements = topic._policy_json.get("Statement", [])
        topic._policy_json["Statement"] = [s for s in statements if s.get("Sid") != label]

    sns.SNSBackend.add_permission = add_permission
    sns.SNSBackend.remove_permission = remove_permission


def http_delivery():
    """Publish to an http(s) subscription returns at once and delivers in the
    background, as SNS does: the JSON body has Type=Notification, MessageId,
    TopicArn, Message, Timestamp and MessageAttributes (moto dropped them),
    with the x-amz-sns-* headers; a failed delivery is retried 3 times and
    never fails the Publish (moto: HTTP 500 when the endpoint was down).
    Each attempt is logged in /_aurora_dr/calls as sns Deliver."""

    @wrap(sns.Subscription, "publish")
    def publish(original, self, message, message_id, subject=None, message_attributes=None, **kwargs):
        if self.protocol not in ("http", "https"):
            return original(
                self, message, message_id, subject=subject, message_attributes=message_attributes, **kwargs
            )
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return None
        body = json.dumps(
            self.get_post_data(message, message_id, subject, message_attributes=message_attributes)
        )
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": self.topic.arn,
            "x-amz-sns-subscription-arn": self.arn,
        }
        rule = FAULTS.delivery(parse_arn(self.topic.arn), self.topic.arn)
        if rule is not None and rule["mode"] == "reorder":
            # Held back until the next message to this subscription has been
            # delivered (or `hold_seconds` passed): it arrives after it.
            with HELD_LOCK:
                HELD.setdefault(self.arn, []).append((body, headers, rule["id"]))
            timer = threading.Timer(rule["hold_seconds"], release, args=(self,))
            timer.daemon = True
            timer.start()
            return None
        copies = rule["copies"] if rule is not None else 1
        fault = rule["id"] if rule is not None else None
        threading.Thread(target=deliver_all, args=(self, body, headers, copies, fault), daemon=True).start()
        return None


def deliver_all(subscription, body, headers, copies=1, fault=None):
    """Delivers one message (`copies` times for a duplicate rule), then the
    messages held back for this subscription."""
    for _ in range(copies):
        deliver(subscription, body, headers, fault)
    release(subscription)


def release(subscription):
    with HELD_LOCK:
        held = HELD.pop(subscription.arn, [])
    for body, headers, fault in held:
        deliver(subscription, body, headers, fault)


def deliver(subscription, body, headers, fault=None):
    arn = parse_arn(subscription.topic.arn)
    for attempt in range(4):
        outcome = {"status": None, "error_code": None}
        try:
            response = requests.post(subscription.endpoint, data=body.encode(), headers=headers, timeout=10)
            outcome["status"] = response.status_code
        except requests.RequestException as error:
            outcome["error_code"] = type(error).__name__
        record = {
            "service": "sns",
            "operation": "Deliver",
            "account": arn.account,
            "region": arn.region,
            "params": {
                "Endpoint": subscription.endpoint,
                "TopicArn": subscription.topic.arn,
                "MessageId": headers.get("x-amz-sns-message-id", ""),
                "Attempt": str(attempt + 1),
            },
            **outcome,
        }
        if fault is not None:
            record["fault"] = fault
        CALLS.add(record)
        if outcome["status"] is not None and outcome["status"] < 500:
            return
        time.sleep(0.2 * (attempt + 1))
