//! Running the runtime binary with a timeout.

use std::fs;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TIMEOUT;

/// The result of one runtime invocation.
#[derive(Debug)]
pub struct Output {
    /// Exit code, or 128+N when killed by signal N.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with the full output unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, 0, "command failed: {self:#?}");
        self
    }

    /// Panics unless the command failed the way a bad request should:
    /// exit status 1 and something on stderr.
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert_eq!(self.status, 1, "expected exit status 1: {self:#?}");
        assert!(
            !self.stderr.trim().is_empty(),
            "expected an error message: {self:#?}"
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Options for one invocation.
#[derive(Default)]
pub struct Opts {
    /// Bytes fed to stdin (stdin is /dev/null otherwise).
    pub stdin: Option<Vec<u8>>,
    /// A file passed to the runtime as fd 3.
    pub fd3: Option<fs::File>,
    /// Working directory of the runtime.
    pub cwd: Option<PathBuf>,
    /// Skip the `--root` flag.
    pub no_root: bool,
    /// Extra environment variables of the runtime.
    pub env: Vec<(String, String)>,
}

/// A runtime invocation that is still running.
pub struct Running {
    child: Child,
    started: Instant,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl Running {
    /// Wait (at most [`TIMEOUT`] from the start) for the runtime to exit.
    pub fn wait(mut self) -> Output {
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                let status = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                return Output {
                    status,
                    stdout: read_lossy(&self.out),
                    stderr: read_lossy(&self.err),
                };
            }
            if self.started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "timed out after {TIMEOUT:?}: {}\nstdout: {}\nstderr: {}",
                    self.what,
                    read_lossy(&self.out),
                    read_lossy(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait like [`Running::wait`], but on timeout just kill the runtime.
    pub fn wait_quietly(mut self) {
        while self.started.elapsed() < TIMEOUT {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
}

/// The runtime with a private state directory.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    scratch: PathBuf,
    n: AtomicUsize,
}

impl Runtime {
    /// `bin` with state in `root`; output files go to `scratch`.
    pub fn new(bin: PathBuf, root: PathBuf, scratch: PathBuf) -> Runtime {
        Runtime {
            bin,
            root,
            scratch,
            n: AtomicUsize::new(0),
        }
    }

    /// Run the runtime to completion with stdin from /dev/null.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.spawn(args, Opts::default()).wait()
    }

    pub fn exec_with(&self, args: &[&str], opts: Opts) -> Output {
        self.spawn(args, opts).wait()
    }

    /// Start the runtime. Its stdout and stderr go to files (a container
    /// started with `create` inherits them and may hold them open).
    pub fn spawn(&self, args: &[&str], opts: Opts) -> Running {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let out = self.scratch.join(format!("cmd{n}.out"));
        let err = self.scratch.join(format!("cmd{n}.err"));
        let mut cmd = Command::new(&self.bin);
        if !opts.no_root {
            cmd.arg("--root").arg(&self.root);
        }
        cmd.args(args);
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(fs::File::create(&out).unwrap());
        cmd.stderr(fs::File::create(&err).unwrap());
        cmd.stdin(if opts.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if let Some(cwd) = &opts.cwd {
            cmd.current_dir(cwd);
        }
        if let Some(f) = opts.fd3 {
            let fd = std::os::fd::IntoRawFd::into_raw_fd(f);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if fd == 3 {
                        let fl = libc::fcntl(3, libc::F_GETFD);
                        libc::fcntl(3, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
                    } else if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let what = format!("{} {}", self.bin.display(), args.join(" "));
            let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
            // SAFETY: fd came from into_raw_fd above and is owned here.
            unsafe { libc::close(fd) };
            return self.running(child, opts.stdin, out, err, what);
        }
        let what = format!("{} {}", self.bin.display(), args.join(" "));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        self.running(child, opts.stdin, out, err, what)
    }

    fn running(
        &self,
        mut child: Child,
        stdin: Option<Vec<u8>>,
        out: PathBuf,
        err: PathBuf,
        what: String,
    ) -> Running {
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        Running {
            child,
            started: Instant::now(),
            out,
            err,
            what,
        }
    }
}
