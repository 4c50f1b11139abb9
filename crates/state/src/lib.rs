//! faultline's own state files (`--state-dir`): written so that a crash or
//! a power cut leaves the old file or the new one, never a torn one, and
//! read back so that a file that is damaged anyway (a full disk, a bad
//! block, someone's editor) never keeps faultline from starting.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What reading a state file found.
#[derive(Debug)]
pub enum Loaded<T> {
    /// There was none yet.
    Missing,
    /// It was read.
    Read(T),
    /// It could not be understood (empty, truncated, not this format): it
    /// was renamed to `to` so that it can be looked at, and the caller
    /// starts fresh.
    MovedAside { to: PathBuf, why: String },
}

impl<T> Loaded<T> {
    /// The value read, or `None`, and a warning to print when the file was
    /// moved aside.
    pub fn into_parts(self) -> (Option<T>, Option<String>) {
        match self {
            Loaded::Missing => (None, None),
            Loaded::Read(value) => (Some(value), None),
            Loaded::MovedAside { to, why } => (
                None,
                Some(format!(
                    "warning: the saved state could not be read ({why}); it was moved to {} \
                     and faultline starts without it",
                    to.display()
                )),
            ),
        }
    }
}

/// Reads `dir/name` as JSON. A file that does not parse is moved aside
/// (to `name.corrupt-SECONDS`) and reported as such; an error reading it
/// (permissions, I/O) is returned, naming the file.
pub fn load<T: DeserializeOwned>(dir: &Path, name: &str, now_secs: u64) -> io::Result<Loaded<T>> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(err) => {
            return Err(io::Error::new(
                err.kind(),
                format!("{}: {err}", path.display()),
            ));
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Loaded::Read(value)),
        Err(err) => {
            let why = if bytes.is_empty() {
                format!("{} is empty", path.display())
            } else {
                format!("{}: {err}", path.display())
            };
            let to = dir.join(format!("{name}.corrupt-{now_secs}"));
            std::fs::rename(&path, &to).map_err(|rename| {
                io::Error::new(
                    rename.kind(),
                    format!(
                        "{why}; moving it aside to {} failed: {rename}",
                        to.display()
                    ),
                )
            })?;
            Ok(Loaded::MovedAside { to, why })
        }
    }
}

/// Writes `value` as JSON to `dir/name`: to a temporary file readable by
/// its owner only, synced, renamed over the old one, and the directory
/// synced, so that the rename itself survives a power cut.
pub fn save<T: Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(name))?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Seconds since the Unix epoch, to name a file moved aside.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type State = BTreeMap<String, u64>;

    #[test]
    fn a_saved_state_reads_back_and_only_its_owner_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load::<State>(dir.path(), "s.json", 1).unwrap(),
            Loaded::Missing
        ));
        let state: State = [("a".to_string(), 1)].into();
        save(dir.path(), "s.json", &state).unwrap();
        match load::<State>(dir.path(), "s.json", 1).unwrap() {
            Loaded::Read(read) => assert_eq!(read, state),
            other => panic!("{other:?}"),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("s.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_empty_or_corrupt_state_is_moved_aside_and_named() {
        let dir = tempfile::tempdir().unwrap();
        for (content, says) in [(&b""[..], "is empty"), (&b"{\"a\": tru"[..], "s.json: ")] {
            std::fs::write(dir.path().join("s.json"), content).unwrap();
            let loaded = load::<State>(dir.path(), "s.json", 1_700_000_000).unwrap();
            let (value, warning) = loaded.into_parts();
            assert!(value.is_none());
            let warning = warning.unwrap();
            assert!(warning.contains(says), "{warning}");
            assert!(warning.contains("s.json.corrupt-1700000000"), "{warning}");
            assert!(!dir.path().join("s.json").exists());
            assert_eq!(
                std::fs::read(dir.path().join("s.json.corrupt-1700000000")).unwrap(),
                content
            );
        }
    }
}
