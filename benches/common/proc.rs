//! Child processes of the end-to-end benches: output to a log file, killed when dropped or
//! when the bench dies, with waits that explain what went wrong.

use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed (SIGKILL) and reaped when dropped unless it already ended. Children
/// also get SIGKILL if this process dies (`PR_SET_PDEATHSIG`; `ip netns exec` execs the
/// program, so the signal reaches it).
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub status: Option<ExitStatus>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            status: None,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.status)
    }

    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// The end of its log (stdout and stderr), for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2500);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!(
            "--- {} ({}):\n{}",
            self.name,
            self.log.display(),
            &text[start..]
        )
    }

    /// Wait until a line of its log contains `needle`; returns that line.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.poll(&format!("ready (log: {needle:?})"), timeout, |p| {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            text.lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
    }

    /// Wait until it listens on TCP `port` (read from its own namespace's `/proc/PID/net/tcp`).
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let want = format!(":{port:04X}");
        self.poll(&format!("listening on port {port}"), timeout, |p| {
            ["tcp", "tcp6"]
                .iter()
                .any(|table| {
                    let text = std::fs::read_to_string(format!("/proc/{}/net/{table}", p.pid()))
                        .unwrap_or_default();
                    text.lines().skip(1).any(|line| {
                        let f: Vec<&str> = line.split_whitespace().collect();
                        f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
                    })
                })
                .then_some(())
        })
    }

    /// Poll `check` every 20 ms until it gives a value; fail with its log's tail if the
    /// process ends first or `timeout` passes (`what` names the awaited state).
    fn poll<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return Ok(v);
            }
            if let Some(s) = self.try_wait()? {
                bail!(
                    "{} ended ({s}) before {what}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "{} not {what} after {timeout:?}\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
