//! Differential tests: the same Task-free definition and input on this engine
//! and on moto's own Step Functions executor (moto 5.2.x, ported from
//! LocalStack), compared on status, output and error name.
//!
//! moto is started by the test itself: the Python comes from
//! `AURORA_DR_PYTHON` (then only from there), else `<workspace>/.venv/bin/python` (what `make
//! emulator-env` creates, and what `make test` creates first), else `python3`
//! on PATH, and must import moto 5.2.x. Without one the suite FAILS, naming
//! the command that installs it; `AURORA_DR_SKIP_MOTO=1` turns that into a
//! skip that prints how many cases did not run. This file has its own
//! `main` (no libtest harness), so its summary line is printed even when it
//! passes: `make test` shows how many cases were compared.
//!
//! moto quirk handled here: after one execution, a second StartExecution in the
//! same account/region fails inside moto (it deep-copies the state machine and
//! hits a lock), so every case runs in its own region; the server restarts
//! when the regions run out.
//!
//! Adding a case is one line in [`CASES`]. Where moto is known to disagree
//! with the AWS documentation, the case is listed in [`MOTO_DIFFERS`] with
//! moto's answer and the reason; the engine must then give the documented one.

use aurora_dr_asl::{Clock, Definition, Engine, StartOptions, StateMachineSpec};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};

