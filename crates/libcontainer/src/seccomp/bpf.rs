//! A small classic-BPF assembler for seccomp filters: per architecture a
//! list of rules (syscall number, argument conditions, action), first match
//! wins, then the default action.

/// `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;

fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
fn arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

/// An argument comparison, as in the OCI spec (unsigned 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u32,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub conds: Vec<Cond>,
    /// SECCOMP_RET_* value.
    pub action: u32,
}

/// Jump targets inside one rule's block, resolved when it is closed.
#[derive(Clone, Copy)]
enum Target {
    Next,
    Fail,
}

struct Block {
    insns: Vec<(Insn, Option<Target>, Option<Target>)>,
}

impl Block {
    fn ld(&mut self, off: u32) {
        self.insns.push((
            Insn {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: off,
            },
            None,
            None,
        ));
    }
    fn and(&mut self, k: u32) {
        self.insns.push((
            Insn {
                code: AND_K,
                jt: 0,
                jf: 0,
                k,
            },
            None,
            None,
        ));
    }
    /// Conditional jump by fixed offsets within a condition.
    fn fixed(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.insns.push((Insn { code, jt, jf, k }, None, None));
    }
    /// Conditional jump: to the next instruction or to `Fail`.
    fn jmp(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push((
            Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            Some(jt),
            Some(jf),
        ));
    }
}

/// One 64-bit condition; falls through when it holds, jumps to Fail if not.
fn cond(b: &mut Block, c: &Cond) {
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    use Target::*;
    match c.op {
        Op::Eq | Op::MaskedEq => {
            let (mhi, mlo, vhi, vlo) = if c.op == Op::MaskedEq {
                (hi, lo, (c.value_two >> 32) as u32, c.value_two as u32)
            } else {
                (u32::MAX, u32::MAX, hi, lo)
            };
            b.ld(arg_hi(c.index));
            if mhi != u32::MAX {
                b.and(mhi);
            }
            b.jmp(JEQ_K, vhi, Next, Fail);
            b.ld(arg_lo(c.index));
            if mlo != u32::MAX {
                b.and(mlo);
            }
            b.jmp(JEQ_K, vlo, Next, Fail);
        }
        Op::Ne => {
            // Holds unless both words are equal: a different hi word skips
            // the lo test.
            b.ld(arg_hi(c.index));
            b.fixed(JEQ_K, hi, 0, 2);
            b.ld(arg_lo(c.index));
            b.jmp(JEQ_K, lo, Fail, Next);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // hi > vhi decides; hi == vhi compares lo; hi < vhi decides.
            let hi_wins = matches!(c.op, Op::Gt | Op::Ge); // true when arg is bigger
            let lo_code = match c.op {
                Op::Gt | Op::Le => JGT_K,
                _ => JGE_K,
            };
            b.ld(arg_hi(c.index));
            // if hi > vhi: result = hi_wins
            if hi_wins {
                b.fixed(JGT_K, hi, 3, 0);
            } else {
                b.jmp(JGT_K, hi, Fail, Next);
            }
            // if hi != vhi (so hi < vhi): result = !hi_wins
            if hi_wins {
                b.jmp(JEQ_K, hi, Next, Fail);
            } else {
                b.fixed(JEQ_K, hi, 0, 2);
            }
            b.ld(arg_lo(c.index));
            // lo test: Gt/Ge hold when lo >/>= v; Lt/Le hold when not (lo >= / > v).
            if hi_wins {
                b.jmp(lo_code, lo, Next, Fail);
            } else {
                b.jmp(lo_code, lo, Fail, Next);
            }
        }
    }
}

/// Instructions for one rule: match nr, check conditions, return action;
/// any mismatch falls through to the next rule.
fn rule_block(r: &Rule) -> Vec<Insn> {
    let mut b = Block { insns: Vec::new() };
    b.ld(OFF_NR);
    b.jmp(JEQ_K, r.nr, Target::Next, Target::Fail);
    for c in &r.conds {
        cond(&mut b, c);
    }
    b.insns.push((
        Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: r.action,
        },
        None,
        None,
    ));
    let len = b.insns.len();
    b.insns
        .iter()
        .enumerate()
        .map(|(i, (insn, jt, jf))| {
            let to = |t: &Option<Target>, cur: u8| match t {
                None => cur,
                Some(Target::Next) => 0,
                Some(Target::Fail) => (len - i - 1) as u8,
            };
            Insn {
                jt: to(jt, insn.jt),
                jf: to(jf, insn.jf),
                ..*insn
            }
        })
        .collect()
}

/// Unconditional rules as sorted, non-overlapping intervals of syscall
/// numbers covering 0..=u32::MAX (first rule for a number wins; gaps take
/// `default`), adjacent equal actions merged.
fn intervals(rules: &[Rule], default: u32) -> Vec<(u32, u32)> {
    let mut first: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
    for r in rules.iter().filter(|r| r.conds.is_empty()) {
        first.entry(r.nr).or_insert(r.action);
    }
    // (start, action) of each interval.
    let mut out: Vec<(u32, u32)> = vec![(0, default)];
    for (&nr, &action) in &first {
        if out.last().map(|l| l.1) != Some(action) {
            if out.last().map(|l| l.0) == Some(nr) {
                out.pop();
            }
            if out.last().map(|l| l.1) != Some(action) {
                out.push((nr, action));
            }
        }
        if nr < u32::MAX
            && !first.contains_key(&(nr + 1))
            && out.last().map(|l| l.1) != Some(default)
        {
            out.push((nr + 1, default));
        }
    }
    out
}

