#!/usr/bin/env python3
"""Deploys the rendered stacks into the local emulator, in two accounts and
two regions, and reads back what was deployed.

    deploy.py --endpoint http://127.0.0.1:PORT [--config examples/drill.toml] [--templates DIR]
              [--out deployment.json]

DIR (default: the repository) holds template.yaml, infra/ and statemachines/.

Order and placement follow samconfig.toml: the kms stack (source account,
target region), then the source stack (source account, source region), then
the target stack (target account, target region), each with the outputs of
the ones before (params.toml). Each stack is created through the emulator's
CloudFormation API (moto's), with credentials of its own account
(sts:AssumeRole into a deployer role, as the emulator maps accounts).

moto's CloudFormation leaves some resource types out (it logs "No Moto
CloudFormation support for ...") and creates state machines without their
DefinitionS3Location/DefinitionSubstitutions. The deployer completes exactly
those resources afterwards, from the rendered template: it evaluates their
intrinsic functions and the template's conditions against the deployed stack
(parameters, physical ids, attributes read back through the API) and applies
them through the service's own API:

  AWS::SNS::TopicPolicy           sns:SetTopicAttributes Policy
  AWS::SQS::QueuePolicy           sqs:SetQueueAttributes Policy
  AWS::SNS::Subscription          sns:Subscribe (in the Region property's region)
  AWS::Lambda::EventInvokeConfig  lambda:PutFunctionEventInvokeConfig
  AWS::CloudWatch::Alarm          cloudwatch:PutMetricAlarm
  AWS::StepFunctions::StateMachine (definition)  states:UpdateStateMachine with
                                  the S3 object's text and its substitutions
  AWS::KMS::Key (KeyPolicy)       kms:PutKeyPolicy (moto keeps the template's
                                  object, which its KMS API cannot read)
  AWS::IAM::Role (inline policies) iam:PutRolePolicy where moto kept an
                                  AWS::NoValue list element as null
  AWS::IAM::Role (ManagedPolicyArns) iam:AttachRolePolicy (moto attaches none)

The read-back (`Deployment.to_json()`) is the contract the rehearsal (and
later `aurora-dr rehearse`) works from: every function's environment and
role, every role's policies, the key policy, the topic policy, the
subscriptions, the Lambda permissions and the state machine definitions as
deployed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "emulator"))

import stacks  # noqa: E402
from iam import IamError, parse_document  # noqa: E402

DEPLOYER_ROLE = "aurora-dr-deployer"
# Resource types moto's CloudFormation skips and the deployer applies itself.
COMPLETED = (
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Subscription",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
)


class DeployError(RuntimeError):
    pass


def parse_policy(document) -> dict:
    """A policy document as the IAM API returns it from the emulator (the
    emulator's own reader: dict, JSON, URL-encoded JSON, or the Python repr
    moto's CloudFormation stores)."""
    try:
        return parse_document(document)
    except IamError as e:
        raise DeployError(str(e)) from None


class Emulator:
    """boto3 clients of one emulator endpoint, per account and region."""

    def __init__(self, endpoint: str):
        import boto3

        self.endpoint = endpoint
        self.boto3 = boto3
        self.sessions: dict[tuple[str, str, str], object] = {}

    def session(self, account: str, region: str, role: str = DEPLOYER_ROLE, role_arn: str | None = None):
        arn = role_arn or f"arn:aws:iam::{account}:role/{role}"
        key = (arn, region, "")
        if key not in self.sessions:
            sts = self.boto3.client(
                "sts",
                endpoint_url=self.endpoint,
                region_name=region,
                aws_access_key_id="aurora-dr-rehearsal",
                aws_secret_access_key="aurora-dr-rehearsal",
            )
            creds = sts.assume_role(RoleArn=arn, RoleSessionName="aurora-dr-rehearsal")["Credentials"]
            self.sessions[key] = self.boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
            )
        return self.sessions[key]

    def client(self, service: str, account: str, region: str, **kw):
        return self.session(account, region, **kw).client(service, endpoint_url=self.endpoint)


# ---- intrinsic functions, for the resources the deployer completes ------------


