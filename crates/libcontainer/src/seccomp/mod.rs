//! `linux.seccomp` -> a BPF program, compiled in the parent and loaded by
//! the init just before execve. With SCMP_ACT_NOTIFY rules the load returns
//! a notify fd, which the parent hands to the agent at `listenerPath`
//! ([`listener`]).

mod bpf;
pub mod listener;
mod syscalls;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F,
    LinuxSeccompOperator as O,
};

pub use bpf::Insn;
use bpf::{Cond, Op, Rule};

use crate::error::{Error, Result};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: u32 = 0x4000_0000;

const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// A compiled filter and the flags to load it with.
#[derive(Debug, Clone)]
pub struct Filter {
    pub prog: Vec<Insn>,
    pub flags: u32,
    /// Where the notify fd goes, when a rule uses SCMP_ACT_NOTIFY.
    pub listener: Option<Listener>,
}

/// The seccomp agent of `listenerPath`, and its `listenerMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

fn action(a: A, errno: Option<u32>, default_errno: u32) -> Result<u32> {
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => 0x0000_0000,
        A::ScmpActKillProcess => 0x8000_0000,
        A::ScmpActTrap => 0x0003_0000,
        A::ScmpActErrno => 0x0005_0000 | (errno.unwrap_or(default_errno) & 0xffff),
        A::ScmpActTrace => 0x7ff0_0000 | (errno.unwrap_or(default_errno) & 0xffff),
        A::ScmpActLog => 0x7ffc_0000,
        A::ScmpActAllow => 0x7fff_0000,
        A::ScmpActNotify => RET_USER_NOTIF,
    })
}

fn op(o: O) -> Op {
    match o {
        O::ScmpCmpNe => Op::Ne,
        O::ScmpCmpLt => Op::Lt,
        O::ScmpCmpLe => Op::Le,
        O::ScmpCmpEq => Op::Eq,
        O::ScmpCmpGe => Op::Ge,
        O::ScmpCmpGt => Op::Gt,
        O::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| table[i].1)
}

/// Actions that return an errno (`errnoRet` applies to them only).
fn takes_errno(a: A) -> bool {
    matches!(a, A::ScmpActErrno | A::ScmpActTrace)
}

/// The MUSTs of config-linux.md "Seccomp" a profile can break.
fn validate(s: &LinuxSeccomp) -> Result<()> {
    if s.default_errno_ret().is_some() && !takes_errno(s.default_action()) {
        return Err(Error::config(
            "linux.seccomp.defaultErrnoRet",
            format!("{:?} does not return an errno", s.default_action()),
        ));
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        if sc.names().is_empty() {
            return Err(Error::config(
                format!("linux.seccomp.syscalls[{i}].names"),
                "must contain at least one entry",
            ));
        }
        if sc.errno_ret().is_some() && !takes_errno(sc.action()) {
            return Err(Error::config(
                format!("linux.seccomp.syscalls[{i}].errnoRet"),
                format!("{:?} does not return an errno", sc.action()),
            ));
        }
    }
    Ok(())
}

/// The ABIs a filter covers on one kind of host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// x86_64, with the x86 (i386) and x32 compat ABIs.
    X86_64,
    /// aarch64 (32-bit arm compat tasks have no table here: they get the
    /// filter's kill for an unknown architecture).
    Aarch64,
}

impl Target {
    pub fn host() -> Target {
        if cfg!(target_arch = "aarch64") {
            Target::Aarch64
        } else {
            Target::X86_64
        }
    }
}

const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// Compile `linux.seccomp` for this host.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    compile_for(s, Target::host())
}

