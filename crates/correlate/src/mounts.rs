//! A node's mount table (`/proc/self/mountinfo`): which block device backs
//! which Kubernetes volume, so a kernel error on `sdc` can be pinned on a
//! PersistentVolume and, through the inventory, on its PVC.

use std::collections::HashMap;

/// What a device is mounted as on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    /// The PersistentVolume name (`pvc-…`).
    pub pv: String,
    /// The UID of the pod the volume is mounted for.
    pub pod_uid: String,
}

/// Whether `head` (the start of a file) is a mountinfo table.
pub fn looks_like_mountinfo(head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(first);
    let fields: Vec<&str> = text.split(' ').collect();
    fields.len() >= 10
        && fields[0].bytes().all(|b| b.is_ascii_digit())
        && fields[1].bytes().all(|b| b.is_ascii_digit())
        && fields[2].contains(':')
        && fields.contains(&"-")
}

/// Device name (`sdc`, `dm-3`, without `/dev/`) → the pod volume it is
/// mounted as, from a mountinfo table. Lines that are not a kubelet CSI pod
/// volume (`…/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`) are skipped.
pub fn parse_mountinfo(text: &str) -> HashMap<String, VolumeMount> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let source = right.split(' ').nth(1).unwrap_or_default();
        let Some(device) = source.strip_prefix("/dev/") else {
            continue;
        };
        let parts: Vec<&str> = mount_point.split('/').collect();
        let (Some(pods), Some(csi)) = (
            parts.iter().position(|p| *p == "pods"),
            parts.iter().position(|p| *p == "kubernetes.io~csi"),
        ) else {
            continue;
        };
        if let (Some(uid), Some(pv)) = (parts.get(pods + 1), parts.get(csi + 1)) {
            out.insert(
                device.to_string(),
                VolumeMount {
                    pv: pv.to_string(),
                    pod_uid: uid.to_string(),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
20 1 0:19 / / ro,relatime - squashfs /dev/loop0 ro,errors=continue
39 36 8:32 / /var/lib/kubelet/plugins/kubernetes.io/csi/csi.san.synology.com/da99/globalmount rw,relatime shared:19 - ext4 /dev/sdc rw
60 36 8:32 / /var/lib/kubelet/pods/7fce4bee/volumes/kubernetes.io~csi/pvc-13ea/mount rw,relatime shared:19 - ext4 /dev/sdc rw
";

    #[test]
    fn kubelet_pod_volumes_are_found_by_device() {
        assert!(looks_like_mountinfo(TABLE.as_bytes()));
        assert!(!looks_like_mountinfo(
            b"2026-02-16T03:04:05Z stdout F 1 2 3:4 a b c d - e f"
        ));
        let mounts = parse_mountinfo(TABLE);
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            mounts["sdc"],
            VolumeMount {
                pv: "pvc-13ea".into(),
                pod_uid: "7fce4bee".into()
            }
        );
    }
}
