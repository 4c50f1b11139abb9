//! Which disk each iSCSI session is, from a node's kernel log.
//!
//! The kernel's iSCSI errors name a session (`connection3:0: detected conn
//! error`, `session3: session recovery timed out`), not a disk. With the
//! software initiator (`iscsi_tcp`), logging in to a target creates one
//! SCSI host (`scsi host8: iSCSI Initiator over TCP/IP`) and one session,
//! both numbered in creation order since boot, and the disk behind it is
//! announced on that host (`sd 8:0:0:1: [sdd] Attached SCSI disk`). So the
//! k-th iSCSI host since boot is session k, and its disks are the
//! session's. The numbering restarts at boot (the kernel banner `Linux
//! version …`). This holds only for a log that starts at boot, as a
//! node's `dmesg` does, and `watch --kmsg --read-existing` on the node.

use std::collections::BTreeMap;

const INITIATOR: &[u8] = b": iSCSI Initiator over TCP/IP";
const ATTACHED: &[u8] = b"] Attached SCSI disk";
const BOOT: &[u8] = b"Linux version ";

/// The iSCSI hosts and disks seen so far in one kernel log.
#[derive(Debug, Default)]
pub struct IscsiTracker {
    /// iSCSI SCSI hosts in creation order: index + 1 is the session.
    hosts: Vec<u32>,
    /// SCSI host → disks attached on it.
    disks: BTreeMap<u32, Vec<String>>,
}

impl IscsiTracker {
    /// Takes in one buffer of whole lines, in log order.
    pub fn buffer(&mut self, buf: &[u8]) {
        let finder = memchr::memmem::Finder::new(b"SCSI");
        let mut at = 0;
        // Only lines with "SCSI" (or a boot banner) matter; find them fast.
        while let Some(found) = finder.find(&buf[at..]) {
            let start = memchr::memrchr(b'\n', &buf[..at + found]).map_or(0, |i| i + 1);
            let end =
                memchr::memchr(b'\n', &buf[at + found..]).map_or(buf.len(), |i| at + found + i);
            self.line(&buf[start..end]);
            at = end.min(buf.len());
            if at < buf.len() {
                at += 1;
            } else {
                break;
            }
        }
        if memchr::memmem::find(buf, BOOT).is_some() {
            // A reboot in the middle of the buffer: the sessions after it
            // are numbered afresh. Rare; re-read the buffer from the banner.
            let banner = memchr::memmem::rfind(buf, BOOT).unwrap_or(0);
            self.hosts.clear();
            self.disks.clear();
            let rest = &buf[banner..];
            let rest = memchr::memchr(b'\n', rest).map_or(&rest[rest.len()..], |i| &rest[i + 1..]);
            self.buffer(rest);
        }
    }

    fn line(&mut self, line: &[u8]) {
        if let Some(at) = memchr::memmem::find(line, INITIATOR) {
            // `scsi host8: iSCSI Initiator over TCP/IP`
            if let Some(host) = number_before(&line[..at], b"scsi host") {
                self.hosts.push(host);
            }
        } else if let Some(at) = memchr::memmem::find(line, ATTACHED) {
            // `sd 8:0:0:1: [sdd] Attached SCSI disk`
            let head = &line[..at];
            let Some(open) = memchr::memrchr(b'[', head) else {
                return;
            };
            let disk = &head[open + 1..];
            let Some(sd) = memchr::memmem::rfind(&head[..open], b"sd ") else {
                return;
            };
            let address = &head[sd + 3..open];
            let host = address
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u32, |n, &b| {
                    n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
                });
            if address.first().is_some_and(u8::is_ascii_digit)
                && !disk.is_empty()
                && disk.iter().all(u8::is_ascii_alphanumeric)
            {
                self.disks
                    .entry(host)
                    .or_default()
                    .push(String::from_utf8_lossy(disk).into_owned());
            }
        }
    }

    /// Continues this log with `next`, the tracker of its next part.
    pub fn follow(&mut self, next: IscsiTracker) {
        self.hosts.extend(next.hosts);
        for (host, disks) in next.disks {
            self.disks.entry(host).or_default().extend(disks);
        }
    }

    /// Session number → its disks.
    pub fn sessions(&self) -> Vec<(u32, Vec<String>)> {
        self.hosts
            .iter()
            .enumerate()
            .filter_map(|(i, host)| {
                let disks = self.disks.get(host)?;
                Some((u32::try_from(i + 1).ok()?, disks.clone()))
            })
            .collect()
    }
}

/// The decimal number right after the last `prefix` in `text`.
fn number_before(text: &[u8], prefix: &[u8]) -> Option<u32> {
    let at = memchr::memmem::rfind(text, prefix)? + prefix.len();
    let digits: &[u8] = &text[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kth_iscsi_host_since_boot_is_session_k_and_its_disks_are_the_sessions() {
        let log = b"10.0.10.21: kern:    info: [2026-02-09T06:12:45.51587528Z]: scsi host0: ahci\n\
10.0.10.21: kern:  notice: [2026-02-09T06:12:52.438509815Z]: sd 0:0:0:0: [sda] Attached SCSI disk\n\
10.0.10.21: kern:    info: [2026-02-09T06:14:33.017581712Z]: scsi host6: iSCSI Initiator over TCP/IP\n\
10.0.10.21: kern:  notice: [2026-02-09T06:14:33.091170632Z]: scsi 6:0:0:1: Direct-Access     SYNOLOGY iSCSI Storage    4.0  PQ: 0 ANSI: 5\n\
10.0.10.21: kern:  notice: [2026-02-09T06:14:33.102922937Z]: sd 6:0:0:1: [sdb] Attached SCSI disk\n";
        let more = b"[  812.000000] scsi host7: iSCSI Initiator over TCP/IP\n\
[  812.100000] sd 7:0:0:1: [sdc] Attached SCSI disk\n";
        let mut tracker = IscsiTracker::default();
        tracker.buffer(log);
        tracker.buffer(more);
        assert_eq!(
            tracker.sessions(),
            [(1, vec!["sdb".to_string()]), (2, vec!["sdc".to_string()])]
        );

        // After a reboot, sessions are numbered afresh.
        tracker.buffer(
            b"[    0.000000] Linux version 6.12.6-talos (root@buildkitsandbox)\n\
[   30.000000] scsi host3: iSCSI Initiator over TCP/IP\n\
[   30.100000] sd 3:0:0:1: [sdd] Attached SCSI disk\n",
        );
        assert_eq!(tracker.sessions(), [(1, vec!["sdd".to_string()])]);
    }
}