/// Compile `linux.seccomp` for `target` (x86_64: with its x86 and x32
/// compat ABIs when the profile lists them).
pub fn compile_for(s: &LinuxSeccomp, target: Target) -> Result<Filter> {
    validate(s)?;
    let listener = listener_of(s)?;
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        libc::EPERM as u32,
    )?;
    let arches = s.architectures().clone().unwrap_or_default();
    let want = |a: Arch| {
        arches.is_empty() || arches.contains(&a) || arches.contains(&Arch::ScmpArchNative)
    };
    let (native_table, native_audit) = match target {
        Target::X86_64 => (syscalls::X86_64, AUDIT_ARCH_X86_64),
        Target::Aarch64 => (syscalls::AARCH64, AUDIT_ARCH_AARCH64),
    };
    let mut native = Vec::new();
    let mut x86 = Vec::new();
    let with_x32 = target == Target::X86_64 && arches.contains(&Arch::ScmpArchX32);
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let act = action(sc.action(), sc.errno_ret(), default_errno).map_err(|e| {
            Error::config(format!("linux.seccomp.syscalls[{i}].action"), e.to_string())
        })?;
        let args = sc.args().clone().unwrap_or_default();
        let mut conds = Vec::new();
        for a in &args {
            if a.index() > 5 {
                return Err(Error::config(
                    format!("linux.seccomp.syscalls[{i}].args"),
                    format!("index {} is above 5", a.index()),
                ));
            }
            conds.push(Cond {
                index: a.index() as u32,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        // As runc: several conditions on one argument are alternatives
        // (one rule each); otherwise they all must hold (one rule).
        let repeated = (0..6).any(|ix| conds.iter().filter(|c| c.index == ix).count() > 1);
        let groups: Vec<Vec<Cond>> = if repeated {
            conds.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            for g in &groups {
                let rule = |nr| Rule {
                    nr,
                    conds: g.clone(),
                    action: act,
                };
                if let Some(nr) = lookup(native_table, name) {
                    native.push(rule(nr));
                    if with_x32 {
                        native.push(rule(nr | X32_BIT));
                    }
                }
                if target == Target::X86_64 {
                    if let Some(nr) = lookup(syscalls::X86, name) {
                        x86.push(rule(nr));
                    }
                }
            }
        }
    }
    // Conditional rules before the unconditional ones of the same syscall.
    for rules in [&mut native, &mut x86] {
        rules.sort_by_key(|r| r.conds.is_empty());
    }
    // The native ABI is always filtered, listed or not (libseccomp's
    // filters start with it, so runc's do).
    let mut sections = Vec::new();
    {
        if target == Target::X86_64 && !with_x32 {
            // x32 syscalls share the x86_64 audit arch: refuse them as the default does.
            native.insert(
                0,
                Rule {
                    nr: X32_BIT,
                    conds: vec![],
                    action: default,
                },
            );
        }
        sections.push((native_audit, native));
    }
    if target == Target::X86_64 && want(Arch::ScmpArchX86) {
        sections.push((AUDIT_ARCH_I386, x86));
    }
    let prog = bpf::program(&sections, default, 0x8000_0000);
    if prog.len() > 4096 {
        return Err(Error::config(
            "linux.seccomp",
            format!("the filter has {} instructions (max 4096)", prog.len()),
        ));
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC as u32,
            F::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG as u32,
            F::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
            F::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        };
    }
    const TSYNC_ESRCH: u32 = 1 << 4;
    const WAIT_KILLABLE_RECV: u32 = 1 << 5;
    if listener.is_some() {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
        // The kernel takes TSYNC with a listener only with TSYNC_ESRCH.
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
            flags |= TSYNC_ESRCH;
        }
    } else {
        // Meaningful (and accepted by the kernel) only with a listener.
        flags &= !WAIT_KILLABLE_RECV;
    }
    Ok(Filter {
        prog,
        flags,
        listener,
    })
}

/// The listener when a rule notifies; the checks runc makes on it.
fn listener_of(s: &LinuxSeccomp) -> Result<Option<Listener>> {
    let path = s.listener_path().clone();
    let metadata = s.listener_metadata().clone();
    if metadata.is_some() && path.is_none() {
        return Err(Error::config(
            "linux.seccomp.listenerMetadata",
            "set without listenerPath",
        ));
    }
    if s.default_action() == A::ScmpActNotify {
        return Err(Error::config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut notifies = false;
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        if sc.action() != A::ScmpActNotify {
            continue;
        }
        notifies = true;
        // The runtime itself writes after the filter is loaded (as runc),
        // and sends the notify fd with sendmsg: no agent could answer that.
        if let Some(n) = sc.names().iter().find(|n| *n == "write" || *n == "sendmsg") {
            return Err(Error::config(
                format!("linux.seccomp.syscalls[{i}]"),
                format!("SCMP_ACT_NOTIFY cannot be used for the {n} syscall"),
            ));
        }
    }
    match (notifies, path) {
        (false, _) => Ok(None),
        (true, None) => Err(Error::config(
            "linux.seccomp.listenerPath",
            "required when a rule uses SCMP_ACT_NOTIFY",
        )),
        (true, Some(path)) => Ok(Some(Listener { path, metadata })),
    }
}

/// Load the filter into this thread (seccomp(2), SECCOMP_SET_MODE_FILTER);
/// with a listener, the notify fd it returns.
pub fn load(f: &Filter) -> nix::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: f.prog.len() as u16,
        filter: f.prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at f.prog, whose Insn layout is struct sock_filter.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1, /* SET_MODE_FILTER */
            f.flags,
            &prog as *const libc::sock_fprog,
        )
    };
    let r = nix::errno::Errno::result(r)?;
    Ok(f.listener.as_ref().map(|_| {
        // SAFETY: with NEW_LISTENER, seccomp returned a new fd we own.
        unsafe { OwnedFd::from_raw_fd(r as i32) }
    }))
}

#[cfg(test)]
mod tests {
    use super::bpf::interp::run;
    use super::*;

    fn filter(v: serde_json::Value) -> Filter {
        compile(&serde_json::from_value(v).unwrap()).unwrap()
    }

