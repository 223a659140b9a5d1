use std::path::PathBuf;

use crate::Error;

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://` or `postgresql://`: production.
    Postgres(String),
    /// `sqlite://PATH`, `sqlite:PATH`, or no URL at all (`./calsync.db`).
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub const DEFAULT_SQLITE_PATH: &'static str = "./calsync.db";

    /// Parses `DATABASE_URL`; `None` or empty selects the embedded SQLite default.
    pub fn parse(url: Option<&str>) -> Result<Self, Error> {
        let url = url.map(str::trim).unwrap_or_default();
        if url.is_empty() {
            return Ok(Self::Sqlite(PathBuf::from(Self::DEFAULT_SQLITE_PATH)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.contains(":memory:") || path.starts_with("file::memory") {
                return Err(Error::InvalidUrl(
                    "an in-memory SQLite database is not supported (each pooled connection would \
                     see its own empty database); name a file, e.g. sqlite://./calsync.db"
                        .into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(Error::InvalidUrl(format!(
            "unsupported scheme '{scheme}': use postgres://..., sqlite://PATH, or leave it unset for {}",
            Self::DEFAULT_SQLITE_PATH
        )))
    }

    /// The backend's name, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// A description safe to log: no password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    format!("{}://***{}", &url[..scheme_end], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_forms() {
        assert_eq!(
            DatabaseUrl::parse(None).unwrap(),
            DatabaseUrl::Sqlite("./calsync.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse(Some(" ")).unwrap(),
            DatabaseUrl::Sqlite("./calsync.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse(Some("sqlite:///var/lib/calsync.db")).unwrap(),
            DatabaseUrl::Sqlite("/var/lib/calsync.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse(Some("sqlite://data/x.db")).unwrap(),
            DatabaseUrl::Sqlite("data/x.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse(Some("postgres://u:p@h/db")).unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse(Some("postgresql://h/db")).unwrap(),
            DatabaseUrl::Postgres(_)
        ));
    }

    #[test]
    fn refuses_what_cannot_work() {
        for url in ["mysql://h/db", "sqlite::memory:", "sqlite://", "calsync.db"] {
            assert!(DatabaseUrl::parse(Some(url)).is_err(), "{url}");
        }
    }

    #[test]
    fn redaction_hides_the_password() {
        let url = DatabaseUrl::parse(Some("postgres://user:hunter2@db:5432/calsync")).unwrap();
        assert_eq!(url.redacted(), "postgres://***@db:5432/calsync");
        assert!(!url.redacted().contains("hunter2"));
    }
}
