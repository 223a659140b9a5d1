//! What the chaos battery and the multi-process benchmarks share: the
//! `calsync` binary they start, child processes of it, an HTTP client that
//! tolerates killed servers, and scratch Postgres schemas.

pub mod net;
pub mod pg;
pub mod procs;
pub mod server_bin;