/// (name, definition, input). Names are also execution names.
const CASES: &[(&str, &str, &str)] = &[
    (
        "index-path-node",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"X":[{"Status":"done"}]},"ResultPath":"$.r","OutputPath":"$.r.X[0].Status","End":true}}}"#,
        "{}",
    ),
    (
        "paths-chain",
        r#"{"StartAt":"A","States":{"A":{"Type":"Pass","InputPath":"$.sub","Result":"R","ResultPath":"$.res","Next":"B"},"B":{"Type":"Pass","InputPath":"$.sub","ResultPath":"$.copy","OutputPath":"$","End":true}}}"#,
        r#"{"sub":{"k":1},"other":2}"#,
    ),
    (
        "result-path-null",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"r":1},"ResultPath":null,"End":true}}}"#,
        r#"{"in":1}"#,
    ),
    (
        "result-path-nested",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Result":"v","ResultPath":"$.a.b.c","End":true}}}"#,
        r#"{"in":1,"a":{"x":0}}"#,
    ),
    (
        "output-path-null",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","OutputPath":null,"End":true}}}"#,
        r#"{"in":1}"#,
    ),
    (
        "input-path-null",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","InputPath":null,"ResultPath":"$.x","End":true}}}"#,
        r#"{"in":1}"#,
    ),
    (
        "parameters-static-dynamic",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"s":"lit","d.$":"$.x","n":{"l.$":"$.list[1]","arr":[1,{"z.$":"$.x"}]},"name.$":"$$.Execution.Name","state.$":"$$.State.Name"},"End":true}}}"#,
        r#"{"x":5,"list":[1,2,3]}"#,
    ),
    (
        "filter-input-path",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","InputPath":"$.items[?(@.ok == true)].n","End":true}}}"#,
        r#"{"items":[{"n":1,"ok":true},{"n":2,"ok":false},{"n":3,"ok":true}]}"#,
    ),
    (
        "wildcard-input-path",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","InputPath":"$.items[*].n","End":true}}}"#,
        r#"{"items":[{"n":1},{"n":2}]}"#,
    ),
    (
        "intrinsics-strings",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"f.$":"States.Format('Hello, {}! n={}', $.name, $.n)","j.$":"States.StringToJson($.json)","s.$":"States.JsonToString($.obj)","split.$":"States.StringSplit($.csv, ',')"},"End":true}}}"#,
        r#"{"name":"Ann","n":3,"json":"{\"k\":[1,2]}","obj":{"a":1},"csv":"a,b,c"}"#,
    ),
    (
        "intrinsics-arrays",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"a.$":"States.Array('x', $.n, true)","p.$":"States.ArrayPartition($.nums, 2)","c.$":"States.ArrayContains($.nums, 3)","r.$":"States.ArrayRange(1, 9, 2)","g.$":"States.ArrayGetItem($.nums, 1)","l.$":"States.ArrayLength($.nums)","u.$":"States.ArrayUnique($.dups)"},"End":true}}}"#,
        r#"{"n":3,"nums":[1,2,3,4,5],"dups":[1,1,2,2,3]}"#,
    ),
    (
        "intrinsics-encoding-math",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"b.$":"States.Base64Encode($.t)","d.$":"States.Base64Decode('RGF0YSB0byBlbmNvZGU=')","h.$":"States.Hash($.t, 'SHA-256')","m.$":"States.JsonMerge($.a, $.b, false)","sum.$":"States.MathAdd($.n, 5)"},"End":true}}}"#,
        r#"{"t":"Data to encode","a":{"x":1,"n":{"p":1}},"b":{"y":2,"n":{"q":2}},"n":10}"#,
    ),
    (
        "intrinsics-rounding",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"sum.$":"States.MathAdd($.a, $.b)","chunks.$":"States.ArrayPartition($.xs, $.size)","range.$":"States.ArrayRange($.r0, $.r1, $.r2)"},"End":true}}}"#,
        r#"{"a":1.5,"b":2.4,"xs":[1,2,3],"size":1.6,"r0":0.6,"r1":4.4,"r2":1.5}"#,
    ),
    (
        "intrinsics-escapes",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"f.$":"States.Format('it\\'s \\{{}\\} C:\\\\dir', $.x)"},"End":true}}}"#,
        r#"{"x":"v"}"#,
    ),
    (
        "intrinsics-math-add-range",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"sum.$":"States.MathAdd($.a, 1)"},"End":true}}}"#,
        r#"{"a":2147483648}"#,
    ),
    (
        "choice-numeric-and",
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Default":"Small","Choices":[{"Variable":"$.n","NumericGreaterThan":10,"Next":"Big"},{"And":[{"Variable":"$.n","NumericGreaterThanEquals":5},{"Variable":"$.n","NumericLessThanEquals":10}],"Next":"Mid"}]},"Big":{"Type":"Pass","Result":"big","ResultPath":"$.result","End":true},"Mid":{"Type":"Pass","Result":"mid","ResultPath":"$.result","End":true},"Small":{"Type":"Pass","Result":"small","ResultPath":"$.result","End":true}}}"#,
        r#"{"n":7}"#,
    ),
    (
        "choice-or-not-present",
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Not":{"Variable":"$.missing","IsPresent":true},"Next":"D"}],"Default":"F"},"D":{"Type":"Choice","Choices":[{"Or":[{"Variable":"$.s","StringEquals":"x"},{"Variable":"$.s","StringEquals":"y"}],"Next":"Y"}],"Default":"F"},"Y":{"Type":"Pass","Result":"yes","ResultPath":"$.result","End":true},"F":{"Type":"Fail","Error":"Wrong"}}}"#,
        r#"{"s":"y"}"#,
    ),
    (
        "choice-types-strings-timestamps",
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"And":[{"Variable":"$.a","IsNull":true},{"Variable":"$.n","IsNumeric":true},{"Variable":"$.s","IsString":true},{"Variable":"$.b","IsBoolean":true},{"Variable":"$.t","IsTimestamp":true},{"Variable":"$.file","StringMatches":"log-*.txt"},{"Variable":"$.t","TimestampLessThan":"2030-01-01T00:00:00Z"},{"Variable":"$.b","BooleanEqualsPath":"$.b2"},{"Variable":"$.s","StringLessThan":"y"}],"Next":"Y"}],"Default":"N"},"Y":{"Type":"Pass","Result":"yes","ResultPath":"$.result","End":true},"N":{"Type":"Pass","Result":"no","ResultPath":"$.result","End":true}}}"#,
        r#"{"a":null,"n":1,"s":"x","b":false,"b2":false,"t":"2016-03-14T01:59:00Z","file":"log-1.txt"}"#,
    ),
    (
        "choice-no-match",
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.s","StringEquals":"yes","Next":"Y"}]},"Y":{"Type":"Succeed"}}}"#,
        r#"{"s":"no"}"#,
    ),
    (
        "choice-io-paths",
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","InputPath":"$.sub","OutputPath":"$.w","Choices":[{"Variable":"$.v","StringEquals":"go","Next":"D"}]},"D":{"Type":"Pass","End":true}}}"#,
        r#"{"sub":{"v":"go","w":{"k":1}},"o":1}"#,
    ),
    ("string-output", r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Result":"mid","End":true}}}"#, "{}"),
    (
        "fail-literal",
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"SnapshotFailed","Cause":"the snapshot failed"}}}"#,
        "{}",
    ),
    (
        "fail-paths",
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","ErrorPath":"$.e","CausePath":"$.c"}}}"#,
        r#"{"e":"E42","c":"because"}"#,
    ),
    (
        "succeed-paths",
        r#"{"StartAt":"S","States":{"S":{"Type":"Succeed","InputPath":"$.a","OutputPath":"$.b"}}}"#,
        r#"{"a":{"b":[1,2]}}"#,
    ),
    (
        "wait-zero",
        r#"{"StartAt":"W","States":{"W":{"Type":"Wait","SecondsPath":"$.s","Next":"T"},"T":{"Type":"Wait","Timestamp":"2001-01-01T00:00:00Z","End":true}}}"#,
        r#"{"s":0}"#,
    ),
    (
        "parallel-result-selector",
        r#"{"StartAt":"P","States":{"P":{"Type":"Parallel","ResultSelector":{"first.$":"$[0]","second.$":"$[1].b"},"ResultPath":"$.par","End":true,"Branches":[{"StartAt":"A","States":{"A":{"Type":"Pass","Result":"a","End":true}}},{"StartAt":"B","States":{"B":{"Type":"Pass","Parameters":{"b.$":"$.x"},"End":true}}}]}}}"#,
        r#"{"x":1}"#,
    ),
    (
        "parallel-branch-fail-caught",
        r#"{"StartAt":"P","States":{"P":{"Type":"Parallel","Next":"D","Catch":[{"ErrorEquals":["BranchErr"],"ResultPath":"$.e","Next":"D"}],"Branches":[{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}},{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"BranchErr","Cause":"bad"}}}]},"D":{"Type":"Pass","End":true}}}"#,
        r#"{"x":1}"#,
    ),
    (
        "map-item-selector",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.parcels","MaxConcurrency":1,"ResultPath":"$.shipped","End":true,"ItemSelector":{"idx.$":"$$.Map.Item.Index","parcel.$":"$$.Map.Item.Value.id","partner.$":"$.partner"},"ItemProcessor":{"ProcessorConfig":{"Mode":"INLINE"},"StartAt":"Ship","States":{"Ship":{"Type":"Pass","End":true}}}}}}"#,
        r#"{"partner":"ups","parcels":[{"id":"p1"},{"id":"p2"},{"id":"p3"}]}"#,
    ),
    (
        "map-legacy-iterator",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.xs","Parameters":{"v.$":"$$.Map.Item.Value"},"Iterator":{"StartAt":"P","States":{"P":{"Type":"Pass","OutputPath":"$.v","End":true}}},"End":true}}}"#,
        r#"{"xs":[10,20,30]}"#,
    ),
    (
        "map-in-parallel",
        r#"{"StartAt":"P","States":{"P":{"Type":"Parallel","OutputPath":"$[0]","End":true,"Branches":[{"StartAt":"M","States":{"M":{"Type":"Map","End":true,"ItemProcessor":{"StartAt":"D","States":{"D":{"Type":"Pass","Parameters":{"v.$":"States.MathAdd($, $)"},"OutputPath":"$.v","End":true}}}}}}]}}}"#,
        "[1,2,3]",
    ),
    (
        "map-failing-iteration-caught",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items","Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.error","Next":"D"}],"Next":"D","ItemProcessor":{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.bad","BooleanEquals":true,"Next":"Bad"}],"Default":"Ok"},"Bad":{"Type":"Fail","Error":"BadItem","Cause":"bad item"},"Ok":{"Type":"Pass","End":true}}}},"D":{"Type":"Pass","End":true}}}"#,
        r#"{"items":[{"bad":false},{"bad":true}]}"#,
    ),
    (
        "distributed-map",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.xs","MaxConcurrency":2,"Label":"items","ItemSelector":{"v.$":"$$.Map.Item.Value","i.$":"$$.Map.Item.Index"},"ResultPath":"$.out","End":true,"ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"sum.$":"States.MathAdd($.v, $.i)"},"End":true}}}}}}"#,
        r#"{"xs":[10,20,30]}"#,
    ),
    (
        "distributed-map-tolerated-failure",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","ToleratedFailureCount":1,"End":true,"ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$","NumericEquals":2,"Next":"F"}],"Default":"S"},"F":{"Type":"Fail","Error":"Two","Cause":"two is bad"},"S":{"Type":"Succeed"}}}}}}"#,
        "[1,2,3]",
    ),
    (
        "runtime-missing-input-path",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","InputPath":"$.nope","End":true}}}"#,
        r#"{"x":1}"#,
    ),
];

