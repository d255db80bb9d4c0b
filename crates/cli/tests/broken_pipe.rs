//! Output into a closed pipe (`aurora-dr status ... | head -1`) ends the
//! command quietly, as other command-line tools end, not with a panic.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aurora-dr");

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    // Nobody reads: every write to stdout fails with EPIPE.
    drop(reader);
    let out = Command::new(BIN).arg("functions").stdout(writer).output().expect("run aurora-dr functions");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // 128 + SIGPIPE (13), what a shell reports for a command its pipe closed.
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