class Resolver:
    """CloudFormation's intrinsic functions and conditions over a deployed
    stack: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If,
    Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, AWS::NoValue."""

    NO_VALUE = object()

    def __init__(
        self, template: dict, parameters: dict[str, str], account: str, region: str, physical, getatt
    ):
        self.template = template
        self.params = {
            name: parameters.get(name, spec.get("Default"))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.physical = physical  # logical id -> physical id (Ref)
        self.getatt = getatt  # (logical id, attribute) -> value
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return self.NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            value = self.params[name]
            kind = self.template["Parameters"][name].get("Type", "String")
            if kind.startswith("CommaDelimitedList") or kind.startswith("List<"):
                return [v for v in str(value or "").split(",")] if value else []
            return value
        if name in self.physical:
            return self.physical[name]
        raise DeployError(f"Ref {name}: no such parameter or deployed resource")

    def sub(self, text: str, extra: dict) -> str:
        def repl(m):
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in extra:
                return str(extra[key])
            if "." in key and not key.startswith("AWS::"):
                logical, attr = key.split(".", 1)
                return str(self.getatt(logical, attr))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def value(self, node):
        if isinstance(node, list):
            out = [self.value(v) for v in node]
            return [v for v in out if v is not self.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(logical, attr)
            if fn == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.value(v) for k, v in variables.items()})
            if fn == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(v) for v in self.value(items))
            if fn == "Fn::Select":
                index, items = self.value(arg)
                return items[int(index)]
            if fn == "Fn::Split":
                sep, text = self.value(arg)
                return str(text).split(sep)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if fn == "Fn::Equals":
                a, b = self.value(arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::And":
                return all(self.value(a) for a in arg)
            if fn == "Fn::Or":
                return any(self.value(a) for a in arg)
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not self.NO_VALUE}

    def included(self, resource: dict) -> bool:
        name = resource.get("Condition")
        return name is None or self.condition(name)


# ---- deploying ---------------------------------------------------------------