/// Cases where moto 5.2 disagrees with the AWS documentation:
/// (case name, moto's answer as `STATUS raw-output-or-error`, why the engine follows AWS).
const MOTO_DIFFERS: &[(&str, &str, &str)] = &[
    (
        "distributed-map-tolerated-failure",
        "SUCCEEDED [1, null, 3]",
        "the developer guide (ResultWriter (Map), WriterConfig Transformation) returns a failed child's execution result unchanged (ExecutionArn, Input, Status, Error, Cause, ...): the engine gives that object, moto null",
    ),
    (
        "intrinsics-escapes",
        r#"SUCCEEDED {"f": "it\\\\"}"#,
        "the developer guide (Intrinsic functions, Reserved characters) makes \\' \\{ \\} \\\\ escapes for ' { } \\: AWS gives \"it's {v} C:\\dir\", moto stops at the first escape",
    ),
    (
        "intrinsics-math-add-range",
        r#"SUCCEEDED {"sum": 2147483649}"#,
        "the developer guide (Intrinsic functions, States.MathAdd) requires arguments within -2147483648..2147483647: AWS fails with States.IntrinsicFailure, moto adds them",
    ),
    (
        "index-path-node",
        r#"SUCCEEDED ["done"]"#,
        "a definite path ($.r.X[0].Status) selects one node: AWS returns \"done\", moto wraps it in a list",
    ),
    (
        "parallel-result-selector",
        r#"SUCCEEDED {"x": 1, "par": {"first": "a", "second": [1]}}"#,
        "same list-wrapping bug for $[1].b in a ResultSelector",
    ),
    (
        "choice-no-match",
        "FAILED States.Runtime",
        "AWS fails a Choice without a match and without Default with States.NoChoiceMatched",
    ),
    (
        "string-output",
        "SUCCEEDED mid",
        "DescribeExecution output is a JSON text: AWS returns \"mid\" (quoted), moto the bare string",
    ),
];

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
    "ca-central-1",
];

