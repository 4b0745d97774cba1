//! `tagd serve` as an operator runs it: a child process on a free port, waited for until it
//! listens, stopped by SIGTERM (a clean exit) or SIGKILL (a crash).

use super::client::AdminClient;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The admin token every spawned server is started with.
pub const ADMIN_TOKEN: &str = "process-test-token-0123456789abcdef0123";

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `tagd serve`.
pub struct TagdProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
}

/// A server a failed test leaves behind is killed, not left running.
impl Drop for TagdProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl TagdProcess {
    /// `tagd serve` on `database` with `extra` flags, its output in `log` (or discarded);
    /// returns once it listens, or panics (with the log) when it exits or takes over 30 s.
    pub async fn start(database: &str, extra: &[&str], log: Option<&Path>) -> TagdProcess {
        let port = free_port();
        let (out, err) = match log {
            Some(path) => {
                let out = File::create(path).expect("log file");
                let err = out.try_clone().expect("log file");
                (Stdio::from(out), Stdio::from(err))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tagd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", database])
            .args(extra)
            .env("TAGD_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("tagd serve starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            if connected.is_ok() {
                return TagdProcess {
                    child,
                    address: format!("http://127.0.0.1:{port}"),
                };
            }
            if let Some(status) = child.try_wait().expect("wait") {
                let output = log.map(std::fs::read_to_string).and_then(Result::ok);
                panic!(
                    "tagd serve exited with {status} before listening:\n{}",
                    output.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tagd serve did not listen within 30 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The process id (what tagd's lease owners start with, docs/OPERATIONS.md).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin API of this server, with [`ADMIN_TOKEN`].
    pub fn admin(&self, client: reqwest::Client) -> AdminClient {
        AdminClient::new(client, &self.address, ADMIN_TOKEN)
    }

    /// `kill -KILL <pid>`, then reaps it.
    pub fn sigkill(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -KILL {pid}");
        let status = self.child.wait().expect("wait");
        assert!(!status.success(), "killed, not exited: {status}");
    }

    /// SIGTERM, then its exit status (within 30 s).
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "tagd did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
