/// The storage adapter's errors. At the ports they become domain errors
/// (see `From<Error> for calsync_domain::Error`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `DATABASE_URL` is not one this adapter understands.
    #[error("invalid DATABASE_URL: {0}")]
    InvalidUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// A stored value could not be read back (e.g. corrupt JSON).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl From<Error> for calsync_domain::Error {
    fn from(error: Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as Diesel};
        match error {
            Error::Query(Diesel::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                calsync_domain::Error::Duplicate { what: "record" }
            }
            other => calsync_domain::Error::Storage(other.to_string()),
        }
    }
}
