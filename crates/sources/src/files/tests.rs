use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use super::*;

/// A file follower running on its own task, and what it sent.
struct Running {
    rx: mpsc::Receiver<Batch>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Lines received, by origin.
    lines: HashMap<String, Vec<String>>,
    checkpoints: Checkpoints,
}

fn start(glob: &str, checkpoints: Checkpoints, read_existing: bool) -> Running {
    let (tx, rx) = mpsc::channel(4);
    let (errors, _) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let config = FileConfig {
        globs: vec![glob.to_string()],
        poll: Duration::from_millis(5),
        read_existing,
        checkpoints,
        max_files: DEFAULT_MAX_FILES,
        unfollowed: Arc::default(),
        watermark: Default::default(),
    };
    let task = tokio::spawn(follow(config, tx, errors, stop_rx));
    Running {
        rx,
        stop,
        task,
        lines: HashMap::new(),
        checkpoints: Checkpoints::default(),
    }
}

impl Running {
    /// Receives until `count` lines arrived in all (or 20 s passed, which
    /// only a broken follower takes).
    async fn until(&mut self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.total() < count {
            let batch = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    let all = self.all();
                    panic!(
                        "only {} of {count} lines arrived; first {:?} last {:?}",
                        self.total(),
                        all.first(),
                        all.last()
                    )
                })
                .expect("the follower runs");
            let text = String::from_utf8(batch.lines).unwrap();
            assert!(text.ends_with('\n'), "whole lines only: {text:?}");
            self.lines
                .entry(batch.stream.origin.clone())
                .or_default()
                .extend(text.lines().map(str::to_string));
            if let Some(checkpoint) = batch.checkpoint {
                self.checkpoints.record(checkpoint);
            }
        }
    }

    fn total(&self) -> usize {
        self.lines.values().map(Vec::len).sum()
    }

    fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self.lines.values().flatten().cloned().collect();
        all.sort();
        all
    }

    async fn stop(self) -> (HashMap<String, Vec<String>>, Checkpoints) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
        (self.lines, self.checkpoints)
    }
}

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// Truncates the file in place, as copytruncate does.
fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn numbered(from: usize, to: usize) -> impl Iterator<Item = String> {
    (from..to).map(|i| format!("line {i:06}"))
}

/// `got == want`, naming the first difference rather than printing both.
fn same(got: &[String], want: &[String]) {
    if let Some((i, (g, w))) = got.iter().zip(want).enumerate().find(|(_, (g, w))| g != w) {
        panic!("line {i} differs: got {g:?}, want {w:?}");
    }
    assert_eq!(got.len(), want.len(), "number of lines");
}

