//! The sandbox's init: PID 1 of the sandbox's namespaces.
//!
//! Forked from the zygote with fresh namespaces, it builds the root
//! filesystem, reports ready, then serves the control socket: starts
//! commands, forwards their output, reaps every process (orphans included),
//! enforces timeouts and output caps, and answers file requests. When the
//! control socket closes it kills everything and exits; the kernel then
//! tears the namespaces down.

mod confine;
mod exec;
mod files;
mod groups;
mod rootfs;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::proto::{self, FrameBuf, FromInit, ToInit};
use crate::seccomp;
use crate::spec::SetupSpec;
use crate::sys;

pub use confine::Confinement;
use exec::{Running, Started};

/// How long output pipes are drained after a command's main process exited
/// (background children that keep the pipes open are not waited for).
const DRAIN_GRACE: Duration = Duration::from_millis(50);
const READ_CHUNK: usize = 64 * 1024;
/// Stack of a command's child between clone and exec.
const SPAWN_STACK: usize = 256 * 1024;

/// Work every sandbox's set-up shares, done once in the process its inits
/// are cloned from.
pub fn prepare() {
    rootfs::prepare();
}

/// Entry point of the init, in the child of the zygote's clone. `sync` is
/// readable once the zygote wrote the id maps and cgroup membership.
pub fn run(spec: SetupSpec, ctrl: OwnedFd, sync: OwnedFd) -> ! {
    let mut byte = [0u8; 1];
    let image_tree = match sys::recv_with_fds(sync.as_fd(), &mut byte) {
        Ok((1, mut fds)) => fds.pop(),
        _ => sys::exit_now(1),
    };
    drop(sync);
    let keep: Vec<i32> = std::iter::once(ctrl.as_raw_fd()).chain(image_tree.as_ref().map(|f| f.as_raw_fd())).collect();
    sys::close_fds_from(3, &keep);
    // Still the host's root until now: become the namespace's root, which the
    // id map ties to an unprivileged host uid. Nothing else runs before this.
    if sys::switch_user(0, 0).is_err() {
        sys::exit_now(1);
    }
    // After the user switch, which clears it: die with the zygote (and so
    // with the server), even if this loop is ever stuck.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    // A session of the sandbox's own, without the server's terminal (if it
    // was started from one): commands run in it, each in its own group.
    if sys::setsid().is_err() {
        sys::exit_now(1);
    }
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = sys::dup_onto(null.as_fd(), fd);
        }
    }
    let mut ctrl = File::from(ctrl);
    // Opened while the host's cgroup tree is still in view.
    let groups = groups::ExecGroups::open(&spec.cgroup_procs);
    if let Err(e) = rootfs::setup(&spec, image_tree) {
        let _ = ctrl.write_all(&proto::encode(&FromInit::SetupFailed { message: e.to_string() }, b""));
        sys::exit_now(1);
    }
    // The stdin of commands given no input: the sandbox's own device.
    let null = match File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            let msg = FromInit::SetupFailed { message: format!("open /dev/null: {e}") };
            let _ = ctrl.write_all(&proto::encode(&msg, b""));
            sys::exit_now(1);
        }
    };
    let confine = match Confinement::for_image(&spec.image) {
        Ok(c) => c,
        Err(e) => {
            let _ = ctrl.write_all(&proto::encode(&FromInit::SetupFailed { message: e.to_string() }, b""));
            sys::exit_now(1);
        }
    };
    // Commands never get capabilities back through exec: empty the bounding
    // set once here rather than in every command.
    if let Err(e) = sys::drop_bounding_set() {
        let msg = FromInit::SetupFailed { message: format!("drop capability bounding set: {e}") };
        let _ = ctrl.write_all(&proto::encode(&msg, b""));
        sys::exit_now(1);
    }
    let _ = sys::set_dumpable(false);
    // The filter every command runs under, installed once on the init (which
    // needs none of the denied calls from here on) and inherited by every
    // process it starts: nothing to compile on a command's way to exec.
    if let Err(e) = sys::install_seccomp(&seccomp::sandbox_filter()) {
        let msg = FromInit::SetupFailed { message: format!("seccomp: {e}") };
        let _ = ctrl.write_all(&proto::encode(&msg, b""));
        sys::exit_now(1);
    }
    // Commands reset the OOM score only if the zygote managed to lower the
    // init's (the host may withhold CAP_SYS_RESOURCE).
    let oom_shielded = std::fs::read_to_string("/proc/self/oom_score_adj").is_ok_and(|s| s.trim() != "0");
    sys::ignore_sigpipe();
    let sigchld = match sys::sigchld_fd() {
        Ok(fd) => fd,
        Err(e) => {
            let msg = FromInit::SetupFailed { message: format!("signalfd: {e}") };
            let _ = ctrl.write_all(&proto::encode(&msg, b""));
            sys::exit_now(1);
        }
    };
    let ready = FromInit::Ready { landlock: confine.describe() };
    if ctrl.write_all(&proto::encode(&ready, b"")).is_err() {
        sys::exit_now(1);
    }
    let _ = sys::set_nonblocking(ctrl.as_fd(), true);
    let mut init = Init {
        ctrl,
        inbuf: FrameBuf::default(),
        running: Vec::new(),
        sigchld,
        oom_shielded,
        confine,
        groups,
        null,
        stack: vec![0; SPAWN_STACK],
    };
    init.serve();
    // The server is gone: nothing in this sandbox may outlive it. The init
    // is PID 1 of the sandbox's pid namespace, so its exit makes the kernel
    // kill every process left in it (`kill(-1)` would do the same by walking
    // every process on the host).
    sys::exit_now(0)
}