class StackDeployment:
    """One deployed stack: its rendering, physical ids and outputs."""

    def __init__(self, emu: Emulator, rendered: stacks.Rendered):
        self.emu = emu
        self.rendered = rendered
        self.stack = rendered.stack
        self.physical: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.completed: list[str] = []
        self.skipped: list[str] = []

    def client(self, service: str, region: str | None = None):
        return self.emu.client(service, self.stack.account, region or self.stack.region)

    def upload_artifacts(self, bucket: str):
        s3 = self.client("s3")
        try:
            if self.stack.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.stack.region}
                )
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for key, body in self.rendered.artifacts.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)

    def create(self):
        cf = self.client("cloudformation")
        cf.create_stack(
            StackName=self.stack.name,
            TemplateBody=json.dumps(self.rendered.template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.stack.parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        for _ in range(600):
            desc = cf.describe_stacks(StackName=self.stack.name)["Stacks"][0]
            if not desc["StackStatus"].endswith("IN_PROGRESS"):
                break
            time.sleep(0.1)  # moto creates synchronously; this only guards a future async one
        if desc["StackStatus"] != "CREATE_COMPLETE":
            raise DeployError(f"{self.stack.name}: {desc['StackStatus']} {desc.get('StackStatusReason', '')}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
        for res in cf.describe_stack_resources(StackName=self.stack.name)["StackResources"]:
            # Types moto skips come back without a logical id; some it
            # creates (AWS::Lambda::Permission) have no physical id.
            if res.get("LogicalResourceId"):
                self.types[res["LogicalResourceId"]] = res.get("ResourceType", "")
                if res.get("PhysicalResourceId"):
                    self.physical[res["LogicalResourceId"]] = res["PhysicalResourceId"]

    def getatt(self, logical: str, attr: str):
        kind = self.rendered.template["Resources"][logical]["Type"]
        phys = self.physical.get(logical)
        if phys is None:
            raise DeployError(f"Fn::GetAtt {logical}.{attr}: {logical} was not deployed")
        if kind == "AWS::Lambda::Function" and attr == "Arn":
            return self.client("lambda").get_function(FunctionName=phys)["Configuration"]["FunctionArn"]
        if kind == "AWS::StepFunctions::StateMachine" and attr == "Name":
            return self.client("stepfunctions").describe_state_machine(stateMachineArn=phys)["name"]
        if kind == "AWS::StepFunctions::StateMachine" and attr == "Arn":
            return phys
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return self.client("iam").get_role(RoleName=phys)["Role"]["Arn"]
        if kind == "AWS::SNS::Topic" and attr == "TopicArn":
            return phys
        if kind == "AWS::SNS::Topic" and attr == "TopicName":
            return phys.rsplit(":", 1)[1]
        # A queue's physical id is its URL (".../<account>/<name>").
        if kind == "AWS::SQS::Queue" and attr == "QueueName":
            return phys.rstrip("/").rsplit("/", 1)[1]
        if kind == "AWS::SQS::Queue" and attr == "Arn":
            return self.client("sqs").get_queue_attributes(QueueUrl=phys, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
        if kind == "AWS::Events::Rule" and attr == "Arn":
            return self.client("events").describe_rule(Name=phys)["Arn"]
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return self.client("dynamodb").describe_table(TableName=phys)["Table"]["TableArn"]
        if kind == "AWS::KMS::Key" and attr == "Arn":
            return self.client("kms").describe_key(KeyId=phys)["KeyMetadata"]["Arn"]
        if kind == "AWS::Logs::LogGroup" and attr == "Arn":
            return f"arn:aws:logs:{self.stack.region}:{self.stack.account}:log-group:{phys}:*"
        raise DeployError(f"Fn::GetAtt {logical}.{attr} ({kind}) is not supported by the deployer")

    def resolver(self) -> Resolver:
        return Resolver(
            self.rendered.template,
            self.stack.parameters,
            self.stack.account,
            self.stack.region,
            self.physical,
            self.getatt,
        )

    def complete(self):
        """Applies what moto's CloudFormation left out (see the module doc)."""
        r = self.resolver()
        for logical, res in self.rendered.template.get("Resources", {}).items():
            kind = res["Type"]
            if not r.included(res):
                continue
            if kind == "AWS::StepFunctions::StateMachine":
                self.complete_state_machine(logical, r.value(res.get("Properties", {})))
                continue
            if kind == "AWS::IAM::Role" and logical in self.physical:
                self.complete_role_policies(logical, r.value(res.get("Properties", {})))
                continue
            if kind == "AWS::KMS::Key" and logical in self.physical:
                # moto's CloudFormation keeps KeyPolicy as an object, which its
                # own KMS API cannot read (DescribeKey answers HTTP 500): the
                # same policy goes in again as the text PutKeyPolicy takes.
                policy = r.value(res["Properties"]["KeyPolicy"])
                self.client("kms").put_key_policy(
                    KeyId=self.physical[logical], PolicyName="default", Policy=json.dumps(policy)
                )
                self.completed.append(f"{logical} (KeyPolicy)")
                continue
            if kind not in COMPLETED:
                if logical not in self.types:
                    self.skipped.append(f"{logical} ({kind})")
                continue
            props = r.value(res.get("Properties", {}))
            if kind == "AWS::SNS::TopicPolicy":
                for topic in props["Topics"]:
                    self.client("sns").set_topic_attributes(
                        TopicArn=topic,
                        AttributeName="Policy",
                        AttributeValue=json.dumps(props["PolicyDocument"]),
                    )
            elif kind == "AWS::SQS::QueuePolicy":
                for queue in props["Queues"]:  # Ref of a queue: its URL
                    self.client("sqs").set_queue_attributes(
                        QueueUrl=queue, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
                    )
            elif kind == "AWS::SNS::Subscription":
                region = props.get("Region") or props["TopicArn"].split(":")[3]
                # The filter policy and its scope as CloudFormation passes them
                # (subscription attributes FilterPolicy, FilterPolicyScope).
                attributes = {}
                if "FilterPolicy" in props:
                    attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
                if "FilterPolicyScope" in props:
                    attributes["FilterPolicyScope"] = props["FilterPolicyScope"]
                out = self.client("sns", region).subscribe(
                    TopicArn=props["TopicArn"],
                    Protocol=props["Protocol"],
                    Endpoint=props["Endpoint"],
                    ReturnSubscriptionArn=True,
                    **({"Attributes": attributes} if attributes else {}),
                )
                self.physical[logical] = out["SubscriptionArn"]
            elif kind == "AWS::Lambda::EventInvokeConfig":
                args = {"FunctionName": props["FunctionName"], "Qualifier": props.get("Qualifier", "$LATEST")}
                for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"):
                    if key in props:
                        args[key] = int(props[key]) if key != "DestinationConfig" else props[key]
                self.client("lambda").put_function_event_invoke_config(**args)
            elif kind == "AWS::CloudWatch::Alarm":
                args = {k: v for k, v in props.items() if k != "AlarmName"}
                for key in ("Period", "EvaluationPeriods"):
                    args[key] = int(args[key])
                args["Threshold"] = float(args["Threshold"])
                name = props.get("AlarmName") or f"{self.stack.name}-{logical}"
                self.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
                self.physical[logical] = name
            self.completed.append(f"{logical} ({kind})")

    def complete_role_policies(self, logical: str, props: dict):
        # moto's CloudFormation keeps an Fn::If branch of AWS::NoValue inside a
        # list as null (a Statement list with null entries, a Resource list
        # with a null ARN); CloudFormation removes the element ("Fn::If",
        # AWS::NoValue: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html).
        # Each inline policy that differs from the rendered one is put again.
        iam = self.client("iam")
        role = self.physical[logical]
        fixed = []
        for pol in props.get("Policies", []):
            deployed = parse_policy(
                iam.get_role_policy(RoleName=role, PolicyName=pol["PolicyName"])["PolicyDocument"]
            )
            if deployed != pol["PolicyDocument"]:
                # SAM writes no Version (AWS then applies 2008-10-17, which
                # differs only for policy variables, which these policies do
                # not use); moto's PutRolePolicy refuses a document without one.
                document = {"Version": "2012-10-17", **pol["PolicyDocument"]}
                iam.put_role_policy(
                    RoleName=role, PolicyName=pol["PolicyName"], PolicyDocument=json.dumps(document)
                )
                fixed.append(pol["PolicyName"])
        if fixed:
            self.completed.append(f"{logical} (inline policies without AWS::NoValue: {', '.join(fixed)})")
        # moto's CloudFormation attaches no ManagedPolicyArns (SAM's
        # AWSLambdaBasicExecutionRole on every function role).
        attached = {
            p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        }
        for arn in props.get("ManagedPolicyArns", []):
            if arn in attached:
                continue
            try:
                iam.attach_role_policy(RoleName=role, PolicyArn=arn)
            except iam.exceptions.NoSuchEntityException as e:
                raise DeployError(
                    f"{logical}: managed policy {arn} is unknown to the emulator (start it with "
                    "MOTO_IAM_LOAD_MANAGED_POLICIES=true, which loads AWS's managed policies)"
                ) from e
            self.completed.append(f"{logical} (attached {arn.rsplit('/', 1)[1]})")

    def complete_state_machine(self, logical: str, props: dict):
        location = props.get("DefinitionS3Location")
        if not location:
            return
        s3 = self.client("s3")
        text = s3.get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"].read().decode()
        substitutions = props.get("DefinitionSubstitutions") or {}
        missing = sorted(set(re.findall(r"\$\{([^}]+)\}", text)) - set(substitutions))
        if missing:
            raise DeployError(
                f"{logical}: the definition uses ${{{'}, ${'.join(missing)}}} without a substitution"
            )
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", str(value))
        self.client("stepfunctions").update_state_machine(
            stateMachineArn=self.physical[logical], definition=text
        )
        self.completed.append(f"{logical} (definition from s3://{location['Bucket']}/{location['Key']})")


def deploy_all(
    emu: Emulator, config: dict, progress=print, root: Path = stacks.REPO
) -> dict[str, StackDeployment]:
    deployed: dict[str, StackDeployment] = {}
    outputs: dict[str, dict[str, str]] = {}
    for env in stacks.ENVS:
        st = stacks.stack(env, config, outputs)
        bucket = f"aurora-dr-artifacts-{st.account}-{st.region}"
        start = time.monotonic()
        rendered = stacks.render(st, bucket, root)
        d = StackDeployment(emu, rendered)
        d.upload_artifacts(bucket)
        d.create()
        d.complete()
        deployed[env] = d
        outputs[env] = d.outputs
        progress(
            f"deployed {st.name} in {st.account} {st.region}: {len(d.physical)} resources "
            f"({time.monotonic() - start:.1f} s); completed {len(d.completed)}"
            + (f"; not deployed: {', '.join(d.skipped)}" if d.skipped else "")
        )
    return deployed


# ---- reading back what was deployed ------------------------------------------


def read_back(emu: Emulator, deployed: dict[str, StackDeployment]) -> dict:
    """What was deployed, through the services' APIs."""
    out: dict = {"stacks": {}, "functions": {}, "roles": {}, "keys": {}, "topics": {}, "stateMachines": {}}
    for env, d in deployed.items():
        st = d.stack
        out["stacks"][env] = {
            "name": st.name,
            "account": st.account,
            "region": st.region,
            "parameters": st.parameters,
            "outputs": d.outputs,
            "resources": {
                k: {"type": d.rendered.template["Resources"][k]["Type"], "physicalId": v}
                for k, v in d.physical.items()
            },
            "completed": d.completed,
            "notDeployed": d.skipped,
        }
        lam = d.client("lambda")
        iam = d.client("iam")
        for logical, kind in d.types.items():
            phys = d.physical.get(logical)
            if kind == "AWS::Lambda::Function":
                conf = lam.get_function(FunctionName=phys)["Configuration"]
                try:
                    permission = json.loads(lam.get_policy(FunctionName=phys)["Policy"])
                except lam.exceptions.ResourceNotFoundException:
                    permission = None
                # moto's Lambda keeps no LoggingConfig: the log group comes
                # from the rendered template (a Ref of the stack's log group).
                logging = d.rendered.template["Resources"][logical]["Properties"].get("LoggingConfig") or {}
                out["functions"][f"{env}/{logical}"] = {
                    "side": env,
                    "logicalId": logical,
                    "name": phys,
                    "arn": conf["FunctionArn"],
                    "role": conf["Role"],
                    "environment": conf.get("Environment", {}).get("Variables", {}),
                    "resourcePolicy": permission,
                    "logGroup": d.resolver().value(logging["LogGroup"]) if "LogGroup" in logging else None,
                }
            elif kind == "AWS::IAM::Role":
                role = iam.get_role(RoleName=phys)["Role"]
                policies = []
                for name in iam.list_role_policies(RoleName=phys)["PolicyNames"]:
                    doc = iam.get_role_policy(RoleName=phys, PolicyName=name)["PolicyDocument"]
                    policies.append({"name": f"{phys}/{name}", "policy": parse_policy(doc)})
                for att in iam.list_attached_role_policies(RoleName=phys)["AttachedPolicies"]:
                    pol = iam.get_policy(PolicyArn=att["PolicyArn"])["Policy"]
                    ver = iam.get_policy_version(
                        PolicyArn=att["PolicyArn"], VersionId=pol["DefaultVersionId"]
                    )
                    policies.append(
                        {"name": att["PolicyArn"], "policy": parse_policy(ver["PolicyVersion"]["Document"])}
                    )
                out["roles"][role["Arn"]] = {
                    "side": env,
                    "logicalId": logical,
                    "name": phys,
                    "trust": parse_policy(role["AssumeRolePolicyDocument"]),
                    "policies": policies,
                }
            elif kind == "AWS::KMS::Key":
                kms = d.client("kms")
                meta = kms.describe_key(KeyId=phys)["KeyMetadata"]
                policy = parse_policy(kms.get_key_policy(KeyId=phys, PolicyName="default")["Policy"])
                out["keys"][meta["Arn"]] = {"side": env, "logicalId": logical, "policy": policy}
            elif kind == "AWS::SNS::Topic":
                sns = d.client("sns")
                attrs = sns.get_topic_attributes(TopicArn=phys)["Attributes"]
                subs = sns.list_subscriptions_by_topic(TopicArn=phys)["Subscriptions"]
                out["topics"][phys] = {
                    "side": env,
                    "logicalId": logical,
                    "policy": parse_policy(attrs["Policy"]),
                    "subscriptions": [
                        {"protocol": s["Protocol"], "endpoint": s["Endpoint"], "owner": s["Owner"]}
                        for s in subs
                    ],
                }
            elif kind == "AWS::StepFunctions::StateMachine":
                desc = d.client("stepfunctions").describe_state_machine(stateMachineArn=phys)
                out["stateMachines"][phys] = {
                    "side": env,
                    "logicalId": logical,
                    "role": desc["roleArn"],
                    "definition": json.loads(desc["definition"]) if desc["definition"] else None,
                }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="the emulator, e.g. http://127.0.0.1:4599")
    p.add_argument("--config", type=Path, default=stacks.REPO / "examples" / "drill.toml")
    p.add_argument("--templates", type=Path, default=stacks.REPO, help="template.yaml, infra/, statemachines/")
    p.add_argument("--out", type=Path, help="write the read-back as JSON here")
    args = p.parse_args(argv)
    try:
        emu = Emulator(args.endpoint)
        deployed = deploy_all(emu, stacks.load_config(args.config), root=args.templates)
        doc = read_back(emu, deployed)
    except (stacks.ConfigError, DeployError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=1, default=str)
    if args.out:
        args.out.write_text(text)
        print(f"read-back: {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