fn sorted(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = lines.collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_under_a_concurrent_writer_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    std::fs::write(&log, "").unwrap();
    let mut running = start(
        &format!("{}/*.log", dir.path().display()),
        Checkpoints::default(),
        false,
    );
    // Let the follower see the (empty) file before writing: it is then
    // followed from its start.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let writer = {
        let log = log.clone();
        let dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            for round in 0..20 {
                append(&log, numbered(round * 500, round * 500 + 500));
                // kubelet's rotation: rename, then a new file at the path.
                std::fs::rename(&log, dir.join(format!("0.log.{round:02}"))).unwrap();
                std::fs::write(&log, "").unwrap();
                // A file lives longer than a poll interval (kubelet rotates
                // at 10 MiB); lines still race the follower's reads.
                std::thread::sleep(Duration::from_millis(25));
                append(&log, numbered(round * 500 + 10_000, round * 500 + 10_005));
            }
        })
    };
    writer.join().unwrap();
    let expected = sorted((0..20).flat_map(|round| {
        numbered(round * 500, round * 500 + 500)
            .chain(numbered(round * 500 + 10_000, round * 500 + 10_005))
    }));
    running.until(expected.len()).await;
    // Every line exactly once (the files of one path may interleave: a
    // rotated file's rest and the new file are read in the same round).
    same(&running.all(), &expected);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_is_read_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let mut running = start(&log.display().to_string(), Checkpoints::default(), false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&log, numbered(0, 100));
    running.until(100).await;
    // copytruncate: copy away, truncate in place; the writer goes on.
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    truncate(&log);
    append(&log, numbered(100, 130));
    running.until(130).await;
    // Truncated and written past the old offset between two polls.
    truncate(&log);
    append(&log, numbered(130, 400));
    running.until(400).await;
    same(&running.all(), &sorted(numbered(0, 400)));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_checkpoints_and_new_files_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.log");
    append(&old, numbered(0, 10));
    let glob = format!("{}/*.log", dir.path().display());

    // First start ever: what is already there is history.
    let mut running = start(&glob, Checkpoints::default(), false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&old, numbered(10, 20));
    running.until(10).await;
    let (lines, checkpoints) = running.stop().await;
    assert_eq!(
        lines[&old.display().to_string()],
        numbered(10, 20).collect::<Vec<_>>()
    );

    // While stopped: more lines, and a new file.
    append(&old, numbered(20, 30));
    let new = dir.path().join("new.log");
    append(&new, numbered(30, 35));
    let mut running = start(&glob, checkpoints, false);
    running.until(15).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (lines, _) = running.stop().await;
    assert_eq!(
        lines[&old.display().to_string()],
        numbered(20, 30).collect::<Vec<_>>()
    );
    assert_eq!(
        lines[&new.display().to_string()],
        numbered(30, 35).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_read_to_its_end_and_long_lines_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, numbered(0, 3));
    let mut running = start(&log.display().to_string(), Checkpoints::default(), true);
    running.until(3).await;
    // Written and deleted between two polls; the last line unterminated.
    {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(file, "{}", "x".repeat(MAX_LINE + 10)).unwrap();
        write!(file, "last words").unwrap();
        std::fs::remove_file(&log).unwrap();
    }
    running.until(5).await;
    let lines = &running.lines[&log.display().to_string()];
    assert_eq!(lines[3].len(), MAX_LINE);
    assert_eq!(lines[4], "last words");
    running.stop().await;
}

#[test]
fn a_globs_fixed_directory_is_what_is_watched() {
    use discover::fixed_directory;
    assert_eq!(
        fixed_directory("/var/log/pods/*/*/*.log"),
        Path::new("/var/log/pods")
    );
    assert_eq!(fixed_directory("/var/log/syslog"), Path::new("/var/log"));
    assert_eq!(fixed_directory("logs/app-?.log"), Path::new("logs"));
}