struct Init {
    ctrl: File,
    inbuf: FrameBuf,
    running: Vec<Running>,
    sigchld: OwnedFd,
    /// Whether commands must reset the OOM score the init was given.
    oom_shielded: bool,
    confine: Confinement,
    groups: groups::ExecGroups,
    /// `/dev/null` of the sandbox, read-only: stdin of commands without input.
    null: OwnedFd,
    /// Stack for starting commands (they share the init's memory until exec).
    stack: Vec<u8>,
}

impl Init {
    /// The main loop; returns when the control socket closes.
    fn serve(&mut self) {
        loop {
            let mut fds = vec![
                sys::poll_entry(self.ctrl.as_raw_fd(), sys::POLLIN),
                sys::poll_entry(self.sigchld.as_raw_fd(), sys::POLLIN),
            ];
            for r in &self.running {
                for fd in [&r.stdout, &r.stderr].into_iter().flatten() {
                    fds.push(sys::poll_entry(fd.as_raw_fd(), sys::POLLIN));
                }
                if let Some(fd) = &r.stdin {
                    fds.push(sys::poll_entry(fd.as_raw_fd(), sys::POLLOUT));
                }
            }
            let timeout = self.next_wakeup().map_or(-1, |d| d.as_millis().min(60_000) as i32 + 1);
            if sys::poll(&mut fds, timeout).is_err() {
                continue;
            }
            if fds[0].revents != 0 && !self.read_ctrl() {
                return;
            }
            if fds[1].revents != 0 {
                sys::drain_signalfd(&self.sigchld);
                self.reap();
            }
            self.pump_io();
            self.enforce_deadlines();
            if !self.finish_done() {
                return;
            }
        }
    }

