//! A real fault, end to end: an ext4 file system on a loop device, mounted
//! with `errors=remount-ro` where kubelet would mount a CSI volume, holds
//! the data directory of a real PostgreSQL 15. The kernel is told to fail
//! the file system (`/sys/fs/ext4/<dev>/trigger_fs_error`): it remounts it
//! read-only, PostgreSQL's writes fail, and `faultline watch` — reading the
//! kernel log from /dev/kmsg and PostgreSQL's log in the kubelet layout,
//! with the node's mount table and an inventory that maps the volume to a
//! PVC — must get an alert naming that PVC into a real Alertmanager
//! within 60 s.
//!
//! Needs root, PostgreSQL 15 (/usr/lib/postgresql/15/bin), losetup,
//! mkfs.ext4 and prometheus-alertmanager; skipped with a message
//! otherwise (unless FAULTLINE_REQUIRE_TOOLS is set, as in CI). Loop
//! device, mount and server are cleaned up whatever happens.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, missing};
use serde_json::Value;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const POD_UID: &str = "7fce4bee-6f1c-4c5e-9d7b-2a1f0e9c3b51";
const PV: &str = "pvc-4f2a9c1e-8b3d-4e6f-a1c2-9d8e7f6a5b4c";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser runs")
}

/// Everything set up, torn down in reverse order when dropped.
#[derive(Default)]
struct Rig {
    loop_device: Option<String>,
    mount: Option<PathBuf>,
    pgdata: Option<PathBuf>,
    children: Vec<Child>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pgdata) = &self.pgdata {
            let ctl = format!("{PG_BIN}/pg_ctl");
            let _ = as_postgres(&[
                &ctl,
                "-D",
                pgdata.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ]);
        }
        if let Some(mount) = &self.mount {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
        if let Some(device) = &self.loop_device {
            let _ = Command::new("losetup").args(["-d", device]).status();
        }
    }
}

