"""Consistency of the deployment files with each other and with the code.

What must agree, and what this module checks:
  - the one table of functions (aurora_dr_core::steps::FUNCTIONS, read from
    tools/functions.json, which a Rust test keeps equal to the table): every
    function of template.yaml has an entry and back, with the entry's crate
    (Binary), sides (Condition) and role actions (exactly the entry's, on
    either side); each machine's DefinitionSubstitutions are exactly its
    side's entries' `${...FunctionArn}`, and each Task state invokes the
    substitution of the entry that serves it;
  - every function in template.yaml is built from a Lambda crate of the
    workspace (a crate with a `bin` target that depends on `lambda_runtime`;
    `cargo metadata --no-deps`), and every such crate is deployed;
  - every function has the SAM build metadata, its own role (Policies) and
    inherits provided.al2023 / bootstrap / CodeUri "." from Globals;
  - every `${...}` in an ASL file is a key of its machine's
    DefinitionSubstitutions, and every key is used;
  - every Task of a machine names (through a substitution) a function that is
    deployed on the machine's side, and the machine may invoke exactly the
    functions it names (LambdaInvokePolicy);
  - the environment variables set on the functions are exactly the settings
    keys of crates/core/src/settings/ (plus SIDE and RUST_LOG);
  - samconfig.toml's config envs override only parameters their template has,
    and `source`/`target` set the matching Side;
  - security (check_security): no destructive RDS/KMS action on
    `Resource: "*"`, the snapshot topic's policy allows exactly the target
    account, every Lambda permission has SourceArn and SourceAccount.

Templates are read with cfn-lint's YAML loader, which understands the short
intrinsic-function tags (!Ref, !Sub, !If, ...).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cfnlint.decode import decode

SIDES = ("source", "target")
EXTRA_ENV = {"SIDE", "RUST_LOG"}


class LoadError(Exception):
    """A file could not be read or parsed at all."""


def load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise LoadError(f"{path.name}: missing")
    tpl, matches = decode(str(path))
    if matches or not isinstance(tpl, dict):
        msgs = "; ".join(str(m) for m in matches) or "not a mapping"
        raise LoadError(f"{path.name}: cannot be parsed: {msgs}")
    return tpl


def ref_target(value) -> str | None:
    """The logical id a `!GetAtt X.Arn` or `!Ref X` value points at."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::GetAtt":
            parts = arg.split(".") if isinstance(arg, str) else list(arg)
            if len(parts) == 2 and parts[1] == "Arn":
                return parts[0]
        if fn == "Ref" and isinstance(arg, str):
            return arg
    return None