    fn next_wakeup(&self) -> Option<Duration> {
        let now = Instant::now();
        self.running
            .iter()
            .filter_map(|r| match r.exited_at {
                Some(t) => Some(t + DRAIN_GRACE),
                None => r.deadline,
            })
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Reads and handles control frames; false when the socket closed.
    fn read_ctrl(&mut self) -> bool {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            match self.ctrl.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.inbuf.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        loop {
            match self.inbuf.next_frame::<ToInit>() {
                Ok(Some((msg, data))) => {
                    if !self.handle(msg, data) {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    fn handle(&mut self, msg: ToInit, data: Vec<u8>) -> bool {
        match msg {
            ToInit::Exec(spec) => {
                // Alone in the sandbox, a command needs no group of its own:
                // everything but init is its. Otherwise it gets one, so that
                // killing it spares the others (and their daemons).
                let own_group = !self.running.is_empty() || self.groups.others_present();
                self.start_command(spec, data, own_group)
            }
            ToInit::Kill { id } => {
                if let Some(r) = self.running.iter().find(|r| r.id == id) {
                    kill_command(r, &self.groups, false);
                }
                true
            }
            ToInit::WriteFile { req, path, mode } => match files::write(&path, &data, mode) {
                Ok(size) => self.send(&FromInit::FileWritten { req, size }, b""),
                Err((kind, message)) => self.send(&FromInit::FileError { req, kind, message }, b""),
            },
            ToInit::ReadFile { req, path, max_bytes } => self.answer_read(req, path, max_bytes, false),
            ToInit::ListDir { req, path } => self.answer_read(req, path, 0, true),
        }
    }

    fn start_command(&mut self, spec: proto::ExecSpec, stdin: Vec<u8>, own_group: bool) -> bool {
        let launch = exec::Launch { reset_oom: self.oom_shielded, confine: &self.confine, null: self.null.as_fd() };
        match exec::start(&spec, stdin, &launch, &mut self.groups, own_group, &mut self.stack) {
            Started::Running(r) => {
                self.running.push(*r);
                true
            }
            Started::Failed(report) => self.send(&FromInit::Exited(report), b""),
        }
    }

    fn answer_read(&mut self, req: u32, path: String, max_bytes: u64, list_only: bool) -> bool {
        match files::read(&path, max_bytes, list_only) {
            Ok(files::Content::File(bytes)) => self.send(&FromInit::FileData { req }, &bytes),
            Ok(files::Content::Dir(entries)) => self.send(&FromInit::Listing { req, path, entries }, b""),
            Err((kind, message)) => self.send(&FromInit::FileError { req, kind, message }, b""),
        }
    }

    /// Writes one frame, waiting while the socket is full; false if it closed.
    fn send(&mut self, msg: &FromInit, data: &[u8]) -> bool {
        let frame = proto::encode(msg, data);
        let mut off = 0;
        while off < frame.len() {
            match self.ctrl.write(&frame[off..]) {
                Ok(0) => return false,
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut p = [sys::poll_entry(self.ctrl.as_raw_fd(), sys::POLLOUT)];
                    let _ = sys::poll(&mut p, 1000);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reaps every exited child; records the status of commands' main processes.
    fn reap(&mut self) {
        while let Ok(Some(reaped)) = sys::reap(-1) {
            if let Some(r) = self.running.iter_mut().find(|r| r.pid == reaped.pid) {
                r.report.code = reaped.code;
                r.report.signal = reaped.signal;
                r.report.cpu_us = reaped.cpu.as_micros() as u64;
                r.report.max_rss_bytes = reaped.max_rss_bytes;
                r.report.duration_us = r.started.elapsed().as_micros() as u64;
                r.exited_at = Some(Instant::now());
                r.stdin = None;
            }
        }
    }

    /// Moves bytes: stdin into commands, output out to the server.
    fn pump_io(&mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut out: Vec<(FromInit, Vec<u8>)> = Vec::new();
        for r in &mut self.running {
            if let Some(fd) = &r.stdin {
                let rest = &r.stdin_data[r.stdin_pos..];
                match sys::write(fd.as_fd(), rest) {
                    Ok(n) => r.stdin_pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => r.stdin_pos = r.stdin_data.len(),
                }
                if r.stdin_pos >= r.stdin_data.len() {
                    r.stdin = None;
                }
            }
            for stream in [1u8, 2] {
                let (slot, total, truncated) = if stream == 1 {
                    (&mut r.stdout, &mut r.report.stdout_total, &mut r.report.stdout_truncated)
                } else {
                    (&mut r.stderr, &mut r.report.stderr_total, &mut r.report.stderr_truncated)
                };
                let Some(fd) = slot.as_ref() else { continue };
                // Bounded reads per wakeup so one flood cannot starve the rest.
                for _ in 0..16 {
                    let n = match sys::read(fd.as_fd(), &mut buf) {
                        Ok(0) => {
                            *slot = None;
                            break;
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            *slot = None;
                            break;
                        }
                    };
                    let keep_room = r.max_output.saturating_sub(*total);
                    let keep = (n as u64).min(keep_room) as usize;
                    *total += n as u64;
                    if keep < n {
                        *truncated = true;
                    }
                    if keep > 0 {
                        out.push((FromInit::Output { id: r.id, stream }, buf[..keep].to_vec()));
                    }
                }
            }
        }
        for (msg, data) in out {
            self.send(&msg, &data);
        }
    }

    fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        let sole = self.running.len() == 1;
        for r in &mut self.running {
            if r.exited_at.is_none() && r.deadline.is_some_and(|d| now >= d) && !r.report.timed_out {
                r.report.timed_out = true;
                kill_command(r, &self.groups, sole);
            }
        }
    }

    /// Sends the result of every finished command; false if the socket closed.
    fn finish_done(&mut self) -> bool {
        let now = Instant::now();
        let mut i = 0;
        while i < self.running.len() {
            let r = &self.running[i];
            let drained = r.stdout.is_none() && r.stderr.is_none();
            let done = r.exited_at.is_some_and(|t| drained || now >= t + DRAIN_GRACE);
            if done {
                let mut r = self.running.swap_remove(i);
                if let Some(g) = r.group.take() {
                    let (cpu_us, peak) = self.groups.usage(&g);
                    r.report.cpu_us = r.report.cpu_us.max(cpu_us.unwrap_or(0));
                    r.report.max_rss_bytes = r.report.max_rss_bytes.max(peak.unwrap_or(0));
                    r.report.oom_kills = self.groups.oom_kills(&g);
                    if r.report.timed_out {
                        self.groups.kill(&g);
                    }
                    self.groups.remove(&g);
                }
                if !self.send(&FromInit::Exited(r.report.clone()), b"") {
                    return false;
                }
            } else {
                i += 1;
            }
        }
        true
    }
}

/// Kills a command's processes, daemonized or `setsid` ones included: its
/// own cgroup when it has one; else every process left in the sandbox's
/// group (the command was alone when it started, so those are its own or
/// its descendants'; commands started later live in groups of their own).
/// Without delegated cgroups, everything but init when it is the only command.
fn kill_command(r: &Running, groups: &groups::ExecGroups, sole: bool) {
    let _ = sys::kill(-r.pid, libc::SIGKILL);
    let _ = sys::kill(r.pid, libc::SIGKILL);
    match &r.group {
        Some(g) => groups.kill(g),
        None if groups.available() => groups.kill_ungrouped(),
        None if sole => {
            let _ = sys::kill(-1, libc::SIGKILL);
        }
        None => {}
    }
}
