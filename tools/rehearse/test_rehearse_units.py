#!/usr/bin/env python3
"""Unit tests of the deploy rehearsal's pieces that need no emulator: the
samconfig.toml check (it must fail on broken copies), the intrinsic-function
resolver, policy parsing, the operation table and the checkov skip list.

Run with the tools venv's python (`make lint-infra` does).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "emulator"))

import checkov_scan  # noqa: E402
import deploy  # noqa: E402
import iam_actions  # noqa: E402
import stacks  # noqa: E402


class SamconfigAgreement(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="rehearse-"))
        for name in ("template.yaml", "samconfig.toml"):
            shutil.copy(REPO / name, self.tmp / name)
        shutil.copytree(REPO / "infra", self.tmp / "infra")
        shutil.copytree(REPO / "examples", self.tmp / "examples")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def edit(self, old, new):
        path = self.tmp / "samconfig.toml"
        text = path.read_text()
        self.assertIn(old, text, "fixture drift")
        path.write_text(text.replace(old, new, 1))

    def problems(self):
        return stacks.check_samconfig(self.tmp)

    def test_the_repository_agrees(self):
        self.assertEqual(self.problems(), [])

    def test_a_literal_that_differs_fails(self):
        self.edit('"SnapshotPrefix=aurora-dr",', '"SnapshotPrefix=dr-copies",')
        self.assertTrue(any("SnapshotPrefix" in p for p in self.problems()))

    def test_a_placeholder_naming_the_wrong_key_fails(self):
        self.edit('"TargetAWSRegion=REPLACE_ME_target_region"', '"TargetAWSRegion=REPLACE_ME_source_region"')
        self.assertTrue(any("TargetAWSRegion" in p for p in self.problems()))

    def test_a_missing_or_unmapped_override_fails(self):
        self.edit('    "Engine=REPLACE_ME_target_engine",\n', "")
        self.assertTrue(any("does not override Engine" in p for p in self.problems()))
        self.edit('    "Side=target",\n', '    "Side=target",\n    "LogLevel=debug",\n')
        self.assertTrue(any("LogLevel" in p for p in self.problems()))

    def test_the_wrong_region_placeholder_of_a_stack_fails(self):
        self.edit(
            'region = "REPLACE_ME_target_region"',
            'region = "REPLACE_ME_source_region"',
        )
        self.assertTrue(any("[kms] region" in p for p in self.problems()))

    def test_every_mapped_parameter_is_declared(self):
        self.assertEqual(stacks.check_template_parameters(), [])
        mapping = stacks.load_mapping()
        mapping["target"]["parameters"]["NoSuchParameter"] = "target.engine"
        self.assertTrue(stacks.check_template_parameters(mapping=mapping))

    def test_a_required_config_key_missing_is_a_clear_error(self):
        config = stacks.load_config(REPO / "examples" / "drill.toml")
        del config["target"]["engine"]
        with self.assertRaisesRegex(stacks.ConfigError, "Engine needs target.engine"):
            stacks.stack("target", config)


class Resolving(unittest.TestCase):
    TEMPLATE = {
        "Parameters": {"Side": {"Type": "String"}, "Name": {"Type": "String", "Default": "x"}},
        "Conditions": {"IsSource": {"Fn::Equals": [{"Ref": "Side"}, "source"]}},
    }

    def resolver(self, side):
        return deploy.Resolver(
            self.TEMPLATE,
            {"Side": side},
            "111111111111",
            "us-west-2",
            {"Topic": "arn:t"},
            lambda logical, attr: f"{logical}.{attr}",
        )

    def test_no_value_leaves_lists_and_maps(self):
        node = {
            "Resource": [{"Ref": "Topic"}, {"Fn::If": ["IsSource", "arn:other", {"Ref": "AWS::NoValue"}]}],
            "Extra": {"Fn::If": ["IsSource", "yes", {"Ref": "AWS::NoValue"}]},
        }
        self.assertEqual(self.resolver("target").value(node), {"Resource": ["arn:t"]})
        self.assertEqual(
            self.resolver("source").value(node), {"Resource": ["arn:t", "arn:other"], "Extra": "yes"}
        )

    def test_sub_select_split_getatt(self):
        r = self.resolver("source")
        self.assertEqual(
            r.value({"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${Name}:${Fn.Arn}"}),
            "arn:aws:x:us-west-2:x:Fn.Arn",
        )
        self.assertEqual(
            r.value({"Fn::Select": [3, {"Fn::Split": [":", "arn:aws:sns:eu-west-1:1:t"]}]}), "eu-west-1"
        )


class Policies(unittest.TestCase):
    def test_python_repr_and_url_encoded_documents(self):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        self.assertEqual(deploy.parse_policy(repr(doc)), doc)
        self.assertEqual(deploy.parse_policy("%7B%22Statement%22%3A%20%5B%5D%7D"), {"Statement": []})
        with self.assertRaises(deploy.DeployError):
            deploy.parse_policy("not a policy")


class NoLook:
    def rds_tags(self, arn):
        return {"aurora-dr:managed-by": "aurora-dr"} if ":cluster-snapshot:" in arn else {}

    def snapshot_key(self, arn):
        return "arn:aws:kms:us-west-1:111111111111:key/src"

    def parameter_group_family(self, arn, engine):
        return f"{engine}16"

    def topic_key(self, arn):
        return "arn:aws:kms:us-west-2:111111111111:key/topic" if arn.endswith(":encrypted") else None


def call(service, operation, **params):
    return {
        "service": service,
        "operation": operation,
        "account": "222222222222",
        "region": "us-west-1",
        "params": params,
    }


class OperationTable(unittest.TestCase):
    def test_restore_of_a_shared_encrypted_snapshot(self):
        checks = iam_actions.checks(
            call(
                "rds",
                "RestoreDBClusterFromSnapshot",
                DBClusterIdentifier="Temp",
                SnapshotIdentifier="arn:aws:rds:us-west-1:111111111111:cluster-snapshot:s1",
                Engine="aurora-postgresql",
                KmsKeyId="arn:aws:kms:us-west-1:111111111111:key/k",
                **{"Tags.Tag.1.Key": "a", "Tags.Tag.1.Value": "b"},
            ),
            NoLook(),
        )
        got = {(c.action, c.resource) for c in checks}
        self.assertIn(
            ("rds:RestoreDBClusterFromSnapshot", "arn:aws:rds:us-west-1:222222222222:cluster:temp"), got
        )
        self.assertIn(
            (
                "rds:RestoreDBClusterFromSnapshot",
                "arn:aws:rds:us-west-1:222222222222:cluster-pg:default.aurora-postgresql16",
            ),
            got,
        )
        self.assertIn(("rds:AddTagsToResource", "arn:aws:rds:us-west-1:222222222222:cluster:temp"), got)
        grant = next(c for c in checks if c.action == "kms:CreateGrant")
        self.assertEqual(grant.resource, "arn:aws:kms:us-west-1:111111111111:key/k")
        self.assertEqual(grant.context["kms:ViaService"], "rds.us-west-1.amazonaws.com")
        self.assertEqual(grant.context["kms:GrantIsForAWSResource"], "true")
        self.assertEqual(grant.context["kms:CallerAccount"], "222222222222")
        self.assertEqual((grant.policy, grant.error_code), ("kms-key", "KMSKeyNotAccessibleFault"))
        shared = next(c for c in checks if ":cluster-snapshot:" in c.resource)
        self.assertEqual(shared.policy, "rds-shared-snapshot")
        self.assertEqual(shared.context["rds:cluster-snapshot-tag/aurora-dr:managed-by"], "aurora-dr")

    def test_publishing_to_an_encrypted_topic_uses_its_key_through_sns(self):
        plain = iam_actions.checks(call("sns", "Publish", TopicArn="arn:aws:sns:us-west-2:111111111111:plain"),
                                   NoLook())
        self.assertEqual([c.action for c in plain], ["sns:Publish"])
        checks = iam_actions.checks(
            call("sns", "Publish", TopicArn="arn:aws:sns:us-west-2:111111111111:encrypted"), NoLook())
        kms = [c for c in checks if c.action.startswith("kms:")]
        self.assertEqual(sorted(c.action for c in kms), ["kms:Decrypt", "kms:GenerateDataKey"])
        for c in kms:
            self.assertEqual(c.resource, "arn:aws:kms:us-west-2:111111111111:key/topic")
            self.assertEqual(c.context["kms:ViaService"], "sns.us-west-2.amazonaws.com")
            self.assertEqual((c.policy, c.via, c.error_code), ("kms-key", "sns", "KMSAccessDenied"))

    def test_an_operation_outside_the_table_is_unjudged(self):
        with self.assertRaises(iam_actions.Unjudged):
            iam_actions.checks(call("rds", "DeleteDBSnapshot", DBSnapshotIdentifier="x"), NoLook())
        with self.assertRaises(iam_actions.Unjudged):
            iam_actions.checks(call("rds", "CreateDBClusterSnapshot"), NoLook())


class LambdaEvent(unittest.TestCase):
    """The event IAM mode's invoker posts for SNS's delivery to a Lambda
    subscription: the shape InvokeStepFunction parses (aws_lambda_events'
    SnsEvent) and "Using Lambda with Amazon SNS" shows."""

    def test_the_event_carries_the_topic_message_and_subscription(self):
        import iam

        class Topic:
            arn = "arn:aws:sns:us-west-2:111111111111:snapshots"

        class Sub:
            topic = Topic()
            arn = Topic.arn + ":0b1c"

        event = iam.lambda_sns_event(Sub(), {"messageId": "m-1", "message": '{"version": 1}', "subject": None})
        (record,) = event["Records"]
        self.assertEqual((record["EventSource"], record["EventSubscriptionArn"]), ("aws:sns", Sub.arn))
        sns = record["Sns"]
        self.assertEqual((sns["TopicArn"], sns["MessageId"], sns["Message"]), (Topic.arn, "m-1", '{"version": 1}'))
        self.assertEqual(sns["Type"], "Notification")
        self.assertRegex(sns["Timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class TwoTargets(unittest.TestCase):
    """The source stack rendered as `sam deploy` would with two DR targets:
    every list-valued parameter reaches the policies and the environment
    with both entries (a template that ignored the second would fail)."""

    ACCOUNTS = ("222222222222", "333333333333")
    REGIONS = ("us-west-1", "eu-west-1")
    KEYS = ("arn:aws:kms:us-west-1:111111111111:key/k1", "arn:aws:kms:eu-west-1:111111111111:key/k2")

    @classmethod
    def setUpClass(cls):
        config = stacks.load_config(REPO / "examples" / "drill.toml")
        base = stacks.stack("source", config, {"kms": {"KeyArn": cls.KEYS[0]}})
        params = {**base.parameters, "DestinationAccountNumber": ",".join(cls.ACCOUNTS),
                  "TargetAWSRegion": ",".join(cls.REGIONS), "KMSKey": ",".join(cls.KEYS)}
        st = stacks.Stack("source", base.template, base.account, base.region, params)
        rendered = stacks.render(st, "bucket")
        cls.template = rendered.template
        cls.resolver = deploy.Resolver(
            cls.template, params, st.account, st.region,
            physical={name: f"phys-{name}" for name in cls.template["Resources"]},
            getatt=lambda logical, attr: f"arn:aws:test:{st.region}:{st.account}:{logical}/{attr}",
        )
        cls.source_region = st.region

    def resource(self, logical):
        res = self.template["Resources"][logical]
        self.assertTrue(self.resolver.included(res), logical)
        return self.resolver.value(res.get("Properties", {}))

    def statement(self, document, sid):
        found = [s for s in document["Statement"] if s.get("Sid") == sid]
        self.assertEqual(len(found), 1, sid)
        return found[0]

    def role_statement(self, role, sid):
        for policy in self.resource(role).get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                if st.get("Sid") == sid:
                    return st
        self.fail(f"{role} has no statement {sid}")

    def test_encrypt_copy_may_use_exactly_each_listed_key_through_rds_in_each_target_region(self):
        for sid in ("GrantTheSharedKeyToRds", "DescribeTheSharedKeyThroughRds"):
            st = self.role_statement("EncryptCopyFunctionRole", sid)
            self.assertEqual(st["Resource"], list(self.KEYS), sid)
            self.assertEqual(st["Condition"]["StringEquals"]["kms:ViaService"],
                             [f"rds.{r}.amazonaws.com" for r in self.REGIONS], sid)

    def test_rds_grants_are_held_to_the_source_and_the_listed_regions(self):
        deny = self.statement(self.resource("SourceRegionsOnlyPolicy")["PolicyDocument"],
                              "OnlyTheSourceAndTargetRegions")
        self.assertEqual(deny["Effect"], "Deny")
        self.assertEqual(deny["NotResource"],
                         [f"arn:*:rds:{r}:*:*" for r in (self.source_region, *self.REGIONS)])
        share = self.role_statement("ShareFunctionRole", "OnlyTheTargetRegions")
        self.assertEqual(share["NotResource"], [f"arn:*:rds:{r}:*:*" for r in self.REGIONS])
        # Every source role with RDS grants has the Deny attached.
        for role in ("CreateSnapshotFunctionRole", "CleanUpSnapshotFunctionRole", "EncryptCopyFunctionRole",
                     "ShareFunctionRole", "FetchStatusFunctionRole", "ApplyRetentionFunctionRole"):
            self.assertIn("phys-SourceRegionsOnlyPolicy", self.resource(role).get("ManagedPolicyArns", []), role)

    def test_the_topic_policy_admits_each_listed_account_for_its_own_function_in_a_listed_region(self):
        doc = self.resource("NotificationTopicPolicy")["PolicyDocument"]
        st = self.statement(doc, "TargetAccountMaySubscribeItsLambda")
        self.assertEqual(st["Principal"]["AWS"], list(self.ACCOUNTS))
        self.assertEqual(st["Condition"]["StringLike"]["sns:Endpoint"],
                         [f"arn:*:lambda:{r}:${{aws:PrincipalAccount}}:function:*" for r in self.REGIONS])

    def test_the_functions_get_the_lists_as_they_are(self):
        env = self.resource("NotifyFunction")["Environment"]["Variables"]
        self.assertEqual(env["TARGET_ACCOUNT_ID"], ",".join(self.ACCOUNTS))
        self.assertEqual(env["TARGET_REGION"], ",".join(self.REGIONS))
        self.assertEqual(env["KMS_KEY_ARN"], ",".join(self.KEYS))


class Refusals(unittest.TestCase):
    def test_every_refusal_names_a_deployed_function_and_a_scoped_resource(self):
        import rehearse

        dep = {
            "stacks": {
                "source": {"account": "111111111111", "region": "us-west-2", "outputs": {
                    "NotificationTopicArn": "arn:aws:sns:us-west-2:111111111111:t"},
                    "parameters": {"SourceDBClusterIdentifier": "orders", "SnapshotPrefix": "aurora-dr",
                                   "TargetAWSRegion": "us-west-1,eu-west-1"}},
                "target": {"account": "222222222222", "region": "us-west-1", "outputs": {},
                    "parameters": {"ExistingDBClusterIdentifier": "orders-dr",
                                   "TempDBClusterIdentifier": "orders-dr-next"}},
            },
            "functions": {},
        }
        for side, account in (("source", "111111111111"), ("target", "222222222222")):
            for logical in ("ApplyRetentionFunction", "CleanUpSnapshotFunction", "TerminateFunction",
                            "CleanUpTempClusterFunction", "RestoreFunction", "NotifyFailureFunction",
                            "CreateSnapshotFunction", "ShareFunction", "EncryptCopyFunction"):
                dep["functions"][f"{side}/{logical}"] = {"role": f"arn:aws:iam::{account}:role/{logical}Role"}
        refusals = rehearse.refusals(dep)
        self.assertGreaterEqual(len(refusals), 8)
        serving = [r for r in refusals if r["resource"].endswith(":cluster:orders-dr")]
        self.assertTrue(serving and all(r["context"]["rds:cluster-tag/aurora-dr:managed-by"] == "aurora-dr"
                                        for r in serving))
        topic = [r for r in refusals if r["action"] == "sns:Publish"]
        self.assertTrue(topic and all(r["policy"] == "sns-topic" for r in topic))
        # Every target region is listed, so none is the region a refusal names.
        elsewhere = {r["resource"].split(":")[3] for r in refusals
                     if r["action"] in ("rds:CopyDBClusterSnapshot", "rds:ModifyDBClusterSnapshotAttribute")}
        self.assertTrue(elsewhere and not elsewhere & {"us-west-1", "eu-west-1"}, elsewhere)
        subscribe = [r for r in refusals if r["action"] == "sns:Subscribe"]
        self.assertTrue(subscribe and ":222222222222:" not in subscribe[0]["context"]["sns:Endpoint"])


class Justifications(unittest.TestCase):
    TEMPLATE = """Resources:
  SwapFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            # What it reads.
            # Unused in the rehearsal: the retried
            # path only.
            - Sid: ReadClusters
              Effect: Allow
            - Sid: Rename
              Effect: Allow
            # Unused in the rehearsal: with pairs only.
            - !If
              - HasClusterPairs
              - Sid: RenamePairs
                Effect: Allow
              - !Ref AWS::NoValue