@dataclass
class Function:
    logical_id: str
    sides: set[str]
    resource: dict

    @property
    def binary(self) -> str | None:
        return ((self.resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")


@dataclass
class Machine:
    logical_id: str
    sides: set[str]
    definition: Path
    substitutions: dict
    resource: dict
    substitution_targets: dict[str, str | None] = field(default_factory=dict)


class Model:
    """template.yaml as the checks need it."""

    def __init__(self, root: Path, tpl: dict):
        self.root = root
        self.tpl = tpl
        self.resources: dict = tpl.get("Resources") or {}
        self.side_of_condition = self._side_conditions()
        self.functions: dict[str, Function] = {}
        self.machines: dict[str, Machine] = {}
        for lid, res in self.resources.items():
            kind = res.get("Type")
            sides = self._sides(res)
            if kind == "AWS::Serverless::Function":
                self.functions[lid] = Function(lid, sides, res)
            elif kind == "AWS::Serverless::StateMachine":
                props = res.get("Properties") or {}
                subs = props.get("DefinitionSubstitutions") or {}
                uri = props.get("DefinitionUri")
                m = Machine(lid, sides, root / uri if isinstance(uri, str) else Path("<not a file>"), subs, res)
                m.substitution_targets = {k: ref_target(v) for k, v in subs.items()}
                self.machines[lid] = m

    @classmethod
    def load(cls, root: Path) -> "Model":
        return cls(root, load_yaml(root / "template.yaml"))

    def _side_conditions(self) -> dict[str, str]:
        """Conditions of the form Fn::Equals [Ref Side, "<side>"]."""
        out = {}
        for name, cond in (self.tpl.get("Conditions") or {}).items():
            args = cond.get("Fn::Equals") if isinstance(cond, dict) else None
            if isinstance(args, list) and len(args) == 2:
                a, b = args
                if a == {"Ref": "Side"} and b in SIDES:
                    out[name] = b
                elif b == {"Ref": "Side"} and a in SIDES:
                    out[name] = a
        return out

    def _sides(self, res: dict) -> set[str]:
        cond = res.get("Condition")
        if cond is None:
            return set(SIDES)
        side = self.side_of_condition.get(cond)
        return {side} if side else set(SIDES)


def lambda_crates(workspace: Path, metadata_file: str | None = None) -> dict[str, set[str]]:
    """Workspace crates that are Lambda functions -> their binary names."""
    if metadata_file:
        meta = json.loads(Path(metadata_file).read_text())
    else:
        out = subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
             "--manifest-path", str(workspace / "Cargo.toml")],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise LoadError(f"cargo metadata failed: {out.stderr.strip()}")
        meta = json.loads(out.stdout)
    members = set(meta.get("workspace_members") or [])
    crates: dict[str, set[str]] = {}
    for pkg in meta["packages"]:
        if members and pkg["id"] not in members:
            continue
        bins = {t["name"] for t in pkg["targets"] if "bin" in t["kind"]}
        if bins and any(d["name"] == "lambda_runtime" for d in pkg["dependencies"]):
            crates[pkg["name"]] = bins
    return crates


def settings_keys(workspace: Path) -> set[str]:
    keys: set[str] = set()
    for path in sorted((workspace / "crates" / "core" / "src" / "settings").glob("*.rs")):
        keys |= set(re.findall(r'key\(\s*"([A-Z0-9_]+)"', path.read_text()))
    return keys


def load_functions(workspace: Path, functions_file: str | None = None) -> list[dict]:
    """The function table as `aurora-dr functions --json` writes it."""
    path = Path(functions_file) if functions_file else workspace / "tools" / "functions.json"
    if not path.is_file():
        raise LoadError(f"{path}: missing (make functions writes it)")
    try:
        return json.loads(path.read_text())["functions"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise LoadError(f"{path}: not the output of `aurora-dr functions --json`: {e}")


def tasks(states: dict, path: str = ""):
    """(state path, state) of every Task, nested branches and maps included."""
    for name, state in (states or {}).items():
        if not isinstance(state, dict):
            continue
        here = f"{path}{name}"
        if state.get("Type") == "Task":
            yield here, state
        for i, branch in enumerate(state.get("Branches") or []):
            yield from tasks(branch.get("States"), f"{here}.Branches[{i}].")
        for key in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(key), dict):
                yield from tasks(state[key].get("States"), f"{here}.{key}.")


PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")
ONLY_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")


def task_function_key(state: dict) -> str | None:
    """The substitution key naming the function a Task invokes."""
    resource = state.get("Resource")
    if not isinstance(resource, str):
        return None
    m = ONLY_PLACEHOLDER.match(resource)
    if m:
        return m.group(1)
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        fn = (state.get("Parameters") or state.get("Arguments") or {}).get("FunctionName", "")
        m = ONLY_PLACEHOLDER.match(fn) if isinstance(fn, str) else None
        return m.group(1) if m else None
    return None


def invoke_policy_targets(machine: Machine) -> set[str]:
    out = set()
    for pol in (machine.resource.get("Properties") or {}).get("Policies") or []:
        if isinstance(pol, dict) and "LambdaInvokePolicy" in pol:
            target = ref_target((pol["LambdaInvokePolicy"] or {}).get("FunctionName"))
            if target:
                out.add(target)
    return out


def env_names(res_or_globals: dict) -> set[str]:
    props = res_or_globals.get("Properties", res_or_globals) or {}
    return set(((props.get("Environment") or {}).get("Variables") or {}).keys())


def check_functions(model: Model, crates: dict[str, set[str]]) -> list[str]:
    problems = []
    glob = (model.tpl.get("Globals") or {}).get("Function") or {}
    for key, want in (("Runtime", "provided.al2023"), ("Handler", "bootstrap"), ("CodeUri", ".")):
        if glob.get(key) != want:
            problems.append(f"Globals.Function.{key} must be {want!r} (got {glob.get(key)!r})")
    if not model.functions:
        problems.append("template.yaml has no AWS::Serverless::Function")
    all_bins = {b: c for c, bins in crates.items() for b in bins}
    deployed = set()
    for fn in model.functions.values():
        meta = fn.resource.get("Metadata") or {}
        props = fn.resource.get("Properties") or {}
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{fn.logical_id}: Metadata.BuildMethod must be rust-cargolambda")
        for key in ("Runtime", "Handler", "CodeUri"):
            if key in props:
                problems.append(f"{fn.logical_id}: {key} overrides Globals; every function is built the same way")
        if "Role" in props or not props.get("Policies"):
            problems.append(f"{fn.logical_id}: needs its own least-privilege role (Policies, no shared Role)")
        binary = fn.binary
        if not binary:
            problems.append(f"{fn.logical_id}: Metadata.BuildProperties.Binary is missing")
        elif binary not in all_bins:
            problems.append(
                f"{fn.logical_id}: Binary {binary!r} is not a Lambda crate of the workspace "
                f"(known: {', '.join(sorted(all_bins)) or 'none'})"
            )
        else:
            deployed.add(all_bins[binary])
    for crate in sorted(set(crates) - deployed):
        problems.append(f"crate {crate!r} is a Lambda function but no function in template.yaml builds it")
    return problems


def check_machines(model: Model) -> list[str]:
    problems = []
    used_files = {}
    for m in model.machines.values():
        lid = m.logical_id
        used_files[m.definition.name] = lid
        if not m.definition.is_file():
            problems.append(f"{lid}: DefinitionUri {m.definition} does not exist")
            continue
        text = m.definition.read_text()
        try:
            asl = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{m.definition.name}: invalid JSON: {e}")
            continue
        placeholders = set(PLACEHOLDER.findall(text))
        for key in sorted(placeholders - set(m.substitutions)):
            problems.append(f"{m.definition.name}: ${{{key}}} is not defined in {lid}.DefinitionSubstitutions")
        for key in sorted(set(m.substitutions) - placeholders):
            problems.append(f"{lid}.DefinitionSubstitutions.{key} is not used by {m.definition.name}")
        for key, target in m.substitution_targets.items():
            if target is None:
                problems.append(f"{lid}.DefinitionSubstitutions.{key} must be !GetAtt <Function>.Arn")
            elif target not in model.functions and target not in model.resources:
                problems.append(f"{lid}.DefinitionSubstitutions.{key} points at {target}, which does not exist")
        named = set()
        for path, state in tasks(asl.get("States")):
            key = task_function_key(state)
            if key is None:
                problems.append(
                    f"{m.definition.name}: Task {path} must name a function as ${{<Step>FunctionArn}} "
                    f"(got {state.get('Resource')!r})"
                )
                continue
            target = m.substitution_targets.get(key)
            fn = model.functions.get(target) if target else None
            if fn is None:
                if key in m.substitutions:
                    problems.append(f"{m.definition.name}: Task {path} uses ${{{key}}}, which is not a function")
                continue  # undefined placeholder: reported above
            named.add(fn.logical_id)
            if not m.sides <= fn.sides:
                problems.append(
                    f"{m.definition.name}: Task {path} invokes {fn.logical_id}, which is not deployed on the "
                    f"{'/'.join(sorted(m.sides - fn.sides))} side"
                )
        allowed = invoke_policy_targets(m)
        for fn_id in sorted(named - allowed):
            problems.append(f"{lid}: no LambdaInvokePolicy for {fn_id}, which its definition invokes")
        for fn_id in sorted(allowed - named):
            problems.append(f"{lid}: LambdaInvokePolicy for {fn_id}, which its definition never invokes")
    for f in sorted((model.root / "statemachines").glob("*.asl.json")):
        if f.name not in used_files:
            problems.append(f"statemachines/{f.name} is not the DefinitionUri of any state machine")
    return problems


def policy_actions(resource: dict) -> set[str]:
    """Every IAM action a function's role may hold (both branches of Fn::If)."""
    out: set[str] = set()
    for st in statements((resource.get("Properties") or {}).get("Policies")):
        if st.get("Effect") == "Allow":
            out |= {a for a in as_list(st.get("Action")) if isinstance(a, str)}
    return out


def check_table(model: Model, functions: list[dict]) -> list[str]:
    """template.yaml and the state machines against the one function table."""
    problems = []
    by_id = {f["logicalId"]: f for f in functions}
    for lid in sorted(set(model.functions) - set(by_id)):
        problems.append(f"{lid}: no entry in aurora_dr_core::steps::FUNCTIONS (tools/functions.json)")
    for lid, entry in sorted(by_id.items()):
        fn = model.functions.get(lid)
        if fn is None:
            problems.append(f"FUNCTIONS entry {entry['name']}: template.yaml has no {lid}")
            continue
        if fn.binary != entry["name"]:
            problems.append(f"{lid}: Binary {fn.binary!r}, but FUNCTIONS builds it from crate {entry['name']!r}")
        if fn.sides != set(entry["sides"]):
            problems.append(
                f"{lid}: deployed on {'/'.join(sorted(fn.sides))}, but FUNCTIONS says {'/'.join(sorted(entry['sides']))}"
            )
        held, needed = policy_actions(fn.resource), set(entry["actions"])
        for action in sorted(held - needed):
            problems.append(f"{lid}: role holds {action}, which {entry['name']}'s states do not call (FUNCTIONS)")
        for action in sorted(needed - held):
            problems.append(f"{lid}: role lacks {action}, which {entry['name']} calls (FUNCTIONS)")
    for m in model.machines.values():
        if not m.definition.is_file():
            continue
        try:
            asl = json.loads(m.definition.read_text())
        except json.JSONDecodeError:
            continue  # reported by check_machines
        for side in sorted(m.sides):
            entries = [f for f in functions if side in f["sides"] and f.get("substitution")
                       and any(s["side"] == side for s in f["states"])]
            want = {f["substitution"]: f["logicalId"] for f in entries}
            got = m.substitution_targets
            for key in sorted(set(want) - set(got)):
                problems.append(f"{m.logical_id}.DefinitionSubstitutions lacks {key} (FUNCTIONS: {want[key]})")
            for key in sorted(set(got) - set(want)):
                problems.append(f"{m.logical_id}.DefinitionSubstitutions.{key} is not a {side} function of FUNCTIONS")
            for key in sorted(set(got) & set(want)):
                if got[key] != want[key]:
                    problems.append(f"{m.logical_id}.DefinitionSubstitutions.{key} points at {got[key]}, FUNCTIONS says {want[key]}")
            for path, state in tasks(asl.get("States")):
                name = path.rsplit(".", 1)[-1]
                serving = [f for f in functions if {"side": side, "state": name} in f["states"]]
                if not serving:
                    problems.append(f"{m.definition.name}: Task {path} has no entry in FUNCTIONS")
                    continue
                key = task_function_key(state)
                if key != serving[0].get("substitution"):
                    problems.append(
                        f"{m.definition.name}: Task {path} invokes ${{{key}}}, but FUNCTIONS says "
                        f"{serving[0]['name']} (${{{serving[0].get('substitution')}}}) serves it"
                    )
            names = {p.rsplit(".", 1)[-1] for p, _ in tasks(asl.get("States"))}
            for f in functions:
                for s_ in f["states"]:
                    if s_["side"] == side and s_["state"] not in names:
                        problems.append(f"FUNCTIONS: {f['name']} serves {s_['state']}, which {m.definition.name} has no Task of")
    return problems


def check_environment(model: Model, keys: set[str]) -> list[str]:
    glob = (model.tpl.get("Globals") or {}).get("Function") or {}
    names = env_names(glob)
    for fn in model.functions.values():
        names |= env_names(fn.resource)
    problems = [f"environment variable {n} is not a settings key of crates/core/src/settings/"
                for n in sorted(names - keys - EXTRA_ENV)]
    problems += [f"settings key {n} (crates/core/src/settings/) is set on no function"
                 for n in sorted(keys - names)]
    return problems


def overrides(value) -> dict[str, str]:
    items = value if isinstance(value, list) else str(value or "").split()
    out = {}
    for item in items:
        k, _, v = str(item).partition("=")
        out[k.strip()] = v.strip().strip('"')
    return out


def check_samconfig(root: Path, model: Model) -> list[str]:
    path = root / "samconfig.toml"
    if not path.is_file():
        return ["samconfig.toml: missing"]
    try:
        cfg = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        return [f"samconfig.toml: invalid TOML: {e}"]
    problems = []
    for env in ("source", "target"):
        deploy = ((cfg.get(env) or {}).get("deploy") or {}).get("parameters")
        if not deploy:
            problems.append(f"samconfig.toml: config env {env!r} has no [{env}.deploy.parameters]")
            continue
        ov = overrides(deploy.get("parameter_overrides"))
        if ov.get("Side") != env:
            problems.append(f"samconfig.toml: [{env}] must override Side={env} (got {ov.get('Side')!r})")
        if "CAPABILITY_IAM" not in str(deploy.get("capabilities", "")):
            problems.append(f"samconfig.toml: [{env}] needs capabilities CAPABILITY_IAM (one role per function)")
    for env, sections in cfg.items():
        deploy = (sections.get("deploy") or {}).get("parameters") if isinstance(sections, dict) else None
        if not deploy or "parameter_overrides" not in deploy:
            continue
        tfile = deploy.get("template_file", "template.yaml")
        try:
            params = (model.tpl if tfile == "template.yaml" else load_yaml(root / tfile)).get("Parameters") or {}
        except LoadError as e:
            problems.append(f"samconfig.toml: [{env}] template_file: {e}")
            continue
        for key in sorted(set(overrides(deploy["parameter_overrides"])) - set(params)):
            problems.append(f"samconfig.toml: [{env}] overrides {key}, which {tfile} does not declare")
    return problems


# Actions that destroy or take over data or keys: never on `Resource: "*"`.
DESTRUCTIVE = re.compile(
    r"^(rds:(\*|Delete.*|Modify.*|Restore.*|Stop.*|Reboot.*|RemoveFromGlobalCluster|FailoverDBCluster)"
    r"|kms:(\*|ScheduleKeyDeletion|DisableKey|PutKeyPolicy|CreateGrant|Decrypt|ReEncrypt.*)|\*)$",
    re.IGNORECASE,
)


def statements(value):
    """Every IAM statement (a dict with Effect) inside a policy value,
    through lists, PolicyDocument/Statement and both branches of Fn::If."""
    if isinstance(value, list):
        for v in value:
            yield from statements(v)
    elif isinstance(value, dict):
        if "Effect" in value:
            yield value
        elif "Fn::If" in value and isinstance(value["Fn::If"], list):
            for branch in value["Fn::If"][1:]:
                yield from statements(branch)
        else:
            for key in ("PolicyDocument", "Statement"):
                if key in value:
                    yield from statements(value[key])


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def check_security(model: Model) -> list[str]:
    """Least privilege and private sharing, as the security checks require:
    no destructive RDS/KMS action on `Resource: "*"` in any IAM policy of the
    template; the snapshot topic's policy allows exactly the target account;
    every Lambda permission is scoped by SourceArn and SourceAccount."""
    problems = []
    for lid, res in model.resources.items():
        props = res.get("Properties") or {}
        kind = res.get("Type")
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            policies = props.get("Policies")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
            policies = [props.get("PolicyDocument"), *[p.get("PolicyDocument") for p in props.get("Policies") or []]]
        else:
            policies = None
        for st in statements(policies):
            if st.get("Effect") != "Allow" or "*" not in as_list(st.get("Resource")):
                continue
            bad = [a for a in as_list(st.get("Action")) if isinstance(a, str) and DESTRUCTIVE.match(a)]
            if bad:
                problems.append(f"{lid}: {', '.join(bad)} on Resource \"*\" (statement {st.get('Sid', '?')})")
        if kind == "AWS::SNS::TopicPolicy":
            for st in statements(props.get("PolicyDocument")):
                if st.get("Effect") != "Allow":
                    continue
                principals = st.get("Principal")
                aws = principals.get("AWS") if isinstance(principals, dict) else principals
                for p in as_list(aws):
                    text = json.dumps(p)
                    if "DestinationAccountNumber" not in text or "*" in text.replace(":function:*", ""):
                        problems.append(f"{lid}: statement {st.get('Sid', '?')} allows {text}, not exactly the target account")
        if kind == "AWS::Lambda::Permission":
            for key in ("SourceArn", "SourceAccount"):
                if not props.get(key):
                    problems.append(f"{lid}: Lambda permission without {key}")
    topic_policies = [r for r in model.resources.values() if r.get("Type") == "AWS::SNS::TopicPolicy"]
    if not topic_policies:
        problems.append("template.yaml has no SNS topic policy granting the target account")
    if not any(r.get("Type") == "AWS::Lambda::Permission" for r in model.resources.values()):
        problems.append("template.yaml has no Lambda permission for the SNS trigger")
    return problems


def check(root: Path, workspace: Path, cargo_metadata: str | None = None,
          functions_file: str | None = None) -> list[str]:
    try:
        model = Model.load(root)
        crates = lambda_crates(workspace, cargo_metadata)
        functions = load_functions(workspace, functions_file)
    except LoadError as e:
        return [str(e)]
    return (
        check_functions(model, crates)
        + check_table(model, functions)
        + check_machines(model)
        + check_environment(model, settings_keys(workspace))
        + check_samconfig(root, model)
        + check_security(model)
    )