fn find_python() -> Option<PathBuf> {
    // An explicit choice is the only candidate: never fall back behind the user's back.
    let candidates = match std::env::var("AURORA_DR_PYTHON") {
        Ok(p) => vec![PathBuf::from(p)],
        Err(_) => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    candidates.into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import moto, sys; sys.exit(0 if moto.__version__.startswith('5.2') else 1)"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    async fn start(python: &PathBuf) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto");
        let url = format!("http://127.0.0.1:{port}");
        // Bounded readiness probe of an external process (not test synchronisation).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "moto did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
        let req = format!(
            "POST /moto-api/config HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        stream.read_to_string(&mut resp).await.unwrap();
        let status_ok = resp.split_whitespace().nth(1).is_some_and(|code| code.starts_with('2'));
        assert!(status_ok, "moto config: {resp}");
        Moto { child, url }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    fn client(&self, region: &str) -> Client {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(&self.url)
            .build();
        Client::from_conf(config)
    }
}

#[derive(Debug, PartialEq)]
struct Result3 {
    status: String,
    output: Option<Value>,
    error: Option<String>,
}

impl Result3 {
    /// `STATUS raw-output-or-error`, the form of [`MOTO_DIFFERS`].
    fn summary(&self, raw_output: Option<&str>) -> String {
        format!("{} {}", self.status, raw_output.or(self.error.as_deref()).unwrap_or(""))
    }
}

async fn on_moto(moto: &Moto, region: &str, name: &str, def: &str, input: &str) -> (Result3, Option<String>) {
    let c = moto.client(region);
    let sm = match c
        .create_state_machine()
        .name(name)
        .definition(def)
        .role_arn("arn:aws:iam::123456789012:role/differential")
        .send()
        .await
    {
        Ok(sm) => sm,
        // A definition moto cannot load is an answer too (`REJECTED <code>`).
        Err(e) => {
            let code = e.as_service_error().and_then(|s| s.meta().code()).unwrap_or("?").to_string();
            return (Result3 { status: "REJECTED".into(), output: None, error: Some(code) }, None);
        }
    };
    let exec = c
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .name(name)
        .input(input)
        .send()
        .await
        .expect("moto StartExecution");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = c
            .describe_execution()
            .execution_arn(exec.execution_arn())
            .send()
            .await
            .expect("moto DescribeExecution");
        if d.status().as_str() != "RUNNING" {
            let r = Result3 {
                status: d.status().as_str().to_string(),
                output: d.output().map(|o| {
                    serde_json::from_str(o).unwrap_or_else(|_| Value::String(format!("<not JSON> {o}")))
                }),
                error: d.error().map(str::to_string),
            };
            return (r, d.output().map(str::to_string));
        }
        assert!(tokio::time::Instant::now() < deadline, "moto execution {name} did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn on_engine(name: &str, def: &str, input: &str) -> Result3 {
    let engine = Engine::new(Clock::real());
    let d = Definition::parse(def).unwrap_or_else(|e| panic!("{name}: {e}"));
    engine.register(StateMachineSpec::new(name, d)).unwrap();
    let out = engine
        .start(name, serde_json::from_str(input).unwrap(), StartOptions::named(name))
        .unwrap()
        .wait()
        .await;
    Result3 { status: out.status.as_str().to_string(), output: out.output, error: out.error }
}

/// The suite's one line of outcome, always printed.
fn summary(text: &str) {
    println!("differential (engine vs moto): {text}");
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test -- --list` (IDEs, nextest) and filters meant for other suites.
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("engine_matches_moto: test");
        }
        return std::process::ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--ignored") {
        return std::process::ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "engine_matches_moto".contains(f.as_str())) {
        summary(&format!("0 of {} cases run (filtered out)", CASES.len()));
        return std::process::ExitCode::SUCCESS;
    }
    let Some(python) = find_python() else {
        let why = "moto 5.2.x not found (run `make emulator-env`, or set AURORA_DR_PYTHON)";
        if std::env::var("AURORA_DR_SKIP_MOTO").is_ok_and(|v| v == "1") {
            summary(&format!("SKIPPED {} cases: {why}; AURORA_DR_SKIP_MOTO=1", CASES.len()));
            return std::process::ExitCode::SUCCESS;
        }
        summary(&format!("FAILED: {why}; AURORA_DR_SKIP_MOTO=1 skips the {} cases", CASES.len()));
        return std::process::ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(compare_all(&python)) {
        Ok(divergences) => {
            summary(&format!(
                "{} cases compared, {divergences} documented divergence(s) from moto, ok",
                CASES.len()
            ));
            std::process::ExitCode::SUCCESS
        }
        Err(failures) => {
            eprintln!("{} difference(s):\n{}", failures.len(), failures.join("\n"));
            summary(&format!("{} of {} cases FAILED", failures.len(), CASES.len()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every case on both executors: the number of documented divergences, or the failures.
async fn compare_all(python: &PathBuf) -> Result<usize, Vec<String>> {
    println!("moto from {}", python.display());
    let mut moto = Moto::start(python).await;
    let mut failures = Vec::new();
    let mut divergences = 0;
    for (i, (name, def, input)) in CASES.iter().enumerate() {
        if i > 0 && i % REGIONS.len() == 0 {
            moto.stop().await;
            moto = Moto::start(python).await;
        }
        let region = REGIONS[i % REGIONS.len()];
        let ours = on_engine(name, def, input).await;
        let (theirs, raw) = on_moto(&moto, region, name, def, input).await;
        match MOTO_DIFFERS.iter().find(|d| d.0 == *name) {
            Some((_, moto_answer, why)) => {
                divergences += 1;
                let got = theirs.summary(raw.as_deref());
                if got != *moto_answer {
                    failures.push(format!(
                        "{name}: moto now answers `{got}`, not `{moto_answer}`; re-check the divergence"
                    ));
                }
                if ours == theirs {
                    failures.push(format!("{name}: engine follows moto, but AWS documents otherwise: {why}"));
                }
                let ours_text = ours.summary(ours.output.as_ref().map(Value::to_string).as_deref());
                println!("documented moto divergence {name}: engine `{ours_text}`, moto `{got}` ({why})");
            }
            None => {
                if ours != theirs {
                    failures.push(format!("{name}:\n  engine {ours:?}\n  moto   {theirs:?}"));
                }
            }
        }
    }
    moto.stop().await;
    if failures.is_empty() { Ok(divergences) } else { Err(failures) }
}
