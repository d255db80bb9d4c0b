//! The one table (`aurora_dr_core::steps::FUNCTIONS`) against what it maps:
//! every Task state of `statemachines/*.asl.json` has an entry and names its
//! entry's `${...FunctionArn}`, no entry names a state the machines lack,
//! every function's crate runs the entry's handler, and the error names the
//! machines retry are exactly the retryable ones. (template.yaml's functions,
//! substitutions and roles are checked against the same table by
//! `tools/infra_consistency.py`, through `tools/functions.json`.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use aurora_dr_core::error::names::RETRYABLE;
use aurora_dr_core::steps::{FUNCTIONS, Side, function_for};
use aurora_dr_tests::{state_machine, task_states};
use serde_json::Value;

const SIDES: [Side; 2] = [Side::Source, Side::Target];

#[test]
fn every_task_state_has_an_entry_and_names_its_function() {
    let mut problems = Vec::new();
    for side in SIDES {
        for task in task_states(side) {
            match function_for(side, &task.name) {
                None => problems.push(format!(
                    "{side}.asl.json: Task {} has no entry in aurora_dr_core::steps::FUNCTIONS",
                    task.name
                )),
                Some(f) if task.substitution() != f.substitution => problems.push(format!(
                    "{side}.asl.json: Task {} invokes ${{{}}}, but FUNCTIONS says {} (${{{}}}) serves it",
                    task.name,
                    task.substitution().unwrap_or("?"),
                    f.name,
                    f.substitution.unwrap_or("none")
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_entry_names_states_the_machines_have() {
    let mut problems = Vec::new();
    for f in FUNCTIONS {
        for (side, state) in f.states {
            if !task_states(*side).iter().any(|t| t.name == *state) {
                problems.push(format!(
                    "FUNCTIONS: {} serves {state} of the {side} machine, which has no such Task",
                    f.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each Lambda crate's `main` serves its entry's handler, and every crate
/// of the workspace with a Lambda `main` has an entry.
#[test]
fn every_crate_runs_its_entrys_handler() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    for f in FUNCTIONS {
        let main = root.join("crates").join(f.name).join("src/main.rs");
        match std::fs::read_to_string(&main) {
            Ok(text) if text.contains(&format!("aurora_dr_core::steps::{}::handle", f.module)) => {}
            Ok(_) => problems.push(format!("{}: does not serve steps::{}::handle", main.display(), f.module)),
            Err(e) => problems.push(format!("{}: {e}", main.display())),
        }
    }
    let lambda_crates: BTreeSet<String> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let main = std::fs::read_to_string(dir.join("src/main.rs")).ok()?;
            main.contains("lambda::serve").then(|| dir.file_name()?.to_str().map(str::to_owned))?
        })
        .collect();
    let listed: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
    for name in lambda_crates.difference(&listed) {
        problems.push(format!("crates/{name} is a Lambda function without an entry in FUNCTIONS"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What the machines retry is what the error enum calls retryable (besides
/// the runtime's own `States.*` and `Lambda.*` names).
#[test]
fn the_machines_retry_exactly_the_retryable_errors() {
    fn retried(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for retrier in map.get("Retry").and_then(Value::as_array).into_iter().flatten() {
                    for name in
                        retrier["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str)
                    {
                        out.insert(name.to_owned());
                    }
                }
                map.values().for_each(|v| retried(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| retried(v, out)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    for side in SIDES {
        retried(&state_machine(side), &mut names);
    }
    names.retain(|n| !n.starts_with("States.") && !n.starts_with("Lambda."));
    let retryable: BTreeSet<String> = RETRYABLE.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(
        names, retryable,
        "Retry ErrorEquals of the machines vs aurora_dr_core::error::names::RETRYABLE"
    );
}
