//! The cgroup v2 device filter: the v1 allow/deny rules compiled into an
//! eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE and attached to the
//! container's cgroup with bpf(2).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::{CgroupError, Result};

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95;

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The program: later rules take precedence (as in the v1 lists), a
/// leading "deny all" is the default.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut rules = rules.to_vec();
    let mut default = 1; // allow, as an empty v1 devices cgroup does
    if let Some(first) = rules.first() {
        if first.typ().is_none_or(|t| t.as_str() == "a")
            && first.major().is_none()
            && first.minor().is_none()
        {
            default = i32::from(first.allow());
            rules.remove(0);
        }
    }
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff), // r2 = device type
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16), // r3 = access
        insn(LDX_W, 4, 1, 4, 0),  // r4 = major
        insn(LDX_W, 5, 1, 8, 0),  // r5 = minor
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        match r.typ().map(|t| t.as_str().to_string()).as_deref() {
            Some("c") | Some("u") => block.push(insn(JNE_K, 2, 0, 0, 2)),
            Some("b") => block.push(insn(JNE_K, 2, 0, 0, 1)),
            _ => {}
        }
        let access = access_bits(r.access().as_deref().unwrap_or("rwm"));
        if access != 7 {
            block.push(insn(MOV_X, 1, 3, 0, 0));
            block.push(insn(AND_K, 1, 0, 0, !access & 7));
            block.push(insn(JNE_K, 1, 0, 0, 0));
        }
        if let Some(m) = r.major().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        block.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, b) in block.iter_mut().enumerate() {
            if b.code == JNE_K {
                b.off = (len - i - 1) as i16; // to the next rule
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV_K, 0, 0, 0, default));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    rest: [u64; 12],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    rest: [u64; 4],
}

fn bpf<T>(cmd: i64, attr: &T) -> std::io::Result<i64> {
    // SAFETY: attr is a valid, zero-padded bpf_attr prefix for `cmd`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// Load the filter for `rules` and attach it to the cgroup at `dir`.
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = program(rules);
    let err = |op: &'static str| move |e| CgroupError::io(op, dir, e);
    let load = ProgLoad {
        prog_type: 15, // BPF_PROG_TYPE_CGROUP_DEVICE
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: c"Apache".as_ptr() as u64,
        ..Default::default()
    };
    let fd = bpf(5 /* BPF_PROG_LOAD */, &load).map_err(err("load device filter for"))?;
    // SAFETY: the kernel returned a new fd.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg: OwnedFd = std::fs::File::open(dir).map_err(err("open"))?.into();
    let att = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: 6,  // BPF_CGROUP_DEVICE
        attach_flags: 2, // BPF_F_ALLOW_MULTI
        ..Default::default()
    };
    bpf(8 /* BPF_PROG_ATTACH */, &att).map_err(err("attach device filter to"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program on (type, access, major, minor).
    fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> i64 {
        let ctx = [typ | (access << 16), major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (d, s) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[d] = ctx[i.off as usize / 4] as i64,
                AND_K => r[d] &= i.imm as i64,
                RSH_K => r[d] >>= i.imm,
                MOV_K => r[d] = i.imm as i64,
                MOV_X => r[d] = r[s],
                JNE_K => {
                    if r[d] != i.imm as i64 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0],
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn default_rules_semantics() {
        let mut rules: Vec<LinuxDeviceCgroup> =
            vec![
                serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"}))
                    .unwrap(),
            ];
        rules.extend(crate::default_allowed_devices());
        let p = program(&rules);
        let (chr, blk) = (2, 1);
        let (m, r, w) = (1, 2, 4);
        assert_eq!(run(&p, chr, r | w, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&p, chr, r, 1, 11), 0, "/dev/kmsg read");
        assert_eq!(run(&p, chr, m, 1, 11), 1, "mknod of any char device");
        assert_eq!(run(&p, blk, r, 8, 0), 0, "block device read");
        assert_eq!(run(&p, chr, r | w, 136, 7), 1, "a pty");
        let deny_null: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}),
        )
        .unwrap();
        rules.push(deny_null);
        let p = program(&rules);
        assert_eq!(run(&p, chr, w, 1, 3), 0, "a later deny wins");
        assert_eq!(run(&p, chr, r, 1, 3), 1);
    }
}