/// The paths `glob` finds under `dir`, relative to it, sorted; and the
/// problems met.
fn walked(dir: &Path, glob: &str) -> (Vec<String>, Vec<String>) {
    let glob = Glob::new(&format!("{}/{glob}", dir.display())).unwrap();
    let mut problems = Vec::new();
    let mut paths: Vec<String> = glob
        .files(&mut problems, &mut Vec::new())
        .into_iter()
        .map(|(path, _)| {
            path.strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    paths.sort();
    let problems = problems
        .iter()
        .map(|p| p.replace(&dir.display().to_string(), "DIR"))
        .collect();
    (paths, problems)
}

#[test]
fn only_events_that_can_bring_lines_wake_the_follower() {
    use notify::EventKind;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };
    for (kind, wakes) in [
        (EventKind::Create(CreateKind::File), true),
        (EventKind::Modify(ModifyKind::Data(DataChange::Any)), true),
        (EventKind::Modify(ModifyKind::Name(RenameMode::From)), true),
        (EventKind::Remove(RemoveKind::File), true),
        (
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            true,
        ),
        // faultline's own look opens the directories it walks.
        (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
        (
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            false,
        ),
        (
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            false,
        ),
    ] {
        assert_eq!(may_bring_lines(&kind), wakes, "{kind:?}");
    }
}

/// A temporary directory with a one-line file at each of `paths`.
fn pod_tree(paths: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for path in paths {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x\n").unwrap();
    }
    dir
}

#[test]
fn a_walk_names_the_directories_a_new_file_could_appear_in() {
    let dir = pod_tree(&[
        "pods/ns_a_1/db/0.log",
        "pods/ns_b_2/app/1.log",
        "pods/ns_b_2/app/deeper/2.log",
        "pods/top.log",
    ]);
    let root = dir.path();
    let dirs_of = |glob: &str| {
        let glob = Glob::new(&format!("{}/{glob}", root.display())).unwrap();
        let mut dirs = Vec::new();
        glob.files(&mut Vec::new(), &mut dirs);
        let mut names: Vec<String> = dirs
            .iter()
            .map(|(path, ino)| {
                assert_eq!(*ino, std::fs::metadata(path).unwrap().ino(), "{path:?}");
                path.strip_prefix(root).unwrap().display().to_string()
            })
            .collect();
        names.sort();
        names
    };
    // As deep as the glob reaches, not into `deeper`.
    assert_eq!(
        dirs_of("pods/*/*/*.log"),
        [
            "pods",
            "pods/ns_a_1",
            "pods/ns_a_1/db",
            "pods/ns_b_2",
            "pods/ns_b_2/app"
        ]
    );
    assert_eq!(
        dirs_of("pods/**/*.log"),
        [
            "pods",
            "pods/ns_a_1",
            "pods/ns_a_1/db",
            "pods/ns_b_2",
            "pods/ns_b_2/app",
            "pods/ns_b_2/app/deeper"
        ]
    );
    // One file: its directory.
    assert_eq!(dirs_of("pods/top.log"), ["pods"]);
    // A link to a file: where the file is written too.
    std::fs::create_dir(root.join("containers")).unwrap();
    std::os::unix::fs::symlink(
        root.join("pods/ns_a_1/db/0.log"),
        root.join("containers/db.log"),
    )
    .unwrap();
    assert_eq!(
        dirs_of("containers/*.log"),
        ["containers", "pods/ns_a_1/db"]
    );
    // A directory not there (yet) is not named.
    assert!(dirs_of("nothing/*/*.log").is_empty());
}

#[test]
fn a_walk_matches_as_the_shell_does_and_stops_at_symbolic_link_loops() {
    let dir = pod_tree(&[
        "pods/ns_a_1/db/0.log",
        "pods/ns_a_1/db/0.log.20260219-030407",
        "pods/ns_b_2/app/1.log",
        "pods/ns_b_2/app/deeper/2.log",
        "pods/top.log",
    ]);
    let root = dir.path();
    // Loops: back to a parent, and two links to each other's directory.
    std::os::unix::fs::symlink("..", root.join("pods/ns_a_1/db/up")).unwrap();
    std::os::unix::fs::symlink(root.join("pods/ns_b_2"), root.join("pods/ns_a_1/to-b")).unwrap();
    std::os::unix::fs::symlink(root.join("pods/ns_a_1"), root.join("pods/ns_b_2/to-a")).unwrap();
    // `*` stays within one directory level.
    let (paths, problems) = walked(root, "pods/*/*/*.log");
    assert_eq!(paths, ["pods/ns_a_1/db/0.log", "pods/ns_b_2/app/1.log"]);
    assert!(problems.is_empty(), "{problems:?}");
    // `**` goes any depth, through links, and stops at each loop once.
    let (paths, problems) = walked(root, "pods/**/*.log");
    assert!(paths.contains(&"pods/ns_b_2/app/deeper/2.log".to_string()));
    assert!(paths.contains(&"pods/ns_a_1/to-b/app/1.log".to_string()));
    assert!(paths.contains(&"pods/top.log".to_string()));
    assert!(paths.len() < 20, "{paths:?}");
    assert!(
        problems
            .iter()
            .any(|p| p == "DIR/pods/ns_a_1/db/up: a symbolic link loop (back to DIR/pods/ns_a_1); not followed"),
        "{problems:?}"
    );
    assert!(
        problems.iter().all(|p| p.contains("symbolic link loop")),
        "{problems:?}"
    );
    // A directory that is not there yet is said to be missing.
    let (paths, problems) = walked(root, "nothing/*/*.log");
    assert!(paths.is_empty());
    assert_eq!(
        problems,
        ["DIR/nothing: no such directory (yet); looking again at every poll"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_files_the_most_recently_written_are_followed_and_the_rest_wait() {
    let dir = tempfile::tempdir().unwrap();
    // Five files, 0.log written first, 4.log last.
    for n in 0..5 {
        std::fs::write(
            dir.path().join(format!("{n}.log")),
            format!("line of {n}\n"),
        )
        .unwrap();
        let written = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + n);
        File::options()
            .write(true)
            .open(dir.path().join(format!("{n}.log")))
            .unwrap()
            .set_modified(written)
            .unwrap();
    }
    let (tx, mut rx) = mpsc::channel(16);
    let (errors, mut problems) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let unfollowed = Arc::new(AtomicU64::new(0));
    let config = FileConfig {
        globs: vec![format!("{}/*.log", dir.path().display())],
        poll: Duration::from_millis(5),
        read_existing: true,
        checkpoints: Checkpoints::default(),
        max_files: 2,
        unfollowed: unfollowed.clone(),
        watermark: Default::default(),
    };
    let task = tokio::spawn(follow(config, tx, errors, stop_rx));
    let mut origins = Vec::new();
    for _ in 0..2 {
        let batch = rx.recv().await.unwrap();
        origins.push(batch.stream.origin.rsplit('/').next().unwrap().to_string());
    }
    origins.sort();
    assert_eq!(origins, ["3.log", "4.log"]);
    let problem = problems.recv().await.unwrap();
    assert!(problem.contains("--max-files 2"), "{problem}");
    assert_eq!(unfollowed.load(Ordering::Relaxed), 3);
    // Told once, not at every poll.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(problems.try_recv().is_err());
    // A followed file goes: the next most recent one takes its place.
    std::fs::remove_file(dir.path().join("4.log")).unwrap();
    let batch = rx.recv().await.unwrap();
    assert!(
        batch.stream.origin.ends_with("/2.log"),
        "{}",
        batch.stream.origin
    );
    assert_eq!(unfollowed.load(Ordering::Relaxed), 2);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_seen_at_once_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    std::fs::create_dir_all(pods.join("ns_pod_uid/db")).unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let (errors, mut problems) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let config = FileConfig {
        globs: vec![format!("{}/*/*/*.log", pods.display())],
        // Only file system events can wake it in time.
        poll: Duration::from_secs(3600),
        read_existing: true,
        checkpoints: Checkpoints::default(),
        max_files: DEFAULT_MAX_FILES,
        unfollowed: Arc::default(),
        watermark: Default::default(),
    };
    let task = tokio::spawn(follow(config, tx, errors, stop_rx));
    // A new directory and file, then a line in it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::create_dir_all(pods.join("ns_pod2_uid/db")).unwrap();
    let path = pods.join("ns_pod2_uid/db/0.log");
    std::fs::write(&path, "first\n").unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("seen long before the poll")
        .unwrap();
    assert_eq!(batch.lines, b"first\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"second\n")
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("seen long before the poll")
        .unwrap();
    assert_eq!(batch.lines, b"second\n");
    assert!(problems.try_recv().is_err(), "events were available");
    stop.send(true).unwrap();
    task.await.unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Stopping after any number of processed batches (what was read but
    /// not processed is not checkpointed) and resuming from the saved
    /// checkpoints, with lines written while stopped, reads every line
    /// exactly once.
    #[test]
    fn checkpoints_resume_exactly_once_from_any_cut(
        before in 1usize..4000,
        cut in 0.0f64..1.0,
        during in 0usize..500,
        line_len in 1usize..300,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let line = |i: usize| format!("{i:06} {}", "x".repeat(line_len));
        append(&log, (0..before).map(line));
        let glob = format!("{}/*.log", dir.path().display());
        let (first, checkpoints) = runtime.block_on(async {
            let mut running = start(&glob, Checkpoints::default(), true);
            running.until((before as f64 * cut) as usize).await;
            running.stop().await
        });
        append(&log, (before..before + during).map(line));
        let total = before + during;
        let seen: usize = first.values().map(Vec::len).sum();
        let second = runtime.block_on(async {
            let mut running = start(&glob, checkpoints, false);
            running.until(total - seen).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            while let Ok(batch) = running.rx.try_recv() {
                let text = String::from_utf8(batch.lines).unwrap();
                running.lines.entry(batch.stream.origin.clone()).or_default().extend(text.lines().map(str::to_string));
            }
            running.stop().await.0
        });
        let got = sorted(first.into_values().chain(second.into_values()).flatten());
        same(&got, &sorted((0..total).map(line)));
    }
}
