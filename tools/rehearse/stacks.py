#!/usr/bin/env python3
"""The three stacks of a deployment, rendered as `sam deploy` would.

    stacks.py render --config examples/drill.toml --out DIR [--outputs JSON]
    stacks.py check-samconfig [--config examples/drill.toml]

`sam deploy --config-env kms|source|target` uploads the built functions and
the state machine definitions to S3, points CodeUri/DefinitionUri at them,
and lets CloudFormation apply the AWS::Serverless-2016-10-31 transform with
the stack's parameter values. `render` does the same offline: the SAM
translator (aws-sam-translator, the library SAM CLI and CloudFormation's
transform are built on) turns template.yaml into plain CloudFormation, with
the parameters that tools/rehearse/params.toml derives from the drill
configuration. infra/kms-key.yaml is plain CloudFormation already.

`check-samconfig` proves that samconfig.toml's config envs and params.toml
are one mapping (see params.toml).

Run with the tools venv's python (.venv-infra: samtranslator, samcli, boto3).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARAMS = Path(__file__).resolve().with_name("params.toml")
ENVS = ("kms", "source", "target")


class ConfigError(ValueError):
    """The drill configuration cannot be mapped to stack parameters."""


def load_config(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e


def config_value(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def as_parameter(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass
class Stack:
    """One config env: where its stack lives and its parameter values."""

    env: str
    template: str
    account: str
    region: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"aurora-dr-{self.env}"


def load_mapping(path: Path = PARAMS) -> dict:
    return tomllib.loads(path.read_text())


def stack(env: str, config: dict, outputs: dict[str, dict[str, str]] | None = None, mapping=None) -> Stack:
    """The stack of `env` for a drill configuration. `outputs` holds the
    outputs of the stacks deployed before, by env (kms, source); without them
    output-valued parameters are left out."""
    mapping = mapping or load_mapping()
    spec = mapping[env]
    if config.get("pairs"):
        raise ConfigError(
            "[[pairs]] (many clusters) is not rehearsed: the target stack then needs "
            "ClusterPairsNamePrefix, which the drill configuration does not carry"
        )
    problems = []
    placement = {}
    for what in ("account", "region"):
        value = config_value(config, spec[what])
        if value is None:
            problems.append(f"{env} stack: {spec[what]} is not set ({what} of the stack)")
        placement[what] = as_parameter(value)
    params: dict[str, str] = {}
    for name, rule in spec["parameters"].items():
        if isinstance(rule, str):
            rule = {"key": rule}
        if "value" in rule:
            params[name] = rule["value"]
        elif "output" in rule:
            other, output = rule["output"].split(".", 1)
            value = (outputs or {}).get(other, {}).get(output)
            if value is not None:
                params[name] = value
        else:
            value = config_value(config, rule["key"])
            if value is None and "default" in rule:
                value = rule["default"]
            if value is None and not rule.get("optional"):
                problems.append(
                    f"{env} stack: parameter {name} needs {rule['key']} in the drill configuration"
                )
            if value is not None:
                params[name] = as_parameter(value)
    if problems:
        raise ConfigError("\n".join(problems))
    return Stack(env, spec["template"], placement["account"], placement["region"], params)


# ---- rendering ----------------------------------------------------------------


@dataclass
class Rendered:
    """A stack's CloudFormation template and the S3 objects it refers to."""

    stack: Stack
    template: dict
    artifacts: dict[str, bytes]  # S3 key -> content


