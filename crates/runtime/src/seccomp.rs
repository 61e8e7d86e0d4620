//! The seccomp filter every sandboxed command runs under.
//!
//! A deny-list compiled to classic BPF: the architecture is checked first (a
//! foreign syscall ABI kills the process), x32 syscall numbers are refused,
//! then each denied syscall returns `EPERM`. `clone` is allowed only without
//! namespace flags, and `clone3` answers `ENOSYS` so libc falls back to the
//! `clone` it can inspect (clone3 passes its flags in memory, out of BPF's reach).

use crate::sys::SockFilter;

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

/// Syscall numbers at or above this are the x32 ABI on x86_64.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Namespace flags a sandboxed `clone` may not pass.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u32;

/// Syscalls a sandboxed process may never make, with the reason.
pub const DENIED: &[(libc::c_long, &str)] = &[
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_fsopen, "new mount API"),
    (libc::SYS_fsconfig, "new mount API"),
    (libc::SYS_fsmount, "new mount API"),
    (libc::SYS_fspick, "new mount API"),
    (libc::SYS_move_mount, "new mount API"),
    (libc::SYS_open_tree, "new mount API"),
    (libc::SYS_mount_setattr, "new mount API"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_readv, "cross-process memory access"),
    (libc::SYS_process_vm_writev, "cross-process memory access"),
    (libc::SYS_kexec_load, "kexec"),
    (libc::SYS_kexec_file_load, "kexec"),
    (libc::SYS_init_module, "kernel modules"),
    (libc::SYS_finit_module, "kernel modules"),
    (libc::SYS_delete_module, "kernel modules"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_keyctl, "kernel keyring"),
    (libc::SYS_add_key, "kernel keyring"),
    (libc::SYS_request_key, "kernel keyring"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_unshare, "new namespaces"),
    (libc::SYS_setns, "joining namespaces"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_name_to_handle_at, "file handles"),
    (libc::SYS_swapon, "swap"),
    (libc::SYS_swapoff, "swap"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_io_uring_setup, "io_uring"),
    (libc::SYS_io_uring_enter, "io_uring"),
    (libc::SYS_io_uring_register, "io_uring"),
    (libc::SYS_acct, "process accounting"),
    (libc::SYS_quotactl, "quotas"),
    (libc::SYS_syslog, "kernel log"),
    (libc::SYS_settimeofday, "clock"),
    (libc::SYS_clock_settime, "clock"),
    (libc::SYS_clock_adjtime, "clock"),
    (libc::SYS_adjtimex, "clock"),
    (libc::SYS_vhangup, "vhangup"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_iopl, "port I/O"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_ioperm, "port I/O"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_uselib, "uselib"),
];

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Builds the filter program.
pub fn sandbox_filter() -> Vec<SockFilter> {
    let errno = |e: i32| SECCOMP_RET_ERRNO | (e as u32 & 0xffff);
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    }
    for &(nr, _) in DENIED {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    }
    // clone3 → ENOSYS: libc then uses clone, whose flags BPF can see.
    p.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(BPF_RET_K, errno(libc::ENOSYS)));
    // clone: refuse namespace flags in the low word of the first argument.
    p.push(jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 4));
    p.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LO));
    p.push(jump(BPF_JSET_K, CLONE_NS_FLAGS, 0, 1));
    p.push(stmt(BPF_RET_K, errno(libc::EPERM)));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the filter uses,
    /// so the program's decisions can be checked without installing it.
    fn run(prog: &[SockFilter], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            pc += 1;
            match ins.code {
                BPF_LD_W_ABS => {
                    let o = ins.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                BPF_JEQ_K => pc += usize::from(if acc == ins.k { ins.jt } else { ins.jf }),
                BPF_JGE_K => pc += usize::from(if acc >= ins.k { ins.jt } else { ins.jf }),
                BPF_JSET_K => pc += usize::from(if acc & ins.k != 0 { ins.jt } else { ins.jf }),
                BPF_RET_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn denies_listed_syscalls_and_allows_others() {
        let p = sandbox_filter();
        for &(nr, what) in DENIED {
            assert_eq!(run(&p, AUDIT_ARCH, nr as u32, 0), EPERM, "{what}");
        }
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_read as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_execve as u32, 0), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn foreign_arch_is_killed() {
        let p = sandbox_filter();
        assert_eq!(run(&p, 0x4000_0003, libc::SYS_read as u32, 0), SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn clone_with_namespace_flags_is_refused() {
        let p = sandbox_filter();
        let clone = libc::SYS_clone as u32;
        assert_eq!(run(&p, AUDIT_ARCH, clone, libc::SIGCHLD as u64), SECCOMP_RET_ALLOW);
        let threads = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(run(&p, AUDIT_ARCH, clone, threads), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH, clone, libc::CLONE_NEWUSER as u64), EPERM);
        assert_eq!(run(&p, AUDIT_ARCH, clone, libc::CLONE_NEWNET as u64 | 17), EPERM);
        assert_eq!(run(&p, AUDIT_ARCH, libc::SYS_clone3 as u32, 0), SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_numbers_are_refused() {
        let p = sandbox_filter();
        let x32_mount = X32_SYSCALL_BIT | libc::SYS_mount as u32;
        assert_eq!(run(&p, AUDIT_ARCH, x32_mount, 0), EPERM);
    }
}