"""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="rehearse-"))
        (self.tmp / "template.yaml").write_text(self.TEMPLATE)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def dep(self, sids):
        role = {"side": "target", "logicalId": "SwapFunctionRole", "policies": [
            {"name": "inline", "policy": {"Statement": [{"Sid": s, "Effect": "Allow"} for s in sids]}}]}
        return {"roles": {"arn:aws:iam::222222222222:role/SwapFunctionRole": role}, "keys": {}, "topics": {},
                "functions": {}}

    def test_reasons_are_read_from_the_comment_above_the_statement(self):
        import rehearse

        self.assertEqual(rehearse.justifications(self.tmp), {
            ("SwapFunction", "ReadClusters"): "the retried path only.",
            ("SwapFunction", "RenamePairs"): "with pairs only.",
        })

    def test_an_unjustified_grant_and_a_stale_reason_are_reported(self):
        import rehearse

        reasons = rehearse.justifications(self.tmp)
        warnings = ["UNUSED target/SwapFunctionRole Rename: actions never used: rds:ModifyDBInstance"]
        justified, unjustified, stale = rehearse.judge_least_privilege(
            self.dep(["ReadClusters", "Rename"]), warnings, reasons)
        self.assertEqual(justified, [])
        self.assertEqual(unjustified, warnings)
        # ReadClusters is deployed and fully used: its reason is stale;
        # RenamePairs is not deployed (no pairs): its reason stays.
        self.assertEqual(len(stale), 1)
        self.assertIn("SwapFunction ReadClusters", stale[0])

        warnings = ["UNUSED target/SwapFunctionRole ReadClusters: no request of the rehearsal was allowed"]
        justified, unjustified, stale = rehearse.judge_least_privilege(
            self.dep(["ReadClusters", "Rename"]), warnings, reasons)
        self.assertEqual((len(justified), unjustified, stale), (1, [], []))
        self.assertIn("(justified: the retried path only.)", justified[0])

    def test_a_policy_attached_to_a_role_carries_its_own_reasons(self):
        import rehearse

        reasons = {("SwapFunctionExtraPolicy", "Stop"): "never stopped."}
        warnings = ["UNUSED target/SwapFunctionRole Stop: actions never used: states:StopExecution"]
        justified, unjustified, stale = rehearse.judge_least_privilege(self.dep(["Stop"]), warnings, reasons)
        self.assertEqual((len(justified), unjustified, stale), (1, [], []))
        self.assertIn("(justified: never stopped.)", justified[0])
        # Fully used: the attached policy's reason is stale.
        justified, unjustified, stale = rehearse.judge_least_privilege(self.dep(["Stop"]), [], reasons)
        self.assertEqual((justified, unjustified, len(stale)), ([], [], 1))

    def test_a_role_the_template_declares_carries_its_own_reasons(self):
        import rehearse

        # An AWS::IAM::Role resource (not a SAM function's generated role).
        reasons = {("SwapFunctionRole", "Stop"): "assumed by EventBridge only."}
        warnings = ["UNUSED target/SwapFunctionRole Stop: no request of the rehearsal was allowed"]
        justified, unjustified, stale = rehearse.judge_least_privilege(self.dep(["Stop"]), warnings, reasons)
        self.assertEqual((len(justified), unjustified, stale), (1, [], []))
        self.assertIn("(justified: assumed by EventBridge only.)", justified[0])


class Hardening(unittest.TestCase):
    """Each rule of hardening.py passes on the rendered stacks and fails on a
    copy broken the way it guards against."""

    @classmethod
    def setUpClass(cls):
        import checkov_scan

        cls.rendered = {env: t for env, (_, t) in checkov_scan.rendered_stacks(
            REPO / "examples" / "drill.toml").items()}

    def broken(self, env, edit):
        import copy

        import hardening

        templates = copy.deepcopy(self.rendered)
        edit(templates[env]["Resources"], templates[env])
        return hardening.check(templates)

    def assertBreaks(self, env, edit, expected):
        problems = self.broken(env, edit)
        self.assertTrue(any(expected in p for p in problems), f"{expected!r} not in {problems}")

    def test_the_rendered_stacks_pass(self):
        import hardening

        self.assertEqual(hardening.check(self.rendered), [])

    def test_the_snapshot_topic_open_to_other_publishers(self):
        def edit(res, _):
            doc = next(r for r in res.values() if r["Type"] == "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
            doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "OnlyNotifyPublishes"]

        self.assertBreaks("source", edit, "does not deny sns:Publish")

    def test_no_heartbeat_when_missing_data_is_fine(self):
        def edit(res, _):
            res["RestoreHeartbeatAlarm"]["Properties"]["TreatMissingData"] = "notBreaching"

        self.assertBreaks("target", edit, "no heartbeat alarm")

    def test_a_machine_logging_execution_data(self):
        def edit(res, _):
            res["TargetStateMachine"]["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] = True

        self.assertBreaks("target", edit, "TargetStateMachine does not log at level ERROR")

    def test_a_function_without_its_log_group(self):
        def edit(res, _):
            del res["SwapFunction"]["Properties"]["LoggingConfig"]

        self.assertBreaks("target", edit, "SwapFunction does not write to a log group")

    def test_a_log_group_without_retention(self):
        def edit(res, _):
            del res["NotifyFunctionLogGroup"]["Properties"]["RetentionInDays"]

        self.assertBreaks("source", edit, "NotifyFunctionLogGroup has no RetentionInDays")

    def test_a_schedule_without_retries_or_dead_letter_queue(self):
        def edit(res, _):
            rule = next(r for r in res.values() if r["Type"] == "AWS::Events::Rule")
            for target in rule["Properties"]["Targets"]:
                target.pop("RetryPolicy")
                target.pop("DeadLetterConfig")

        problems = self.broken("source", edit)
        self.assertTrue(any("has no RetryPolicy" in p for p in problems), problems)
        self.assertTrue(any("has no dead-letter queue" in p for p in problems), problems)

    def test_a_dead_letter_queue_any_rule_may_fill(self):
        def edit(res, _):
            res["ScheduleDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0].pop("Condition")

        self.assertBreaks("source", edit, "has no policy scoped to")

    def test_invoke_step_function_without_reserved_concurrency(self):
        def edit(res, _):
            del res["InvokeStepFunctionFunction"]["Properties"]["ReservedConcurrentExecutions"]

        self.assertBreaks("target", edit, "no ReservedConcurrentExecutions")

    def test_sanity_tls_disable_offered(self):
        def edit(_, t):
            t["Parameters"]["SanityTls"]["AllowedValues"].append("disable")

        self.assertBreaks("target", edit, "must never go without TLS")

    def test_a_topic_without_its_customer_managed_key(self):
        def edit(res, _):
            del res["FailureTopic"]["Properties"]["KmsMasterKeyId"]

        self.assertBreaks("target", edit, "FailureTopic is not encrypted with a customer managed key")

    def test_a_topic_key_that_shuts_out_cloudwatch(self):
        def edit(res, _):
            doc = res["StackKey"]["Properties"]["KeyPolicy"]
            doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "CloudWatchAlarmsPublish"]

        self.assertBreaks("source", edit, "does not admit CloudWatch")

    def test_a_subscription_that_takes_every_targets_messages(self):
        def edit(res, _):
            del res["SourceTopicSubscription"]["Properties"]["FilterPolicy"]

        self.assertBreaks("target", edit, "SourceTopicSubscription does not filter on its own targetAccountId")


class CheckovSkips(unittest.TestCase):
    def test_every_skip_has_a_reason(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# comment\nCKV_AWS_1  a reason\nCKV_AWS_2\n")
        try:
            ids, problems = checkov_scan.read_skips(Path(f.name))
        finally:
            Path(f.name).unlink()
        self.assertEqual(ids, ["CKV_AWS_1"])
        self.assertEqual(len(problems), 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"rehearse units: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