    const ALLOW: u32 = 0x7fff_0000;

    #[test]
    fn names_actions_and_arches() {
        let f = filter(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["getpid", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        }));
        let x64 = AUDIT_ARCH_X86_64;
        assert_eq!(run(&f.prog, 39, x64, [0; 6]), ALLOW, "getpid");
        assert_eq!(
            run(&f.prog, 20, AUDIT_ARCH_I386, [0; 6]),
            ALLOW,
            "i386 getpid"
        );
        assert_eq!(
            run(&f.prog, 83, x64, [0; 6]),
            0x0005_000d,
            "mkdir -> EACCES"
        );
        assert_eq!(run(&f.prog, 62, x64, [0; 6]), 0x8000_0000, "kill");
        assert_eq!(
            run(&f.prog, 135, x64, [8, 0, 0, 0, 0, 0]),
            ALLOW,
            "personality(8): OR of conditions"
        );
        assert_eq!(run(&f.prog, 135, x64, [0; 6]), ALLOW);
        assert_eq!(run(&f.prog, 135, x64, [4, 0, 0, 0, 0, 0]), 0x0005_0026);
        assert_eq!(
            run(&f.prog, 0, x64, [0; 6]),
            0x0005_0026,
            "read -> default ENOSYS"
        );
        assert_eq!(
            run(&f.prog, 39 | X32_BIT, x64, [0; 6]),
            0x0005_0026,
            "x32 not listed"
        );
        assert_eq!(
            run(&f.prog, 39, 0xc000_00b7, [0; 6]),
            0x8000_0000,
            "aarch64 not listed"
        );
    }

    #[test]
    fn notify_needs_a_listener_and_asks_for_one() {
        let parse = |v: serde_json::Value| -> LinuxSeccomp { serde_json::from_value(v).unwrap() };
        let err = |v| compile(&parse(v)).unwrap_err().to_string();
        let rule = serde_json::json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
        assert!(
            err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}))
                .contains("listenerPath")
        );
        assert!(err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerMetadata": "x"}))
        .contains("listenerMetadata"));
        assert!(err(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY",
            "listenerPath": "/a.sock"}))
        .contains("defaultAction"));
        assert!(err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/a.sock",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}))
        .contains("syscalls[0]"));

        let f = compile(&parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/a.sock", "listenerMetadata": "m", "syscalls": rule}),
        ))
        .unwrap();
        assert_eq!(f.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32, 8);
        assert_eq!(f.listener.as_ref().unwrap().metadata.as_deref(), Some("m"));
        let mkdir = lookup(syscalls::X86_64, "mkdir").unwrap();
        assert_eq!(
            run(&f.prog, mkdir, AUDIT_ARCH_X86_64, [0; 6]),
            RET_USER_NOTIF
        );
        // No NOTIFY rule: the listener is ignored, no fd is asked for.
        let f = compile(&parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/a.sock"}),
        ))
        .unwrap();
        assert!(f.listener.is_none() && f.flags == 0);
    }

    #[test]
    fn aarch64_filters_by_its_own_numbers() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS",
                 "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        let f = compile_for(&s, Target::Aarch64).unwrap();
        let a64 = AUDIT_ARCH_AARCH64;
        // mkdirat is 34 on aarch64 (mkdir does not exist there: skipped).
        assert_eq!(run(&f.prog, 34, a64, [0; 6]), 0x0005_000d);
        assert_eq!(run(&f.prog, 83, a64, [0; 6]), ALLOW, "83 is not mkdir here");
        assert_eq!(run(&f.prog, 64, a64, [9, 0, 0, 0, 0, 0]), 0x8000_0000);
        assert_eq!(run(&f.prog, 64, a64, [1, 0, 0, 0, 0, 0]), ALLOW);
        // Native even though only x86_64 is listed (as libseccomp); x86_64
        // tasks do not exist on such a host: unknown arch, killed.
        assert_eq!(run(&f.prog, 83, AUDIT_ARCH_X86_64, [0; 6]), 0x8000_0000);
        assert_eq!(lookup(syscalls::AARCH64, "openat"), Some(56));
        assert_eq!(lookup(syscalls::AARCH64, "open"), None);
    }

    #[test]
    fn native_abi_is_filtered_when_only_compat_is_listed() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap();
        let f = compile_for(&s, Target::X86_64).unwrap();
        assert_eq!(run(&f.prog, 83, AUDIT_ARCH_X86_64, [0; 6]), 0x0005_0001);
        assert_eq!(run(&f.prog, 39, AUDIT_ARCH_I386, [0; 6]), 0x0005_0001);
    }

    #[test]
    fn table_is_sorted() {
        for t in [syscalls::X86_64, syscalls::X86, syscalls::AARCH64] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(lookup(syscalls::X86_64, "getpid"), Some(39));
    }
}
