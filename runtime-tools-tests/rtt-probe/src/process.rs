//! Checks on the process itself: identity, capabilities, limits,
//! scheduling, fds and terminal.

use serde_json::Value;

use crate::{annotation, at, procfs, Tap};

fn uname() -> (String, String) {
    // SAFETY: uname fills the zeroed struct we own.
    let u = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        u
    };
    let field = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (field(&u.nodename), field(&u.domainname))
}

pub fn hostname(c: &Value, t: &mut Tap) {
    let (host, domain) = uname();
    if let Some(h) = c["hostname"].as_str() {
        t.eq("hostname", h, &host);
    }
    if let Some(d) = c["domainname"].as_str() {
        t.eq("domainname", d, &domain);
    }
}

const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

pub fn rlimits(c: &Value, t: &mut Tap) {
    for r in at(c, &["process", "rlimits"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = r["type"].as_str().unwrap_or("");
        let Some(res) = RLIMITS.iter().position(|n| *n == name) else {
            t.ok(false, format!("{name}: not a resource the probe knows"));
            continue;
        };
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into l.
        let rc = unsafe { libc::getrlimit(res as _, &mut l) };
        t.ok(rc == 0, format!("getrlimit({name}) succeeds"));
        t.eq(
            &format!("{name} (soft, hard)"),
            (r["soft"].as_u64(), r["hard"].as_u64()),
            (Some(l.rlim_cur), Some(l.rlim_max)),
        );
    }
}

pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn cap_names(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

fn cap_set(caps: &Value, set: &str) -> u64 {
    caps[set]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|n| CAPS.iter().position(|c| *c == n))
        .fold(0, |m, i| m | (1 << i))
}

/// The five sets as configured are what the runtime sets before execve;
/// the probe sees them after, so the expectation follows the kernel's
/// execve rules (capabilities(7)) for a binary without file capabilities:
/// ambient is only what is also permitted and inheritable; root gets
/// bounding | inheritable, capped by the old permitted set under
/// no_new_privs; other users keep only ambient in permitted and effective.
pub fn capabilities(c: &Value, t: &mut Tap) {
    let caps = at(c, &["process", "capabilities"]);
    let (b, p, i, a) = (
        cap_set(caps, "bounding"),
        cap_set(caps, "permitted"),
        cap_set(caps, "inheritable"),
        cap_set(caps, "ambient"),
    );
    let a = a & p & i;
    let root = at(c, &["process", "user", "uid"]).as_u64().unwrap_or(0) == 0;
    let nnp = at(c, &["process", "noNewPrivileges"]).as_bool() == Some(true);
    let (p2, e2) = if root {
        let mut p2 = b | i | a;
        if nnp {
            p2 &= p;
        }
        (p2, p2)
    } else {
        (a, a)
    };
    for (set, field, want) in [
        ("bounding", "CapBnd", b),
        ("effective", "CapEff", e2),
        ("permitted", "CapPrm", p2),
        ("inheritable", "CapInh", i),
        ("ambient", "CapAmb", a),
    ] {
        let got = procfs::status(field)
            .and_then(|h| u64::from_str_radix(&h, 16).ok())
            .unwrap_or(u64::MAX);
        t.eq(
            &format!("capabilities.{set} after execve"),
            cap_names(want),
            cap_names(got),
        );
    }
}

pub fn user(c: &Value, t: &mut Tap) {
    let u = at(c, &["process", "user"]);
    // SAFETY: these getters cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let want_uid = u["uid"].as_u64().unwrap_or(0) as u32;
    let want_gid = u["gid"].as_u64().unwrap_or(0) as u32;
    t.eq("uid (real, effective)", (want_uid, want_uid), (uid, euid));
    t.eq("gid (real, effective)", (want_gid, want_gid), (gid, egid));
    let mut groups = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds 256 entries.
    let n = unsafe { libc::getgroups(256, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    for g in u["additionalGids"].as_array().into_iter().flatten() {
        let g = g.as_u64().unwrap_or(u64::MAX) as u32;
        t.ok(
            groups.contains(&g),
            format!("additional gid {g} in getgroups() = {groups:?}"),
        );
    }
    if let Some(m) = u["umask"].as_u64() {
        let got = procfs::status("Umask").and_then(|s| u64::from_str_radix(&s, 8).ok());
        t.eq("umask", Some(m), got);
    }
}

pub fn cwd(c: &Value, t: &mut Tap) {
    let want = at(c, &["process", "cwd"]).as_str().unwrap_or("/");
    let got = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    t.eq("cwd", procfs::clean(want), got);
}

pub fn env(c: &Value, t: &mut Tap) {
    let have: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    for e in at(c, &["process", "env"]).as_array().into_iter().flatten() {
        let e = e.as_str().unwrap_or("");
        t.ok(have.iter().any(|h| h == e), format!("env has {e:?}"));
    }
}

pub fn no_new_privs(c: &Value, t: &mut Tap) {
    let want = if at(c, &["process", "noNewPrivileges"]).as_bool() == Some(true) {
        "1"
    } else {
        "0"
    };
    t.eq(
        "NoNewPrivs",
        Some(want.to_string()),
        procfs::status("NoNewPrivs"),
    );
}

pub fn oom_score_adj(c: &Value, t: &mut Tap) {
    let got = std::fs::read_to_string("/proc/self/oom_score_adj")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    match at(c, &["process", "oomScoreAdj"]).as_i64() {
        Some(v) => t.eq("oom_score_adj", v.to_string(), got),
        None => t.eq(
            "oom_score_adj unchanged when oomScoreAdj is not set",
            annotation(c, "rtt/host-oom").unwrap_or("?").to_string(),
            got,
        ),
    }
}

const POLICIES: &[(&str, i32)] = &[
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

pub fn scheduler(c: &Value, t: &mut Tap) {
    let s = at(c, &["process", "scheduler"]);
    let Some(policy) = s["policy"].as_str() else {
        return;
    };
    let want = POLICIES.iter().find(|(n, _)| *n == policy).map(|p| p.1);
    // SAFETY: plain queries of the calling process.
    let got = unsafe { libc::sched_getscheduler(0) };
    t.eq("scheduler policy", want, Some(got));
    if let Some(nice) = s["nice"].as_i64() {
        // SAFETY: query of the calling process.
        let got = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        t.eq("scheduler nice", nice as i32, got);
    }
    if let Some(prio) = s["priority"].as_i64() {
        let mut p = libc::sched_param { sched_priority: -1 };
        // SAFETY: writes into p.
        unsafe { libc::sched_getparam(0, &mut p) };
        t.eq("scheduler priority", prio as i32, p.sched_priority);
    }
}

pub fn io_priority(c: &Value, t: &mut Tap) {
    let p = at(c, &["process", "ioPriority"]);
    let Some(class) = p["class"].as_str() else {
        return;
    };
    let class = match class {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        _ => -1,
    };
    let want = (class << 13) | p["priority"].as_i64().unwrap_or(0);
    // SAFETY: IOPRIO_WHO_PROCESS (1) of the calling process.
    let got = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    t.eq("ioprio_get", want, got);
}

/// `--preserve-fds N`: fds 3..3+N are open, and read back what the runner
/// wrote to them (annotation `rtt/preserved` holds the text per fd).
pub fn preserved_fds(c: &Value, t: &mut Tap) {
    let n: i32 = annotation(c, "rtt/preserve-fds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for fd in 3..3 + n {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}"));
        t.ok(link.is_ok(), format!("fd {fd} is open: {link:?}"));
    }
    // SAFETY: fcntl on an fd number only queries it.
    let next = unsafe { libc::fcntl(3 + n, libc::F_GETFD) };
    t.ok(next == -1, format!("fd {} is not open", 3 + n));
    // LISTEN_FDS is the runtime's to set only for socket activation.
}

pub fn terminal(c: &Value, t: &mut Tap) {
    let want = at(c, &["process", "terminal"]).as_bool() == Some(true);
    for fd in 0..3 {
        // SAFETY: isatty only queries the fd.
        let tty = unsafe { libc::isatty(fd) } == 1;
        t.eq(&format!("fd {fd} is a terminal"), want, tty);
    }
    if want {
        let link = std::fs::read_link("/proc/self/fd/0").unwrap_or_default();
        t.ok(
            link.starts_with("/dev/pts/"),
            format!("stdin is a pts: {}", link.display()),
        );
        if let (Some(h), Some(w)) = (
            at(c, &["process", "consoleSize", "height"]).as_u64(),
            at(c, &["process", "consoleSize", "width"]).as_u64(),
        ) {
            let mut ws = libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ fills the winsize we own.
            unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
            t.eq(
                "consoleSize (height, width)",
                (h, w),
                (ws.ws_row as u64, ws.ws_col as u64),
            );
        }
        let console = procfs::lstat("/dev/console");
        t.ok(
            console.is_some_and(|(m, _, _, _)| m & libc::S_IFMT == libc::S_IFCHR),
            "/dev/console is a character device (the pts)",
        );
    }
}

/// process.execCPUAffinity.final: the affinity the process runs with.
pub fn cpu_affinity(c: &Value, t: &mut Tap) {
    let Some(list) = at(c, &["process", "execCPUAffinity", "final"]).as_str() else {
        return;
    };
    let mut want = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            want.extend(a..=b);
        }
    }
    // SAFETY: sched_getaffinity fills the zeroed set we own.
    let got: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&i| libc::CPU_ISSET(i, &set))
            .collect()
    };
    t.eq("execCPUAffinity.final -> sched_getaffinity", want, got);
}
