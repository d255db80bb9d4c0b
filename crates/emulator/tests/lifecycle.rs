//! Starting, stopping and dropping an emulator.

mod common;

use aurora_dr_emulator::{Emulator, EmulatorConfig, EmulatorError};
use common::*;

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

#[tokio::test]
async fn serves_health_and_stops_cleanly() {
    let emulator = emulator().await;
    assert!(emulator.url().starts_with("http://127.0.0.1:"));
    let health = emulator.control().health().await.expect("health");
    assert_eq!(health["status"], "ok");
    assert!(health["moto"].as_str().is_some_and(|v| v.starts_with("5.2.")), "{health}");
    let port = emulator.port();
    let status = emulator.stop().await.expect("stop");
    assert!(status.success(), "clean exit expected, got {status}");
    assert!(!accepts(port).await, "port {port} still open after stop");
}

#[tokio::test]
async fn dropping_the_emulator_kills_it() {
    let emulator = emulator().await;
    let port = emulator.port();
    assert!(accepts(port).await);
    drop(emulator);
    // The kill is asynchronous; the port closes as soon as the process is gone.
    let mut closed = false;
    for _ in 0..100 {
        if !accepts(port).await {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(closed, "port {port} still open after drop");
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let first = emulator().await;
    let result = Emulator::start(EmulatorConfig::default().with_port(first.port())).await;
    match result {
        Err(EmulatorError::EarlyExit { output, .. }) => {
            assert!(output.contains("Address already in use"), "unexpected output: {output}")
        }
        other => panic!("expected EarlyExit, got {other:?}"),
    }
}
