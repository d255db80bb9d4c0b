"""Python baseline of the Notify Lambda (success mode).

Client at module level, as in the blog; one AWS call per invocation: SNS
Publish of the versioned JSON message with the same three message
attributes as the Rust step.
"""

import json
import os

import boto3

TOPIC_ARN = os.environ["NOTIFICATION_TOPIC_ARN"]
FIELDS = ("runId", "createdAt", "sourceAccountId", "sourceRegion", "sourceClusterId", "sourceSnapshotId",
          "snapshotCreatedAt", "engine", "targetAccountId", "targetRegion", "targetSnapshotId",
          "targetSnapshotArn", "kmsKeyArn")

sns = boto3.client("sns")


def handler(event, context):
    message = {"version": 1}
    message.update({k: event[k] for k in FIELDS if k in event})

    def attribute(value):
        return {"DataType": "String", "StringValue": value}

    sns.publish(
        TopicArn=TOPIC_ARN,
        Message=json.dumps(message),
        MessageAttributes={
            "sourceClusterId": attribute(event["sourceClusterId"]),
            "snapshotId": attribute(event["targetSnapshotId"]),
            "version": attribute("1"),
        },
    )
    return event
