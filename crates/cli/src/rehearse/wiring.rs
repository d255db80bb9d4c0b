//! The drill wired from a deployment: each Task runs its deployed
//! function's handler with that function's environment and with
//! credentials of its deployed role (`sts:AssumeRole`), the engines run the
//! deployed definitions, Step Functions' invocation of each function is
//! judged with the machine's role, the target machine's API judges its
//! callers, and SNS reaches InvokeStepFunction only through the deployed
//! subscription and Lambda permission, and RDS events reach CompleteWait only
//! through the deployed rule and permission (the emulator delivers, see
//! `emulator/iam.py`, `invokers`).

use std::sync::Arc;

use aurora_dr_asl::{Clock, Definition, Engine, TaskError};
use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::context::{SideSettings, StepContext};
use aurora_dr_core::ids::Region;
use aurora_dr_core::settings::Origin;
use aurora_dr_core::steps::{self, Side};
use aurora_dr_emulator::Control;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::deployment::{Deployment, Function};
use crate::drill::events::EventReceiver;
use crate::drill::{InvokeGuard, TaskBinding, Wiring, bind_machine, receiver::Receiver, setup};

/// The base credentials every role is assumed with (the emulator accepts any).
const BASE_KEY: &str = "aurora-dr-rehearsal";

/// A deployed function's context: its environment (only the settings'
/// variables, as the Lambda reads them), its region, and its role.
pub async fn function_context(
    function: &Function,
    endpoint: &str,
    sfn_endpoint: Option<&str>,
) -> Result<StepContext, String> {
    let region: Region = function
        .region()
        .parse()
        .map_err(|e| format!("{}: region of {}: {e}", function.logical_id, function.arn))?;
    let settings = SideSettings::from_origin(&Origin::env_from(function.env()))
        .map_err(|e| format!("{} ({}): its environment: {e}", function.logical_id, function.side))?;
    let options = ClientOptions::in_region(region)
        .with_endpoint(Some(endpoint.to_owned()))
        .with_static_credentials(BASE_KEY, BASE_KEY)
        .with_sfn_endpoint(sfn_endpoint.map(str::to_owned))
        .as_role(&function.role);
    // Endpoint names resolve as the emulator routes them (no real DNS knows them).
    Ok(StepContext::new(AwsContext::load(&options).await, settings)
        .with_resolver(Arc::new(crate::drill::EmulatedDns::at(endpoint))))
}

fn side_of(name: &str) -> Side {
    if name == "source" { Side::Source } else { Side::Target }
}

/// Step Functions invoking a Task's function with the machine's role
/// ("IAM policies for Lambda tasks",
/// https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html),
/// judged at every invocation. A denial fails the task as the service
/// reports Lambda's refusal (`Lambda.AWSLambdaException`, the cause naming
/// AccessDeniedException; the Step Functions docs name the error class but
/// not this cause's text).
fn invoke_guard(control: Control, machine: String, role: String, function_arn: String) -> InvokeGuard {
    Arc::new(move || {
        let (control, machine, role, arn) =
            (control.clone(), machine.clone(), role.clone(), function_arn.clone());
        Box::pin(async move {
            let answer = control
                .iam_check(&json!({
                    "function": machine, "principal": role, "action": "lambda:InvokeFunction",
                    "resource": arn, "policy": "lambda-function", "operation": "(service) states:InvokeLambda",
                }))
                .await
                .map_err(|e| TaskError::new("States.Runtime", e.to_string()))?;
            if answer["decision"] == "Allowed" {
                Ok(())
            } else {
                Err(TaskError::new(
                    "Lambda.AWSLambdaException",
                    format!(
                        "AccessDeniedException: {role} is not authorized to perform: lambda:InvokeFunction on \
                         resource: {arn} because {}",
                        answer["reason"].as_str().unwrap_or("it is denied")
                    ),
                ))
            }
        })
    })
}

