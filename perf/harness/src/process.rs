//! The child processes of a measurement: the stream source, the server under test and the
//! generator. Each is started with its stderr in a log file beside the results, its stdout
//! read line by line (servers announce their address there), and stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd`, stderr into `log`, stdout collected.
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
        let err =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = lines.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Ok(Proc { name: name.to_owned(), child, lines, log: log.to_owned() })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stdout line starts with `prefix` and returns the rest, trimmed.
    pub(crate) fn wait_line(&mut self, prefix: &str, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(rest) = self.find_line(prefix) {
                return Ok(rest);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before printing {prefix:?}; {}",
                    self.name,
                    self.tail()
                );
            }
            if Instant::now() > deadline {
                bail!("{} printed no {prefix:?} within {limit:?}; {}", self.name, self.tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last stdout line starting with `prefix`, without it.
    pub(crate) fn find_line(&self, prefix: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines.iter().rev().find_map(|l| l.strip_prefix(prefix).map(|r| r.trim().to_owned()))
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for it to exit by itself, up to `limit`; kills it after that.
    pub(crate) fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} still running after {limit:?}: killed; {}", self.name, self.tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 5 s. Returns the exit status.
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = manifold_sys::process::send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the stdout reader a moment to take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// The end of its log, for error messages.
    pub(crate) fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
        format!("log {}:\n  {tail}", self.log.display())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An even UDP port on 127.0.0.1 whose next port is free too (RTP and RTCP).
pub(crate) fn free_rtp_port() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let a = UdpSocket::bind("127.0.0.1:0")?;
        let port = a.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port + 1))).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no free even UDP port pair on 127.0.0.1")
}

/// Waits for a file to exist and be non-empty.
pub(crate) fn wait_file(path: &Path, limit: Duration, source: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true) {
        if !source.running() {
            bail!("the source exited before writing {}; {}", path.display(), source.tail());
        }
        if Instant::now() > deadline {
            bail!("no {} within {limit:?}; {}", path.display(), source.tail());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `taskset -c CPUS` in front of a program, to pin a process we cannot pin by flag.
pub(crate) fn pinned(cpus: &str, program: &Path) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(cpus).arg(program);
    cmd
}
