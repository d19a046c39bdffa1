//! Facts and fixtures on the host side: namespace inodes, helper
//! processes holding namespaces, shared mounts, the console socket.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Map, Value};

use crate::suite::Ctx;

pub const NAMESPACES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

pub fn ns_inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Annotations the probe needs: the runtime's namespaces (ours: the
/// runtime runs in them) and oom_score_adj.
pub fn annotations() -> Value {
    let mut m = Map::new();
    for (kind, proc_name) in NAMESPACES {
        if let Some(ino) = ns_inode(&format!("/proc/self/ns/{proc_name}")) {
            m.insert(format!("rtt/host-ns/{kind}"), json!(ino.to_string()));
        }
    }
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    m.insert("rtt/host-oom".into(), json!(oom.trim()));
    Value::Object(m)
}

/// A process holding new namespaces (`unshare` flags), killed when the
/// case ends.
pub fn ns_holder(ctx: &mut Ctx, flags: &[&str]) -> Result<u32, String> {
    let child: Child = Command::new("unshare")
        .args(flags)
        .args(["sleep", "300"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("unshare: {e}"))?;
    let pid = child.id();
    ctx.cleanups.push(Box::new(move || {
        let mut c = child;
        let _ = c.kill();
        let _ = c.wait();
    }));
    // unshare execs sleep once the namespaces exist.
    for _ in 0..200 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe.to_string_lossy().contains("sleep") {
            return Ok(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err("unshare did not exec sleep".into())
}

/// A tmpfs at `dir` made shared, unmounted when the case ends.
pub fn shared_mount(ctx: &mut Ctx, dir: &Path) -> Result<(), String> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount tmpfs {}: {e}", dir.display()))?;
    let owned = dir.to_path_buf();
    // A runtime that lets the container's mounts propagate back stacks
    // more mounts here: take them all off.
    ctx.cleanups.push(Box::new(move || {
        for _ in 0..100 {
            if umount2(&owned, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }));
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|e| format!("make-shared {}: {e}", dir.display()))
}

/// What came over a unix socket: the bytes and the first fd.
pub type Received = Result<(Vec<u8>, Option<OwnedFd>), String>;

/// Receive one fd over a unix socket (the console socket or the seccomp
/// listener), with the bytes that came with it.
pub fn recv_fd(listener: &UnixListener) -> Received {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;
    use std::os::fd::FromRawFd;
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut data = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 8]);
    let mut iov = [IoSliceMut::new(&mut data)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let mut fd = None;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for (i, raw) in fds.into_iter().enumerate() {
                // SAFETY: SCM_RIGHTS gave us these fds; each is owned once.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if i == 0 {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    data.truncate(n);
    Ok((data, fd))
}

/// Run a thread accepting one connection on `listener` with a deadline,
/// so a runtime that never connects cannot hang the suite.
pub fn accept_in_thread(listener: UnixListener) -> std::sync::mpsc::Receiver<Received> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(recv_fd(&listener));
    });
    rx
}

/// The major:minor of a block device of the host, for blkio cases.
pub fn block_device() -> Option<(u64, u64)> {
    let dir = std::fs::read_dir("/sys/block").ok()?;
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    let (ma, mi) = dev.trim().split_once(':')?;
    Some((ma.parse().ok()?, mi.parse().ok()?))
}

/// A veth pair on the host (the kernel may lack the dummy driver), the
/// first end with `addr`; deleted when the case ends.
pub fn veth(ctx: &mut Ctx, name: &str, addr: &str) -> Result<(), String> {
    let ip = |args: &[&str]| -> Result<(), String> {
        let o = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    let _ = ip(&["link", "del", name]);
    let peer = format!("{name}p");
    ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])?;
    let owned = name.to_string();
    ctx.cleanups.push(Box::new(move || {
        let _ = Command::new("ip").args(["link", "del", &owned]).output();
    }));
    ip(&["addr", "add", addr, "dev", name])
}
