//! Records the git commit faultline is built from, for `--version`:
//! `$FAULTLINE_COMMIT` if set (a container build without `.git`), else
//! `git rev-parse --short=12 HEAD`, else `unknown`.

fn main() {
    println!("cargo:rerun-if-env-changed=FAULTLINE_COMMIT");
    let commit = std::env::var("FAULTLINE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    // A new commit changes HEAD (or the branch it points to).
    for path in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=FAULTLINE_COMMIT={commit}");
}
