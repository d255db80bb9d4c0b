//! The Step Functions API server, driven by the official aws-sdk-sfn client.

use aurora_dr_asl::{Clock, Definition, Engine, StateMachineSpec, TaskRegistry};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use serde_json::{Value, json};
use tokio::sync::oneshot;

const TARGET_ARN: &str = "arn:aws:states:us-west-1:222222222222:stateMachine:aurora-dr-target";

struct Server {
    client: Client,
    engine: Engine,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }

    /// StartExecution of the target machine named `name` with `input`.
    async fn start_named(
        &self,
        name: &str,
        input: &str,
    ) -> Result<
        aws_sdk_sfn::operation::start_execution::StartExecutionOutput,
        aws_sdk_sfn::error::SdkError<aws_sdk_sfn::operation::start_execution::StartExecutionError>,
    > {
        self.client.start_execution().state_machine_arn(TARGET_ARN).name(name).input(input).send().await
    }
}

async fn start() -> Server {
    let engine = Engine::with_account(Clock::scaled(0.001).unwrap(), "us-west-1", "222222222222");
    let d = Definition::parse(
        r#"{"StartAt": "Restore", "States": {
            "Restore": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "aurora-dr-restore", "Payload.$": "$"},
                        "OutputPath": "$.Payload", "Next": "Wait"},
            "Wait": {"Type": "Wait", "SecondsPath": "$.wait", "End": true}}}"#,
    )
    .unwrap();
    let tasks = TaskRegistry::new().with("aurora-dr-restore", |mut p: Value| async move {
        p["restored"] = json!(true);
        Ok(p)
    });
    engine.register(StateMachineSpec::new("aurora-dr-target", d).arn(TARGET_ARN).tasks(tasks)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(aurora_dr_asl::serve_with_shutdown(listener, engine.clone(), async {
        let _ = rx.await;
    }));
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-west-1"))
        .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
        .endpoint_url(url)
        .build();
    Server { client: Client::from_conf(config), engine, shutdown: Some(tx), task }
}

