//! `linux.netDevices`: move host network devices into the container's
//! network namespace (rtnetlink, written here: a few fixed messages), keep
//! their permanent global addresses and set them up (config-linux.md,
//! "Network Devices"). Runs in the parent while the init waits.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result};

const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const IFADDR: usize = 8;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

/// An address to restore after the move.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Addr {
    family: u8,
    prefix: u8,
    local: Vec<u8>,
    address: Vec<u8>,
    broadcast: Option<Vec<u8>>,
    flags: u32,
}

/// A NETLINK_ROUTE socket of the calling thread's network namespace.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align(buf.len()), 0);
}

fn ifinfo(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// Attributes of a message body after its fixed header of `fixed` bytes.
fn attrs(body: &[u8], fixed: usize) -> HashMap<u16, &[u8]> {
    let mut out = HashMap::new();
    let mut at = fixed;
    while at + 4 <= body.len() {
        let len = u16::from_ne_bytes([body[at], body[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([body[at + 2], body[at + 3]]);
        if len < 4 || at + len > body.len() {
            break;
        }
        out.insert(kind, &body[at + 4..at + len]);
        at += align(len);
    }
    out
}

impl Netlink {
    fn open() -> nix::Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends one request; returns the bodies of the answers (a dump's
    /// messages, or nothing for an acknowledged request).
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> nix::Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        msg.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut at = 0;
            while at + NLMSG_HDR <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                let typ = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
                if len < NLMSG_HDR || at + len > n {
                    return Err(Errno::EBADMSG);
                }
                let body = &buf[at + NLMSG_HDR..at + len];
                at += align(len);
                if seq != self.seq {
                    continue;
                }
                match typ as i32 {
                    libc::NLMSG_DONE => return Ok(out),
                    libc::NLMSG_ERROR => {
                        let code = body.get(..4).map_or(-libc::EBADMSG, |b| {
                            i32::from_ne_bytes(b.try_into().unwrap())
                        });
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    _ => out.push((typ, body.to_vec())),
                }
            }
        }
    }

    fn link_index(&mut self, name: &str) -> nix::Result<i32> {
        let mut body = ifinfo(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, format!("{name}\0").as_bytes());
        let answers = self.request(libc::RTM_GETLINK, libc::NLM_F_ACK as u16, &body)?;
        answers
            .iter()
            .find(|(t, b)| *t == libc::RTM_NEWLINK && b.len() >= IFINFO)
            .map(|(_, b)| i32::from_ne_bytes(b[4..8].try_into().unwrap()))
            .ok_or(Errno::ENODEV)
    }

    /// The indexes of every link of this namespace.
    fn link_indexes(&mut self) -> nix::Result<Vec<i32>> {
        let body = ifinfo(0, 0, 0);
        let answers = self.request(libc::RTM_GETLINK, libc::NLM_F_DUMP as u16, &body)?;
        Ok(answers
            .iter()
            .filter(|(t, b)| *t == libc::RTM_NEWLINK && b.len() >= IFINFO)
            .map(|(_, b)| i32::from_ne_bytes(b[4..8].try_into().unwrap()))
            .collect())
    }

    /// Permanent addresses of global scope on `index` (what moves with it).
    fn permanent_addrs(&mut self, index: i32) -> nix::Result<Vec<Addr>> {
        let body = vec![0u8; IFADDR];
        let flags = (libc::NLM_F_DUMP) as u16;
        let mut out = Vec::new();
        for (t, b) in self.request(libc::RTM_GETADDR, flags, &body)? {
            if t != libc::RTM_NEWADDR || b.len() < IFADDR {
                continue;
            }
            let idx = u32::from_ne_bytes(b[4..8].try_into().unwrap()) as i32;
            let a = attrs(&b, IFADDR);
            let mut fl = b[2] as u32;
            if let Some(f) = a.get(&IFA_FLAGS) {
                if let Some(b) = f.get(..4) {
                    fl = u32::from_ne_bytes(b.try_into().unwrap());
                }
            }
            if idx != index || b[3] != RT_SCOPE_UNIVERSE || fl & IFA_F_PERMANENT == 0 {
                continue;
            }
            let address = a.get(&IFA_ADDRESS).map(|v| v.to_vec()).unwrap_or_default();
            out.push(Addr {
                family: b[0],
                prefix: b[1],
                local: a
                    .get(&IFA_LOCAL)
                    .map(|v| v.to_vec())
                    .unwrap_or(address.clone()),
                address,
                broadcast: a.get(&IFA_BROADCAST).map(|v| v.to_vec()),
                flags: fl,
            });
        }
        Ok(out)
    }

    /// Moves `index` into the network namespace of `pid`, named `name`.
    fn move_to(&mut self, index: i32, pid: i32, name: &str) -> nix::Result<()> {
        let mut body = ifinfo(index, 0, 0);
        attr(&mut body, IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
        attr(&mut body, IFLA_IFNAME, format!("{name}\0").as_bytes());
        self.request(libc::RTM_NEWLINK, libc::NLM_F_ACK as u16, &body)
            .map(drop)
    }

    /// Moves `index` into the network namespace open at `ns_fd`, named `name`.
    fn move_to_ns_fd(&mut self, index: i32, ns_fd: i32, name: &str) -> nix::Result<()> {
        let mut body = ifinfo(index, 0, 0);
        attr(&mut body, IFLA_NET_NS_FD, &(ns_fd as u32).to_ne_bytes());
        attr(&mut body, IFLA_IFNAME, format!("{name}\0").as_bytes());
        self.request(libc::RTM_NEWLINK, libc::NLM_F_ACK as u16, &body)
            .map(drop)
    }

    fn set_up(&mut self, index: i32) -> nix::Result<()> {
        let up = libc::IFF_UP as u32;
        let body = ifinfo(index, up, up);
        self.request(libc::RTM_NEWLINK, libc::NLM_F_ACK as u16, &body)
            .map(drop)
    }

    fn add_addr(&mut self, index: i32, a: &Addr) -> nix::Result<()> {
        let mut body = vec![a.family, a.prefix, 0, RT_SCOPE_UNIVERSE];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        attr(&mut body, IFA_LOCAL, &a.local);
        attr(&mut body, IFA_ADDRESS, &a.address);
        if let Some(b) = &a.broadcast {
            attr(&mut body, IFA_BROADCAST, b);
        }
        attr(&mut body, IFA_FLAGS, &a.flags.to_ne_bytes());
        let flags = (libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(libc::RTM_NEWADDR, flags, &body).map(drop)
    }
}

fn field(host: &str) -> String {
    format!("linux.netDevices[{host:?}]")
}

/// Moves each device of `devices` (host name -> device) into the network
/// namespace of `pid`, with its permanent global addresses, and sets it up.
pub fn move_devices(devices: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let sys = |what: String| move |e: Errno| Error::sys(what, e);
    let own_ns = std::fs::File::open("/proc/self/ns/net")
        .map_err(|e| Error::io("open", "/proc/self/ns/net", e))?;
    let path = format!("/proc/{pid}/ns/net");
    let ctr_ns = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let mut host = Netlink::open().map_err(sys("netlink socket".into()))?;
    // A socket of the container's namespace: made there, used from here.
    setns(ctr_ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys(format!("setns {path}")))?;
    let ctr = Netlink::open();
    setns(own_ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(sys("setns back to the runtime's network namespace".into()))?;
    let mut ctr = ctr.map_err(sys("netlink socket in the container".into()))?;

    // Everything is checked before anything moves: a failure half-way
    // would leave devices in a namespace about to be destroyed.
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    let mut plan = Vec::new();
    for host_name in names {
        let f = field(host_name);
        let name = devices[host_name]
            .name()
            .clone()
            .unwrap_or_else(|| host_name.clone());
        let index = host
            .link_index(host_name)
            .map_err(|e| Error::config(&f, format!("no such device on the host ({e})")))?;
        let addrs = host
            .permanent_addrs(index)
            .map_err(sys(format!("{f}: list addresses")))?;
        // The kernel moves first and renames after: a name taken in the
        // container would leave the device there, under its host name.
        let taken = plan
            .iter()
            .any(|(_, n, _, _): &(String, String, i32, Vec<Addr>)| *n == name);
        if !name.contains('%') && (taken || ctr.link_index(&name).is_ok()) {
            return Err(Error::config(
                &f,
                format!("a device named {name:?} exists in the container already"),
            ));
        }
        plan.push((host_name.clone(), name, index, addrs));
    }
    let mut moved = Vec::new();
    for (host_name, name, index, addrs) in &plan {
        let r = move_one(
            &mut host,
            &mut ctr,
            pid,
            &field(host_name),
            name,
            *index,
            addrs,
        );
        if let Err(e) = r {
            // Back to the host those that went, under their own names.
            for (host_name, name, addrs) in moved {
                let _ = move_back(&mut host, &mut ctr, &own_ns, host_name, name, addrs);
            }
            return Err(e);
        }
        moved.push((host_name, name, addrs));
    }
    Ok(())
}

fn move_one(
    host: &mut Netlink,
    ctr: &mut Netlink,
    pid: i32,
    f: &str,
    name: &str,
    index: i32,
    addrs: &[Addr],
) -> Result<()> {
    let sys = |what: String| move |e: Errno| Error::sys(what, e);
    let template = name.contains('%');
    let before = if template {
        ctr.link_indexes()
            .map_err(sys(format!("{f}: list links")))?
    } else {
        Vec::new()
    };
    host.move_to(index, pid, name).map_err(|e| match e {
        Errno::EEXIST | Errno::ENFILE => Error::config(
            f,
            format!("a device named {name:?} exists in the container already"),
        ),
        e => Error::sys(format!("{f}: move into the container"), e),
    })?;
    // With a %d template the kernel chose the name: the device is the
    // link that was not there before (its index may have changed too).
    let idx = if template {
        let after = ctr
            .link_indexes()
            .map_err(sys(format!("{f}: list links")))?;
        *after
            .iter()
            .find(|i| !before.contains(i))
            .ok_or_else(|| Error::sys(format!("{f}: find the moved device"), Errno::ENODEV))?
    } else {
        ctr.link_index(name)
            .map_err(sys(format!("{f}: find {name:?} in the container")))?
    };
    for a in addrs {
        ctr.add_addr(idx, a)
            .map_err(sys(format!("{f}: restore an address")))?;
    }
    ctr.set_up(idx).map_err(sys(format!("{f}: set up")))
}

/// Undoes `move_one` (best effort, on a failed create).
fn move_back(
    host: &mut Netlink,
    ctr: &mut Netlink,
    own_ns: &std::fs::File,
    host_name: &str,
    name: &str,
    addrs: &[Addr],
) -> nix::Result<()> {
    let idx = ctr.link_index(name)?;
    ctr.move_to_ns_fd(idx, own_ns.as_raw_fd(), host_name)?;
    let index = host.link_index(host_name)?;
    for a in addrs {
        host.add_addr(index, a)?;
    }
    host.set_up(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_aligned() {
        let mut b = ifinfo(7, 1, 1);
        attr(&mut b, IFLA_IFNAME, b"eth0\0");
        attr(&mut b, IFLA_NET_NS_PID, &42u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = attrs(&b, IFINFO);
        assert_eq!(a[&IFLA_IFNAME], b"eth0\0");
        assert_eq!(a[&IFLA_NET_NS_PID], 42u32.to_ne_bytes());
    }

    #[test]
    fn loopback_is_found_on_the_host() {
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link_index("lo").unwrap(), 1);
        assert_eq!(nl.link_index("hullnosuch0"), Err(Errno::ENODEV));
    }
}
