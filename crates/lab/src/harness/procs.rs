//! The emulator and the server as child processes of the `calsync` binary,
//! their stdout and stderr appended to one log file each (restarts included).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A port free now; the server binds it again after every kill.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

pub struct Proc {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Proc {
    pub fn new(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        Self {
            name,
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            log,
            child: None,
            starts: 0,
        }
    }

    /// Starts it with only the environment given (nothing inherited can
    /// point it at another database or at Google), marking the log.
    pub fn spawn(&mut self, at_secs: f64) -> Result<(), String> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        self.starts += 1;
        let _ = writeln!(
            file,
            "=== {} start #{} at t={at_secs:.1}s ===",
            self.name, self.starts
        );
        let stdout = file.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.program);
        command.args(&self.args).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(file))
            .spawn()
            .map_err(|e| format!("cannot start the {}: {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no shutdown hook runs, as when a machine dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its exit status if it ended by itself (it is then forgotten).
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status.to_string())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