/// A binary search over the intervals on the syscall number in A.
fn tree(iv: &[(u32, u32)]) -> Vec<Insn> {
    if iv.len() == 1 {
        return vec![Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: iv[0].1,
        }];
    }
    let mid = iv.len() / 2;
    let left = tree(&iv[..mid]);
    let right = tree(&iv[mid..]);
    // A >= boundary: jump over the left half (long jumps go through JA).
    let mut out = vec![
        Insn {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: iv[mid].0,
        },
        Insn {
            code: JA,
            jt: 0,
            jf: 0,
            k: left.len() as u32,
        },
    ];
    out.extend(left);
    out.extend(right);
    out
}

/// A program: for each (audit arch, rules) check the arch, run the rules
/// with conditions in order, then a binary search over the unconditional
/// ones; unknown arches get `bad_arch`.
pub fn program(arches: &[(u32, Vec<Rule>)], default: u32, bad_arch: u32) -> Vec<Insn> {
    let mut out = vec![Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: OFF_ARCH,
    }];
    for (arch, rules) in arches {
        let mut body: Vec<Insn> = Vec::new();
        for r in rules.iter().filter(|r| !r.conds.is_empty()) {
            body.extend(rule_block(r));
        }
        body.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: OFF_NR,
        });
        body.extend(tree(&intervals(rules, default)));
        // jeq arch -> body; else ja over the body to the next arch check.
        out.push(Insn {
            code: JEQ_K,
            jt: 1,
            jf: 0,
            k: *arch,
        });
        out.push(Insn {
            code: JA,
            jt: 0,
            jf: 0,
            k: body.len() as u32,
        });
        out.extend(body);
        out.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: OFF_ARCH,
        });
    }
    out.push(Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: bad_arch,
    });
    out
}

#[cfg(test)]
pub mod interp {
    //! A BPF interpreter for testing programs without loading them.
    use super::*;

    pub fn run(prog: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    acc =
                        u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap())
                }
                AND_K => acc &= i.k,
                RET_K => return i.k,
                JA => pc += i.k as usize,
                JEQ_K | JGT_K | JGE_K => {
                    let t = match i.code {
                        JEQ_K => acc == i.k,
                        JGT_K => acc > i.k,
                        _ => acc >= i.k,
                    };
                    pc += if t { i.jt } else { i.jf } as usize;
                }
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interp::run;
    use super::*;

    const ARCH: u32 = 0xc000_003e;
    const ALLOW: u32 = 0x7fff_0000;
    const DENY: u32 = 0x0005_0001;

    fn one(op: Op, value: u64, value_two: u64) -> Vec<Insn> {
        let r = Rule {
            nr: 7,
            conds: vec![Cond {
                index: 1,
                op,
                value,
                value_two,
            }],
            action: ALLOW,
        };
        program(&[(ARCH, vec![r])], DENY, 0)
    }

    #[test]
    fn every_operator_on_64_bit_values() {
        let big = 0x1_0000_0005u64;
        let values = [
            0u64,
            4,
            5,
            6,
            0x1_0000_0004,
            big,
            0x1_0000_0006,
            0x2_0000_0000,
            u64::MAX,
        ];
        for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
            let p = one(op, big, 0);
            for &a in &values {
                let want = match op {
                    Op::Eq => a == big,
                    Op::Ne => a != big,
                    Op::Lt => a < big,
                    Op::Le => a <= big,
                    Op::Gt => a > big,
                    Op::Ge => a >= big,
                    Op::MaskedEq => unreachable!(),
                };
                let got = run(&p, 7, ARCH, [0, a, 0, 0, 0, 0]) == ALLOW;
                assert_eq!(got, want, "{op:?} arg {a:#x}");
            }
        }
        let p = one(Op::MaskedEq, 0xff00_0000_00f0, 0x1200_0000_0030);
        assert_eq!(run(&p, 7, ARCH, [0, 0x1234_0000_0036, 0, 0, 0, 0,]), ALLOW);
        assert_eq!(run(&p, 7, ARCH, [0, 0x1234_0000_0046, 0, 0, 0, 0]), DENY);
        assert_eq!(run(&p, 7, ARCH, [0, 0x1334_0000_0036, 0, 0, 0, 0]), DENY);
    }

    #[test]
    fn first_match_default_and_arch() {
        let rules = vec![
            Rule {
                nr: 1,
                conds: vec![],
                action: DENY,
            },
            Rule {
                nr: 2,
                conds: vec![],
                action: ALLOW,
            },
        ];
        let p = program(&[(ARCH, rules)], 0x0005_0026, 0);
        assert_eq!(run(&p, 1, ARCH, [0; 6]), DENY);
        assert_eq!(run(&p, 2, ARCH, [0; 6]), ALLOW);
        assert_eq!(run(&p, 3, ARCH, [0; 6]), 0x0005_0026);
        assert_eq!(run(&p, 2, 0x4000_0003, [0; 6]), 0, "unknown arch");
    }

    #[test]
    fn interval_search_matches_a_linear_scan() {
        let acts = [ALLOW, DENY, 0x0005_0026];
        let mut rules = Vec::new();
        let mut seed = 12345u32;
        for _ in 0..300 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let nr = (seed >> 8) % 500;
            rules.push(Rule {
                nr,
                conds: vec![],
                action: acts[(seed % 3) as usize],
            });
        }
        rules.push(Rule {
            nr: u32::MAX,
            conds: vec![],
            action: ALLOW,
        });
        let p = program(&[(ARCH, rules.clone())], DENY, 0);
        for nr in (0..520).chain([0x4000_0000, u32::MAX - 1, u32::MAX]) {
            let want = rules.iter().find(|r| r.nr == nr).map_or(DENY, |r| r.action);
            assert_eq!(run(&p, nr, ARCH, [0; 6]), want, "nr {nr}");
        }
        assert!(p.len() < 1200, "{} instructions", p.len());
    }
}
