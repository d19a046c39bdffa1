//! Scheduling of the container process: process.scheduler (sched_setattr),
//! process.ioPriority (ioprio_set) and execCPUAffinity.

use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag as Fl, LinuxSchedulerPolicy as P, Process,
};

use super::{errno_ctx, StepResult};

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// "0-3,5" -> cpu numbers.
pub fn cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn set_affinity(list: &str) -> StepResult {
    let cpus =
        cpu_list(list).ok_or_else(|| format!("execCPUAffinity: {list:?} is not a cpu list"))?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c)
            .map_err(|_| format!("execCPUAffinity: cpu {c} is out of range"))?;
    }
    errno_ctx(
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set),
        || format!("sched_setaffinity {list}"),
    )
}

/// Affinity before the process is in its cgroup (`initial`).
pub fn initial_affinity(process: &Process) -> StepResult {
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().clone())
    {
        Some(l) if !l.is_empty() => set_affinity(&l),
        _ => Ok(()),
    }
}

/// Scheduler, I/O priority and the final affinity.
pub fn apply(process: &Process) -> StepResult {
    if let Some(s) = process.scheduler() {
        let policy = match s.policy() {
            P::SchedOther => 0,
            P::SchedFifo => 1,
            P::SchedRr => 2,
            P::SchedBatch => 3,
            P::SchedIso => 4,
            P::SchedIdle => 5,
            P::SchedDeadline => 6,
        };
        let mut flags = 0u64;
        for f in s.flags().iter().flatten() {
            flags |= match f {
                Fl::SchedResetOnFork => 0x01,
                Fl::SchedFlagReclaim => 0x02,
                Fl::SchedFlagDLOverrun => 0x04,
                Fl::SchedFlagKeepPolicy => 0x08,
                Fl::SchedFlagKeepParams => 0x10,
                Fl::SchedFlagUtilClampMin => 0x20,
                Fl::SchedFlagUtilClampMax => 0x40,
            };
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy,
            flags,
            nice: s.nice().unwrap_or(0),
            priority: s.priority().unwrap_or(0) as u32,
            runtime: s.runtime().unwrap_or(0),
            deadline: s.deadline().unwrap_or(0),
            period: s.period().unwrap_or(0),
        };
        // SAFETY: attr is a valid sched_attr of the size it declares.
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        errno_ctx(nix::errno::Errno::result(r), || {
            format!("sched_setattr {:?}", s.policy())
        })?;
    }
    if let Some(io) = process.io_priority() {
        let class: i64 = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        let prio = (class << 13) | (io.priority() & 0x1fff);
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, prio) takes integers.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, prio) };
        errno_ctx(nix::errno::Errno::result(r), || {
            format!("ioprio_set class {class} priority {}", io.priority())
        })?;
    }
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().clone())
    {
        Some(l) if !l.is_empty() => set_affinity(&l),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(super::cpu_list("1"), Some(vec![1]));
        assert_eq!(super::cpu_list("x"), None);
    }
}