fn missing_tool() -> Option<String> {
    let root = run("id", &["-u"]) == "0";
    if !root {
        return Some("not root".into());
    }
    for (tool, path) in [
        ("PostgreSQL 15", format!("{PG_BIN}/initdb")),
        ("losetup", "/usr/sbin/losetup".into()),
        ("mkfs.ext4", "/usr/sbin/mkfs.ext4".into()),
        (
            "prometheus-alertmanager",
            "/usr/bin/prometheus-alertmanager".into(),
        ),
    ] {
        if !Path::new(&path).exists() {
            return Some(format!("{tool} ({path}) is not installed"));
        }
    }
    None
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a loop device can be had here (a capability of the machine,
/// not an install step: some containers have none).
fn loop_devices() -> bool {
    Command::new("losetup")
        .arg("-f")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_volume_that_really_goes_read_only_pages_with_its_pvc() {
    if missing_tool().is_none() && !loop_devices() {
        eprintln!("skipped: no free loop device on this machine");
        return;
    }
    let why = missing_tool();
    if missing(why.is_none(), why.as_deref().unwrap_or_default()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut rig = Rig::default();

    // A 64 MiB ext4 file system on a loop device, mounted where kubelet
    // mounts a CSI volume, failing read-only on errors.
    let image = root.join("disk.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let device = run("losetup", &["-f", "--show", image.to_str().unwrap()]);
    rig.loop_device = Some(device.clone());
    run("mkfs.ext4", &["-q", &device]);
    let mount = root.join(format!(
        "var/lib/kubelet/pods/{POD_UID}/volumes/kubernetes.io~csi/{PV}/mount"
    ));
    std::fs::create_dir_all(&mount).unwrap();
    run(
        "mount",
        &["-o", "errors=remount-ro", &device, mount.to_str().unwrap()],
    );
    rig.mount = Some(mount.clone());
    let dev_name = device.trim_start_matches("/dev/").to_string();

    // PostgreSQL 15 with its data directory on it, logging where kubelet
    // keeps the pod's log.
    let pgdata = mount.join("pgdata");
    std::fs::create_dir(&pgdata).unwrap();
    run(
        "chown",
        &["-R", "postgres:postgres", mount.to_str().unwrap()],
    );
    let log_dir = root.join(format!("var/log/pods/app_db-1_{POD_UID}/postgres"));
    std::fs::create_dir_all(&log_dir).unwrap();
    run(
        "chown",
        &[
            "-R",
            "postgres:postgres",
            root.join("var/log").to_str().unwrap(),
        ],
    );
    let log = log_dir.join("0.log");
    let initdb = as_postgres(&[
        &format!("{PG_BIN}/initdb"),
        "-D",
        pgdata.to_str().unwrap(),
        "-A",
        "trust",
    ]);
    assert!(
        initdb.status.success(),
        "{}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let pg_port = free_port().to_string();
    let started = as_postgres(&[
        &format!("{PG_BIN}/pg_ctl"),
        "-D",
        pgdata.to_str().unwrap(),
        "-l",
        log.to_str().unwrap(),
        "-o",
        &format!("-p {pg_port} -k /tmp -c listen_addresses=''"),
        "-w",
        "start",
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    rig.pgdata = Some(pgdata.clone());

    // The inventory: pod app/db-1 on node-1 uses PVC db-1, bound to the PV.
    let inventory = root.join("inventory.json");
    std::fs::write(
        &inventory,
        format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[
              {{"kind":"Pod","metadata":{{"name":"db-1","namespace":"app","uid":"{POD_UID}"}},
                "spec":{{"nodeName":"node-1","volumes":[{{"name":"pgdata","persistentVolumeClaim":{{"claimName":"db-1"}}}}],
                        "containers":[{{"name":"postgres","volumeMounts":[{{"name":"pgdata","mountPath":"/var/lib/postgresql/data"}}]}}]}}}},
              {{"kind":"PersistentVolumeClaim","metadata":{{"name":"db-1","namespace":"app"}},"spec":{{"volumeName":"{PV}"}}}}]}}"#
        ),
    )
    .unwrap();

    // A real Alertmanager.
    let am_port = free_port();
    let am_config = root.join("am.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    rig.children.push(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", root.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("alertmanager", Duration::from_secs(30), || {
        http_get(am_port, "/-/ready").is_some()
    });

    // faultline watching the node: kernel log, pod logs, mount table.
    rig.children.push(
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args([
                "watch",
                "--format",
                "json",
                "--poll",
                "100ms",
                "--listen",
                "127.0.0.1:0",
            ])
            .args([
                "--kmsg",
                "--node",
                "node-1",
                "--mounts",
                "/proc/self/mountinfo",
            ])
            .args([
                "--files",
                &format!("{}/var/log/pods/*/*/*.log", root.display()),
            ])
            .args(["--inventory", inventory.to_str().unwrap()])
            .args(["--alertmanager", &format!("http://127.0.0.1:{am_port}")])
            .args(["--resend-interval", "5s"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(1));

    // Break it: the kernel fails the file system and remounts it read-only;
    // PostgreSQL then fails to write.
    let broke_at = Instant::now();
    std::fs::write(
        format!("/sys/fs/ext4/{dev_name}/trigger_fs_error"),
        "faultline real-fault test\n",
    )
    .unwrap();
    let psql = format!("{PG_BIN}/psql");
    for _ in 0..3 {
        let _ = as_postgres(&[
            &psql,
            "-h",
            "/tmp",
            "-p",
            &pg_port,
            "-d",
            "postgres",
            "-c",
            "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1); CHECKPOINT;",
        ]);
    }

    let mut paged = None;
    wait_for("the alert in Alertmanager", Duration::from_secs(60), || {
        let alerts: Vec<Value> = http_get(am_port, "/api/v2/alerts")
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
            .unwrap_or_default();
        paged = alerts
            .into_iter()
            .find(|a| a["labels"]["pvc"] == "db-1" && a["labels"]["namespace"] == "app");
        paged.is_some()
    });
    let alert = paged.unwrap();
    assert!(broke_at.elapsed() < Duration::from_secs(60));
    assert_eq!(alert["labels"]["alertname"], "FaultlineVolumeReadOnly");
    assert_eq!(alert["labels"]["node"], "node-1");
    assert_eq!(alert["status"]["state"], "active");
    assert!(
        alert["annotations"]["remediation"]
            .as_str()
            .unwrap()
            .contains("kubectl delete pod db-1 -n app"),
        "{alert}"
    );
}
