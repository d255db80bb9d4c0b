//! The deployment's read-back (`tools/rehearse/deploy.py --out`): what the
//! three stacks created, as the services' APIs report it. The rehearsal
//! wires the drill from it; the judge (`tools/rehearse/rehearse.py`) reads
//! the same file for the least-privilege report and the self-test.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole read-back.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `kms`, `source`, `target`.
    pub stacks: BTreeMap<String, Stack>,
    /// By `<side>/<LogicalId>`.
    pub functions: BTreeMap<String, Function>,
    /// By role ARN.
    pub roles: BTreeMap<String, Role>,
    /// By state machine ARN.
    pub state_machines: BTreeMap<String, StateMachine>,
    /// By topic ARN.
    #[serde(default)]
    pub topics: BTreeMap<String, Value>,
    /// By key ARN: `side` (absent for the kms stack's key), `logicalId`, `policy`.
    #[serde(default)]
    pub keys: BTreeMap<String, Value>,
}

impl Deployment {
    /// The ARN of the KMS key `logical_id` of a side's stack.
    pub fn key(&self, side: &str, logical_id: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, k)| k["side"] == side && k["logicalId"] == logical_id)
            .map(|(arn, _)| arn.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    pub name: String,
    pub account: String,
    pub region: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

impl Stack {
    /// A parameter's value as CloudFormation passes it (text; numbers and
    /// booleans as written).
    pub fn parameter(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// One deployed Lambda function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    pub side: String,
    pub logical_id: String,
    pub arn: String,
    /// Its execution role's ARN.
    pub role: String,
    /// As Lambda reports it (the emulator keeps numbers the template gave).
    pub environment: BTreeMap<String, Value>,
    /// The log group of its LoggingConfig; None: Lambda's default
    /// `/aws/lambda/<name>`.
    #[serde(default)]
    pub log_group: Option<String>,
}

impl Function {
    /// The environment as the function's process sees it: text.
    pub fn env(&self) -> BTreeMap<String, String> {
        self.environment
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect()
    }

    /// The function's name (the last part of its ARN), as Task resources name it.
    pub fn name(&self) -> &str {
        self.arn.rsplit(':').next().unwrap_or(&self.arn)
    }

    /// The region the function runs in.
    pub fn region(&self) -> &str {
        self.arn.split(':').nth(3).unwrap_or_default()
    }

    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub side: String,
    pub logical_id: String,
}

/// One deployed state machine: its role and its definition as deployed
/// (substitutions applied).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachine {
    pub side: String,
    pub logical_id: String,
    pub role: String,
    pub definition: Option<Value>,
}

impl Deployment {
    pub fn stack(&self, env: &str) -> Result<&Stack, String> {
        self.stacks.get(env).ok_or_else(|| format!("the deployment has no {env} stack"))
    }

    pub fn function(&self, side: &str, logical_id: &str) -> Result<&Function, String> {
        self.functions
            .get(&format!("{side}/{logical_id}"))
            .ok_or_else(|| format!("the {side} stack deployed no {logical_id}"))
    }

    /// The state machine of a side and its ARN.
    pub fn machine(&self, side: &str) -> Result<(&str, &StateMachine), String> {
        self.state_machines
            .iter()
            .find(|(_, m)| m.side == side)
            .map(|(arn, m)| (arn.as_str(), m))
            .ok_or_else(|| format!("the {side} stack deployed no state machine"))
    }

    /// The deployed role with this logical id on `side`.
    pub fn role(&self, side: &str, logical_id: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|(_, r)| r.side == side && r.logical_id == logical_id)
            .map(|(arn, _)| arn.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_back_parses_and_names_functions_by_their_arn() {
        let doc = serde_json::json!({
            "stacks": {"target": {"name": "aurora-dr-target", "account": "222222222222", "region": "us-west-1",
                                  "parameters": {"Side": "target"}, "outputs": {}}},
            "functions": {"target/SwapFunction": {
                "side": "target", "logicalId": "SwapFunction", "name": "aurora-dr-target-SwapFunction-X",
                "arn": "arn:aws:lambda:us-west-1:222222222222:function:aurora-dr-target-SwapFunction-X",
                "role": "arn:aws:iam::222222222222:role/aurora-dr-target-SwapFunctionRole-Y",
                "environment": {"SIDE": "target"}, "resourcePolicy": null}},
            "roles": {"arn:aws:iam::222222222222:role/r": {"side": "target", "logicalId": "SwapFunctionRole",
                      "name": "r", "trust": {}, "policies": []}},
            "keys": {}, "topics": {},
            "stateMachines": {"arn:aws:states:us-west-1:222222222222:stateMachine:T": {
                "side": "target", "logicalId": "TargetStateMachine", "role": "arn:aws:iam::222222222222:role/m",
                "definition": {"StartAt": "A", "States": {}}}},
        });
        let dep: Deployment = serde_json::from_value(doc).expect("read-back");
        let f = dep.function("target", "SwapFunction").expect("swap");
        assert_eq!(
            (f.name(), f.region(), f.account()),
            ("aurora-dr-target-SwapFunction-X", "us-west-1", "222222222222")
        );
        assert_eq!(
            dep.machine("target").expect("machine").0,
            "arn:aws:states:us-west-1:222222222222:stateMachine:T"
        );
        assert_eq!(dep.role("target", "SwapFunctionRole"), Some("arn:aws:iam::222222222222:role/r"));
        assert!(dep.function("source", "SwapFunction").is_err());
    }
}
