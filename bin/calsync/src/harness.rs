//! What the chaos battery and the multi-process benchmarks share: child
//! processes of this binary, an HTTP client that tolerates killed servers,
//! and scratch Postgres schemas.

pub mod net;
pub mod pg;
pub mod procs;
