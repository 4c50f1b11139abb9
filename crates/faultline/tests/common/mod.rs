//! Running the `faultline` binary from end-to-end tests. Each test binary
//! uses a subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

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

/// The JSON records of faultline's `--format json` output, one per line.
pub fn json_lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8(output.to_vec())
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

/// `line` as a container runtime (CRI) log line on stderr, written now:
/// what a live failure looks like in a pod log (faultline correlates on
/// the time in the log, so a live test writes the time of its writing).
pub fn cri_now(line: &str) -> String {
    format!("{:.9} stderr F {line}", jiff::Timestamp::now())
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

/// A running `faultline watch`, the JSON records it printed so far and
/// the lines of its standard error (also passed on to the test's).
pub struct Watch {
    pub child: Child,
    records: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    /// `faultline watch --format json ARGS...`, polling every 20 ms and
    /// with a metrics port of the system's choosing unless ARGS say
    /// otherwise (`--poll`, `--listen`).
    pub fn start(args: &[&str]) -> Watch {
        Watch::start_under(&[], args)
    }

    /// [`Watch::start`] through `runner`, a command that runs the one
    /// given after its own arguments (e.g. `setpriv …` to drop
    /// privileges).
    pub fn start_under(runner: &[&str], args: &[&str]) -> Watch {
        let binary = env!("CARGO_BIN_EXE_faultline");
        let mut command = match runner.split_first() {
            Some((program, runner_args)) => {
                let mut command = Command::new(program);
                command.args(runner_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["watch", "--format", "json"])
            .args(if args.contains(&"--poll") {
                &[][..]
            } else {
                &["--poll", "20ms"][..]
            })
            .args(if args.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the faultline binary runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, records) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("UTF-8 output");
                let record = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(record).is_err() {
                    return;
                }
            }
        });
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = stderr_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept.lock().expect("one writer").push(line);
            }
        });
        Watch {
            child,
            records,
            stderr: stderr_lines,
        }
    }

    /// The lines faultline wrote to its standard error so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("one writer").clone()
    }

    /// The next record that `wanted` accepts, skipping others (20 s at
    /// most, which only a broken watch takes).
    pub fn next(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        self.next_keeping(&mut Vec::new(), wanted)
    }

    /// [`Watch::next`], keeping every record read in `kept`.
    pub fn next_keeping(&self, kept: &mut Vec<Value>, wanted: impl Fn(&Value) -> bool) -> Value {
        self.next_within(Duration::from_secs(20), kept, wanted)
    }

    /// [`Watch::next_keeping`], waiting up to `patience` for each record.
    pub fn next_within(
        &self,
        patience: Duration,
        kept: &mut Vec<Value>,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        self.try_next_within(patience, kept, wanted)
            .unwrap_or_else(|| panic!("faultline watch reports in time; so far: {kept:#?}"))
    }

    /// [`Watch::next_within`], or `None` once no record came for
    /// `patience`.
    pub fn try_next_within(
        &self,
        patience: Duration,
        kept: &mut Vec<Value>,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        loop {
            let record = self.records.recv_timeout(patience).ok()?;
            kept.push(record.clone());
            if wanted(&record) {
                return Some(record);
            }
        }
    }

    /// SIGTERM, then the exit status and every record printed after this
    /// call.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        // Everything it printed, to the end of its output.
        let mut rest = Vec::new();
        while let Ok(record) = self.records.recv_timeout(Duration::from_secs(20)) {
            rest.push(record);
        }
        (status, rest)
    }
}

/// POSTs `body` to faultline's push API; returns the status and body.
pub fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("the push receiver never listened: {err}"),
        }
    };
    let mut request = format!(
        "POST /loki/api/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// Waits (20 s at most) until faultline's /metrics on `port` shows `line`.
pub fn metrics_show(port: u16, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = http_get(port, "/metrics").map(|(_, body)| body);
        if body
            .as_deref()
            .is_some_and(|b| b.lines().any(|l| l == line))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{line:?} not in {body:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