def placeholder_zip(binary: str) -> bytes:
    """A deployment package for a function whose code the rehearsal never
    runs (the rehearsal checks wiring and permissions, not the binary)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        z.writestr(info, f"#!/bin/sh\n# aurora-dr rehearsal placeholder for {binary}\n")
    return buf.getvalue()


def render(st: Stack, bucket: str, root: Path = REPO) -> Rendered:
    """Renders one stack. Functions and state machine definitions point at
    `bucket` (as `sam package` rewrites them); their objects are returned."""
    from samcli.yamlhelper import yaml_parse

    source = yaml_parse((root / st.template).read_text())
    artifacts: dict[str, bytes] = {}
    if "Transform" not in source:
        return Rendered(st, source, artifacts)
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    prefix = st.name
    for name, res in source.get("Resources", {}).items():
        props = res.setdefault("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
            body = placeholder_zip(binary)
            key = f"{prefix}/{binary}-{hashlib.md5(body).hexdigest()}.zip"  # noqa: S324 - as sam package names them
            artifacts[key] = body
            props["CodeUri"] = f"s3://{bucket}/{key}"
        elif res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            body = (root / props["DefinitionUri"]).read_bytes()
            key = f"{prefix}/{Path(props['DefinitionUri']).name}"
            artifacts[key] = body
            props["DefinitionUri"] = f"s3://{bucket}/{key}"
    pseudo = {"AWS::Region": st.region, "AWS::AccountId": st.account, "AWS::Partition": "aws"}
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=st.region),
    )
    template = translator.translate(source, {**st.parameters, **pseudo})
    return Rendered(st, template, artifacts)


# ---- samconfig.toml agreement -------------------------------------------------


def samconfig_overrides(value) -> dict[str, str]:
    items = value if isinstance(value, list) else str(value or "").split()
    return dict(item.split("=", 1) for item in items if "=" in item)


def check_samconfig(root: Path = REPO, config_path: Path | None = None, mapping=None) -> list[str]:
    """samconfig.toml's envs against params.toml, for one drill config."""
    mapping = mapping or load_mapping()
    config = load_config(config_path or root / "examples" / "drill.toml")
    sam = tomllib.loads((root / "samconfig.toml").read_text())
    problems = []
    for env in ENVS:
        deploy = (sam.get(env) or {}).get("deploy", {}).get("parameters")
        if deploy is None:
            problems.append(f"samconfig.toml has no [{env}.deploy.parameters]")
            continue
        spec = mapping[env]
        if deploy.get("template_file", "template.yaml") != spec["template"]:
            problems.append(
                f"[{env}] template_file {deploy.get('template_file')!r} != params.toml {spec['template']!r}"
            )
        st = stack(env, config, mapping=mapping)
        region = str(deploy.get("region", ""))
        want_region = "REPLACE_ME_" + spec["region"].replace(".", "_")
        if region.startswith("REPLACE_ME_"):
            if region != want_region:
                problems.append(
                    f"[{env}] region = {region!r}, but params.toml places the stack in {spec['region']}"
                )
        elif region != st.region:
            problems.append(f"[{env}] region = {region!r}, the drill config gives {st.region!r}")
        overrides = samconfig_overrides(deploy.get("parameter_overrides"))
        rules = {k: ({"key": v} if isinstance(v, str) else v) for k, v in spec["parameters"].items()}
        for name in sorted(set(overrides) - set(rules)):
            problems.append(f"[{env}] overrides {name}, which params.toml does not map")
        for name, rule in rules.items():
            required = not rule.get("optional")
            if name not in overrides:
                if required:
                    problems.append(f"[{env}] does not override {name} (params.toml maps it)")
                continue
            given = overrides[name]
            if given.startswith("REPLACE_ME_"):
                if "value" in rule:
                    problems.append(f"[{env}] {name}={given}, but params.toml fixes it to {rule['value']!r}")
                    continue
                # Placeholders that name their source must name the mapped one.
                hint = given[len("REPLACE_ME_") :]
                if "output" in rule:
                    other, output = rule["output"].split(".", 1)
                    want = f"{output}_output_of_aurora-dr-{other}"
                    if hint != want:
                        problems.append(
                            f"[{env}] {name}={given}, params.toml maps it to output {rule['output']}"
                        )
                elif (
                    "_" in hint
                    and hint.split("_")[0] in ("source", "target")
                    and hint != rule["key"].replace(".", "_")
                ):
                    problems.append(f"[{env}] {name}={given}, params.toml maps it to {rule['key']}")
                continue
            mapped = st.parameters.get(name)
            if mapped != given:
                problems.append(
                    f"[{env}] {name}={given!r}, params.toml gives {mapped!r} for the drill config"
                )
    return problems


def check_template_parameters(root: Path = REPO, mapping=None) -> list[str]:
    """Every mapped parameter is declared by its template."""
    from samcli.yamlhelper import yaml_parse

    mapping = mapping or load_mapping()
    problems = []
    for env in ENVS:
        declared = yaml_parse((root / mapping[env]["template"]).read_text()).get("Parameters", {})
        for name in mapping[env]["parameters"]:
            if name not in declared:
                problems.append(
                    f"params.toml [{env}] maps {name}, which {mapping[env]['template']} does not declare"
                )
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="write the rendered templates and parameters as JSON")
    r.add_argument("--config", type=Path, default=REPO / "examples" / "drill.toml")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--bucket", default="aurora-dr-artifacts")
    c = sub.add_parser("check-samconfig", help="samconfig.toml agrees with params.toml")
    c.add_argument("--config", type=Path, default=REPO / "examples" / "drill.toml")
    c.add_argument("--root", type=Path, default=REPO)
    args = p.parse_args(argv)
    try:
        if args.command == "check-samconfig":
            problems = check_template_parameters(args.root) + check_samconfig(args.root, args.config)
            for problem in problems:
                print(f"  {problem}")
            print(f"check-samconfig: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        config = load_config(args.config)
        args.out.mkdir(parents=True, exist_ok=True)
        for env in ENVS:
            rendered = render(stack(env, config), args.bucket)
            path = args.out / f"{rendered.stack.name}.json"
            path.write_text(json.dumps(rendered.template, indent=1))
            (args.out / f"{rendered.stack.name}.parameters.json").write_text(
                json.dumps(rendered.stack.parameters, indent=1)
            )
            print(f"{path} ({len(rendered.template.get('Resources', {}))} resources)")
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
