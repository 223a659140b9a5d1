//! The `calsync` executable the lab starts as `calsync serve` (and
//! `calsync emulator`): the one being tested, not a copy linked in here.

use std::path::{Path, PathBuf};

use crate::error::LabError;

const FLAG: &str = "--server-bin";
const ENV: &str = "CALSYNC_SERVER_BIN";

/// Where the `calsync` binary is, for the commands that run it as a child.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerBin {
    /// The `calsync` executable to start as the server. Default: `calsync`
    /// in the directory of this `calsync-lab` executable (as `cargo build
    /// -p calsync -p calsync-lab` leaves them).
    #[arg(long = "server-bin", env = "CALSYNC_SERVER_BIN", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl ServerBin {
    /// This executable, e.g. `env!("CARGO_BIN_EXE_calsync")` in a test.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
        }
    }

    /// The executable to run; an error naming both ways to give it when
    /// it is not there.
    pub fn resolve(&self) -> Result<PathBuf, LabError> {
        let path = match &self.path {
            Some(path) => path.clone(),
            None => beside_this_executable()?,
        };
        if path.is_file() {
            return Ok(path);
        }
        let whence = match &self.path {
            Some(_) => format!("given by {FLAG} or {ENV}"),
            None => "beside calsync-lab".to_owned(),
        };
        Err(format!(
            "no calsync server binary at {} ({whence}): build it with `cargo build -p calsync` (same profile as calsync-lab), or pass {FLAG} PATH or set {ENV}=PATH",
            path.display()
        )
        .into())
    }
}

fn beside_this_executable() -> Result<PathBuf, LabError> {
    let this = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable ({e}): pass {FLAG} PATH or set {ENV}"))?;
    let dir = this.parent().unwrap_or(Path::new("."));
    Ok(dir.join(format!("calsync{}", std::env::consts::EXE_SUFFIX)))
}
