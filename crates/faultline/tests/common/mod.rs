//! Running the `faultline` binary from end-to-end tests. Each test binary
//! uses a subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

/// Runs `faultline ARGS...` to completion.
pub fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("the faultline binary runs")
}

/// Runs `faultline ARGS...` with `input` on its standard input.
pub fn faultline_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the faultline binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("faultline reads its stdin");
    child.wait_with_output().expect("faultline finishes")
}

/// Appends `line` and a newline to the file at `path`, creating it and
/// its directories.
pub fn append_line(path: &std::path::Path, line: &str) {
    std::fs::create_dir_all(path.parent().expect("a file in a directory")).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, so a failed test leaves nothing
/// running.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from loopback `port` (HTTP/1.0, so never chunked): the
/// status and body, or None if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// Whether to skip a test because `what` (a real part it uses) is
/// missing: says so on stderr; where FAULTLINE_REQUIRE_TOOLS is set (CI)
/// a missing part fails the test instead.
pub fn missing(available: bool, what: &str) -> bool {
    if available {
        return false;
    }
    assert!(
        std::env::var_os("FAULTLINE_REQUIRE_TOOLS").is_none(),
        "{what} is required here (FAULTLINE_REQUIRE_TOOLS is set)"
    );
    eprintln!("skipped: {what} is missing");
    true
}