/// Both sides wired from the deployment. `facts_aws` reads the final facts
/// (an unjudged context of the target account).
pub async fn deployed_wiring(
    dep: &Deployment,
    endpoint: &str,
    control: &Control,
    clock: Clock,
    target_engine: Engine,
    sfn_url: &str,
    facts_aws: AwsContext,
) -> Result<Wiring, String> {
    let mut engines = Vec::new();
    for side in ["source", "target"] {
        let stack = dep.stack(side)?;
        let (arn, machine) = dep.machine(side)?;
        let definition = machine
            .definition
            .as_ref()
            .ok_or_else(|| format!("{}: deployed without a definition", machine.logical_id))?;
        let definition = Definition::parse(&definition.to_string())
            .map_err(|e| format!("{} as deployed: {e}", machine.logical_id))?;
        let mut bindings = Vec::new();
        for function in dep.functions.values().filter(|f| f.side == side) {
            let Some(entry) = steps::FUNCTIONS.iter().find(|f| f.logical_id == function.logical_id) else {
                return Err(format!("{side}/{}: no entry of the function table", function.logical_id));
            };
            if entry.substitution.is_none() || !entry.on(side_of(side)) {
                continue; // InvokeStepFunction, CompleteWait: SNS and EventBridge invoke them, no Task does
            }
            // The target's FetchStatus completes its callback waits through
            // the target machine's API (SendTaskSuccess/SendTaskFailure).
            let sfn = (side == "target").then_some(sfn_url);
            let ctx = function_context(function, endpoint, sfn).await?;
            bindings.push(TaskBinding {
                function_name: function.name().to_owned(),
                handler: entry.handler,
                ctx: Arc::new(ctx),
                before: Some(invoke_guard(
                    control.clone(),
                    machine.logical_id.clone(),
                    machine.role.clone(),
                    function.arn.clone(),
                )),
            });
        }
        let name = arn.rsplit(':').next().unwrap_or(arn).to_owned();
        let spec = bind_machine(&name, arn.to_owned(), definition, bindings);
        let engine = if side == "source" {
            Engine::with_account(clock, stack.region.clone(), stack.account.clone())
        } else {
            target_engine.clone()
        };
        engine.register(spec).map_err(|e| format!("{}: {e}", machine.logical_id))?;
        engines.push((engine, arn.to_owned()));
    }
    let invoke = dep.function("target", "InvokeStepFunctionFunction")?;
    let invoke_ctx = Arc::new(function_context(invoke, endpoint, Some(sfn_url)).await?);
    let receiver = Receiver::start(Arc::clone(&invoke_ctx)).await.map_err(|e| e.to_string())?;
    // EventBridge reaches CompleteWait only through the deployed rule and
    // Lambda permission: the emulator POSTs a matched event to the URL
    // registered for the rule's target, the deployed function's ARN.
    let complete = dep.function("target", "CompleteWaitFunction")?;
    let complete_ctx = Arc::new(function_context(complete, endpoint, Some(sfn_url)).await?);
    let events = EventReceiver::start(complete_ctx).await.map_err(|e| e.to_string())?;
    let endpoints = std::collections::BTreeMap::from([(complete.arn.clone(), events.url.clone())]);
    control.set_lambda_endpoints(&endpoints).await.map_err(|e| e.to_string())?;
    let target_ctx = Arc::new(StepContext::new(facts_aws, invoke_ctx.settings.clone()));
    let (target_engine, _) = engines.pop().ok_or("no target machine")?;
    let (source_engine, source_machine_arn) = engines.pop().ok_or("no source machine")?;
    let source = dep.stack("source")?;
    let kms_key = source.parameter("KMSKey").unwrap_or_default();
    // The DR cluster's key: the stack's own (its output) or the parameter given.
    let target_kms_key = dep.stack("target")?.outputs.get("TargetKMSKeyArn").cloned();
    Ok(Wiring {
        source_engine,
        source_machine_arn,
        target_engine,
        receiver,
        events,
        target_ctx,
        kms_key,
        target_kms_key,
        durations: None,
    })
}

/// The unjudged context of an account (set-up, final facts).
pub async fn setup_context(endpoint: &str, account: &str, region: &str) -> Result<AwsContext, String> {
    let account = account.parse().map_err(|e| format!("account {account}: {e}"))?;
    let region = region.parse().map_err(|e| format!("region {region}: {e}"))?;
    Ok(setup::account_context(endpoint, &account, &region, None).await)
}

// ---- the target machine's API, judged ----------------------------------------------

/// The local Step Functions API of the target account with every call
/// judged under IAM by the emulator (`POST /_aurora_dr/iam/judge`) before
/// the engine sees it; a denied call gets the service's
/// `AccessDeniedException` (HTTP 400, "Common Errors" of the Step Functions
/// API reference).
pub fn judged_router(engine: Engine, control: Control) -> axum::Router {
    aurora_dr_asl::server::router(engine).layer(axum::middleware::from_fn_with_state(control, judge))
}

async fn judge(State(control): State<Control>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    let call = judge_request(&parts.headers, &bytes);
    match control.iam_judge(&call).await {
        Ok(answer) if answer["allowed"] == true => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        Ok(answer) => {
            let status = answer["status"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
            let body = json!({"__type": answer["code"], "message": answer["message"]});
            (
                status.unwrap_or(StatusCode::BAD_REQUEST),
                [(header::CONTENT_TYPE, aurora_dr_asl::server::CONTENT_TYPE)],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("IAM judge: {e}")).into_response(),
    }
}

/// The emulator's view of one Step Functions request: its credentials,
/// region (the credential scope), operation and scalar parameters.
fn judge_request(headers: &HeaderMap, body: &[u8]) -> Value {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let authorization = text("authorization");
    let region = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or_default()
        .to_owned();
    let operation = text("x-amz-target").rsplit('.').next().unwrap_or_default().to_owned();
    let params: serde_json::Map<String, Value> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
        .collect();
    json!({"authorization": authorization, "service": "states", "operation": operation,
           "params": params, "region": region})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_functions_request_is_described_by_its_signature_and_target() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=FSIAEXAMPLE/20261203/us-west-1/states/aws4_request, SignedHeaders=host"
                .parse()
                .expect("header"),
        );
        headers.insert("x-amz-target", "AWSStepFunctions.StartExecution".parse().expect("header"));
        let body = br#"{"stateMachineArn": "arn:aws:states:us-west-1:222222222222:stateMachine:T", "name": "n", "input": "{}", "nested": {"x": 1}}"#;
        let call = judge_request(&headers, body);
        assert_eq!(call["operation"], "StartExecution");
        assert_eq!(call["region"], "us-west-1");
        assert_eq!(call["service"], "states");
        assert_eq!(call["params"]["stateMachineArn"], "arn:aws:states:us-west-1:222222222222:stateMachine:T");
        assert!(call["params"].get("nested").is_none());
    }
}