#[tokio::test]
async fn start_describe_history_list_with_the_sdk() {
    let s = start().await;
    let started = s.start_named("snap-2024", r#"{"snapshot": "s1", "wait": 1}"#).await.unwrap();
    let arn = started.execution_arn().to_string();
    assert_eq!(arn, "arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:snap-2024");
    // Same name and input while running: the same execution.
    let again = s.start_named("snap-2024", r#"{"snapshot": "s1", "wait": 1}"#).await.unwrap();
    assert_eq!(again.execution_arn(), arn);
    let different = s.start_named("snap-2024", r#"{"snapshot": "other"}"#).await.unwrap_err();
    assert!(different.as_service_error().unwrap().is_execution_already_exists(), "{different:?}");

    s.engine.execution(&arn).unwrap().wait().await;
    let d = s.client.describe_execution().execution_arn(&arn).send().await.unwrap();
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    assert_eq!(d.name(), Some("snap-2024"));
    assert_eq!(d.state_machine_arn(), TARGET_ARN);
    let output: Value = serde_json::from_str(d.output().unwrap()).unwrap();
    assert_eq!(output, json!({"snapshot": "s1", "wait": 1, "restored": true}));
    assert!(d.stop_date().is_some());
    assert!(d.start_date().secs() > 1_600_000_000);

    let h = s.client.get_execution_history().execution_arn(&arn).send().await.unwrap();
    let types: Vec<HistoryEventType> = h.events().iter().map(|e| e.r#type().clone()).collect();
    assert_eq!(
        types,
        vec![
            HistoryEventType::ExecutionStarted,
            HistoryEventType::TaskStateEntered,
            HistoryEventType::TaskScheduled,
            HistoryEventType::TaskStarted,
            HistoryEventType::TaskSucceeded,
            HistoryEventType::TaskStateExited,
            HistoryEventType::WaitStateEntered,
            HistoryEventType::WaitStateExited,
            HistoryEventType::ExecutionSucceeded,
        ]
    );
    let scheduled = h.events()[2].task_scheduled_event_details().unwrap();
    assert_eq!(
        (scheduled.resource_type(), scheduled.resource(), scheduled.region()),
        ("lambda", "invoke", "us-west-1")
    );
    let entered = h.events()[1].state_entered_event_details().unwrap();
    assert_eq!(entered.name(), "Restore");
    assert_eq!(h.events()[1].previous_event_id(), 1);

    let page = s
        .client
        .get_execution_history()
        .execution_arn(&arn)
        .max_results(4)
        .reverse_order(true)
        .send()
        .await
        .unwrap();
    assert_eq!(page.events().len(), 4);
    assert_eq!(page.events()[0].r#type(), &HistoryEventType::ExecutionSucceeded);
    assert!(page.next_token().is_some());

    let list = s.client.list_executions().state_machine_arn(TARGET_ARN).send().await.unwrap();
    assert_eq!(list.executions().len(), 1);
    assert_eq!(list.executions()[0].status(), &ExecutionStatus::Succeeded);
    s.stop().await;
}

#[tokio::test]
async fn stop_and_errors_with_the_sdk() {
    let s = start().await;
    let arn = s
        .client
        .start_execution()
        .state_machine_arn(TARGET_ARN)
        .input(r#"{"wait": 100000}"#)
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    s.client
        .stop_execution()
        .execution_arn(&arn)
        .error("Manual")
        .cause("stopped by test")
        .send()
        .await
        .unwrap();
    let d = s.client.describe_execution().execution_arn(&arn).send().await.unwrap();
    assert_eq!(d.status(), &ExecutionStatus::Aborted);
    assert_eq!(d.error(), Some("Manual"));

    let e = s
        .client
        .start_execution()
        .state_machine_arn("arn:aws:states:us-west-1:222222222222:stateMachine:nope")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_state_machine_does_not_exist(), "{e:?}");
    let e =
        s.client.start_execution().state_machine_arn(TARGET_ARN).name("bad name").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_name(), "{e:?}");
    let e = s
        .client
        .describe_execution()
        .execution_arn("arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:missing")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_execution_does_not_exist(), "{e:?}");
    let e =
        s.client.start_execution().state_machine_arn(TARGET_ARN).input("{not json").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_invalid_execution_input(), "{e:?}");
    s.stop().await;
}

#[tokio::test]
async fn create_state_machine_and_mock_test_case_via_arn_suffix() {
    let s = start().await;
    let mocks = aurora_dr_asl::MockConfig::parse(
        r#"{"StateMachines": {"created": {"TestCases": {"Happy": {"T": "Ok"}}}},
            "MockedResponses": {"Ok": {"0": {"Return": {"mocked": true}}}}}"#,
    )
    .unwrap();
    s.engine.set_api_defaults(TaskRegistry::new(), Some(std::sync::Arc::new(mocks)));
    let def = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-west-1:222222222222:function:f", "End": true}}}"#;
    let created = s
        .client
        .create_state_machine()
        .name("created")
        .definition(def)
        .role_arn("arn:aws:iam::222222222222:role/sfn")
        .send()
        .await
        .unwrap();
    let sm_arn = created.state_machine_arn().to_string();
    assert_eq!(sm_arn, "arn:aws:states:us-west-1:222222222222:stateMachine:created");
    let bad = s
        .client
        .create_state_machine()
        .name("broken")
        .definition(r#"{"StartAt": "X", "States": {}}"#)
        .role_arn("arn:aws:iam::222222222222:role/sfn")
        .send()
        .await
        .unwrap_err();
    assert!(bad.as_service_error().unwrap().is_invalid_definition(), "{bad:?}");

    let exec_arn = s
        .client
        .start_execution()
        .state_machine_arn(format!("{sm_arn}#Happy"))
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let out = s.engine.execution(&exec_arn).unwrap().wait().await;
    assert_eq!(out.output, Some(json!({"mocked": true})));
    let described = s.client.describe_state_machine().state_machine_arn(&sm_arn).send().await.unwrap();
    assert_eq!(described.name(), "created");
    let listed = s.client.list_state_machines().send().await.unwrap();
    assert_eq!(listed.state_machines().len(), 2);
    s.stop().await;
}

// A Distributed Map's children and Map Run through the API: DescribeExecution
// (with mapRunArn), GetExecutionHistory, ListExecutions by mapRunArn,
// ListMapRuns, DescribeMapRun (Step Functions API Reference).
#[tokio::test]
async fn distributed_map_children_and_map_runs_through_the_sdk() {
    let s = start().await;
    let fleet = s
        .client
        .create_state_machine()
        .name("fleet")
        .role_arn("arn:aws:iam::222222222222:role/fleet")
        .definition(
            r#"{"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": true, "Label": "clusters",
                "MaxConcurrency": 2, "ToleratedFailureCount": 1,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Check", "States": {
                        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": false, "Next": "Bad"}], "Default": "Good"},
                        "Bad": {"Type": "Fail", "Error": "NotOk", "Cause": "item says no"},
                        "Good": {"Type": "Pass", "End": true}}}}}}"#,
        )
        .send()
        .await
        .unwrap();
    let exec = s
        .client
        .start_execution()
        .state_machine_arn(fleet.state_machine_arn())
        .input(r#"[{"ok": true}, {"ok": false}, {"ok": true}]"#)
        .send()
        .await
        .unwrap();
    let parent = s.engine.execution(exec.execution_arn()).unwrap();
    parent.wait().await;

    let runs = s.client.list_map_runs().execution_arn(exec.execution_arn()).send().await.unwrap();
    assert_eq!(runs.map_runs().len(), 1);
    let run = &runs.map_runs()[0];
    assert!(run.map_run_arn().contains(":mapRun:fleet/clusters:"), "{}", run.map_run_arn());
    assert_eq!(run.state_machine_arn(), format!("{}/clusters", fleet.state_machine_arn()));
    assert!(run.stop_date().is_some());

    let d = s.client.describe_map_run().map_run_arn(run.map_run_arn()).send().await.unwrap();
    assert_eq!(d.status().as_str(), "SUCCEEDED");
    assert_eq!((d.max_concurrency(), d.tolerated_failure_count()), (2, 1));
    let items = d.item_counts().unwrap();
    assert_eq!((items.total(), items.succeeded(), items.failed()), (3, 2, 1));

    let children =
        s.client.list_executions().map_run_arn(run.map_run_arn()).send().await.unwrap().executions().to_vec();
    assert_eq!(children.len(), 3);
    let failed = children.iter().find(|c| c.status() == &ExecutionStatus::Failed).unwrap();
    let described = s.client.describe_execution().execution_arn(failed.execution_arn()).send().await.unwrap();
    assert_eq!(described.map_run_arn(), Some(run.map_run_arn()));
    assert_eq!(described.error(), Some("NotOk"));
    assert_eq!(described.input(), Some(r#"{"ok":false}"#));
    let history =
        s.client.get_execution_history().execution_arn(failed.execution_arn()).send().await.unwrap();
    let types: Vec<_> = history.events().iter().map(|e| e.r#type().clone()).collect();
    assert_eq!(types.first(), Some(&HistoryEventType::ExecutionStarted));
    assert_eq!(types.last(), Some(&HistoryEventType::ExecutionFailed));
    let parent_history =
        s.client.get_execution_history().execution_arn(exec.execution_arn()).send().await.unwrap();
    let started =
        parent_history.events().iter().find(|e| e.r#type() == &HistoryEventType::MapRunStarted).unwrap();
    assert_eq!(
        started.map_run_started_event_details().and_then(|d| d.map_run_arn()),
        Some(run.map_run_arn())
    );

    let missing =
        s.client.describe_map_run().map_run_arn(format!("{}x", run.map_run_arn())).send().await.unwrap_err();
    assert_eq!(missing.into_service_error().meta().code(), Some("ResourceNotFound"));
    s.stop().await;
}

// SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat through the SDK.
#[tokio::test]
async fn callbacks_through_the_sdk() {
    let s = start().await;
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel::<String>();
    let tasks = TaskRegistry::new().with_resource("arn:aws:states:::sns:publish", move |p: Value| {
        let _ = tx.send(p["Message"]["token"].as_str().unwrap_or("").to_string());
        async { Ok(json!({"MessageId": "m-1"})) }
    });
    let d = Definition::parse(
        r#"{"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "End": true,
            "Resource": "arn:aws:states:::sns:publish.waitForTaskToken", "HeartbeatSeconds": 3600,
            "Parameters": {"TopicArn": "arn:aws:sns:us-west-1:222222222222:t", "Message": {"token.$": "$$.Task.Token"}}}}}"#,
    )
    .unwrap();
    let sm = s.engine.register(StateMachineSpec::new("approval", d).tasks(tasks)).unwrap();
    for answer in ["success", "failure"] {
        let exec = s.client.start_execution().state_machine_arn(&sm.arn).send().await.unwrap();
        let token = tokens.recv().await.unwrap();
        s.client.send_task_heartbeat().task_token(&token).send().await.unwrap();
        let bad =
            s.client.send_task_success().task_token(&token).output("{not json").send().await.unwrap_err();
        assert_eq!(bad.into_service_error().meta().code(), Some("InvalidOutput"));
        if answer == "success" {
            s.client.send_task_success().task_token(&token).output(r#"{"ok": true}"#).send().await.unwrap();
        } else {
            s.client
                .send_task_failure()
                .task_token(&token)
                .error("No")
                .cause("said no")
                .send()
                .await
                .unwrap();
        }
        let outcome = s.engine.execution(exec.execution_arn()).unwrap().wait().await;
        let d = s.client.describe_execution().execution_arn(exec.execution_arn()).send().await.unwrap();
        if answer == "success" {
            assert_eq!(d.output(), Some(r#"{"ok":true}"#), "{outcome:?}");
        } else {
            assert_eq!((d.error(), d.cause()), (Some("No"), Some("said no")));
        }
        let late = s.client.send_task_success().task_token(&token).output("{}").send().await.unwrap_err();
        assert_eq!(late.into_service_error().meta().code(), Some("TaskTimedOut"));
    }
    let unknown = s.client.send_task_heartbeat().task_token("AAAAunknown").send().await.unwrap_err();
    assert_eq!(unknown.into_service_error().meta().code(), Some("TaskDoesNotExist"));
    s.stop().await;
}

/// Two accounts' engines behind one endpoint: each call reaches the engine
/// of the account and region its ARN names, ListStateMachines the engine of
/// the region it was signed for.
#[tokio::test]
async fn one_endpoint_serves_each_account_by_the_arn_it_names() {
    let clock = Clock::scaled(0.001).unwrap();
    let source = Engine::with_account(clock, "us-west-2", "111111111111");
    let target = Engine::with_account(clock, "us-west-1", "222222222222");
    let pass =
        || Definition::parse(r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#).unwrap();
    let src = source.register(StateMachineSpec::new("aurora-dr-source", pass())).unwrap();
    let tgt = target.register(StateMachineSpec::new("aurora-dr-target", pass())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(aurora_dr_asl::serve_accounts_with_shutdown(
        listener,
        vec![source.clone(), target.clone()],
        async {
            let _ = rx.await;
        },
    ));
    let client = |region: &'static str| {
        Client::from_conf(
            aws_sdk_sfn::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .region(Region::new(region))
                .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
                .endpoint_url(url.clone())
                .build(),
        )
    };
    let (west2, west1) = (client("us-west-2"), client("us-west-1"));
    // The target's execution, started through the source region's client: the ARN decides.
    let started = west2.start_execution().state_machine_arn(&tgt.arn).name("t").send().await.unwrap();
    assert_eq!(target.executions(None).len(), 1);
    assert!(source.executions(None).is_empty());
    let described = west1.describe_execution().execution_arn(started.execution_arn()).send().await.unwrap();
    assert_eq!(described.state_machine_arn(), tgt.arn);
    west1.start_execution().state_machine_arn(&src.arn).name("s").send().await.unwrap();
    assert_eq!(source.executions(None).len(), 1);
    // No ARN: the signing region's engine.
    let names = |out: aws_sdk_sfn::operation::list_state_machines::ListStateMachinesOutput| {
        out.state_machines().iter().map(|m| m.name().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names(west2.list_state_machines().send().await.unwrap()), ["aurora-dr-source"]);
    assert_eq!(names(west1.list_state_machines().send().await.unwrap()), ["aurora-dr-target"]);
    // An account no engine serves: does not exist.
    let other = tgt.arn.replace("222222222222", "333333333333");
    let err = west1.describe_state_machine().state_machine_arn(other).send().await.unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("StateMachineDoesNotExist"));
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
