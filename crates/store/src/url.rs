use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// Where the data lives, parsed from `DATABASE_URL`. `Debug` shows the
/// redacted form.
#[derive(Clone, PartialEq, Eq)]
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

    /// A description safe to log: no password, neither in the user info nor
    /// as a `password=` parameter.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_postgres(url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

/// Hides the union of two readings, so an unencoded `@`, `?` or `&` in a
/// password cannot shift what is hidden: everything between `://` and the
/// last `@` (user and password), and the value of every parameter whose
/// name decodes to `password` (any case).
fn redact_postgres(url: &str) -> String {
    let bytes = url.as_bytes();
    let mut hidden = vec![false; bytes.len()];
    let start = url.find("://").map_or(0, |at| at + 3);
    if let Some(at) = url.rfind('@').filter(|&at| at >= start) {
        hidden[start..at].fill(true);
    }
    for (at, _) in url.match_indices(['?', '&']) {
        let pair_end = url[at + 1..]
            .find('&')
            .map_or(url.len(), |end| at + 1 + end);
        let pair = &url[at + 1..pair_end];
        if let Some(eq) = pair.find('=')
            && percent_decode(&pair[..eq]).eq_ignore_ascii_case(b"password")
        {
            hidden[at + 1 + eq + 1..pair_end].fill(true);
        }
    }
    // Every run starts and ends next to an ASCII delimiter, so slicing by
    // these byte offsets stays on character boundaries.
    let mut out = String::with_capacity(url.len());
    let mut run_start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if hidden[index] {
            out.push_str(&url[run_start..index]);
            out.push_str("***");
            while index < bytes.len() && hidden[index] {
                index += 1;
            }
            run_start = index;
        } else {
            index += 1;
        }
    }
    out.push_str(&url[run_start..]);
    out
}

/// `%XX` decoding, lenient about a stray `%` as tokio-postgres is: both the
/// redaction and the TLS parameters must read names as it does.
pub(crate) fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
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

    #[test]
    fn redaction_hides_a_password_parameter() {
        let redact = |url: &str| DatabaseUrl::parse(Some(url)).unwrap().redacted();
        assert_eq!(
            redact("postgres://db/calsync?user=calsync&password=hunter2&sslmode=verify-full"),
            "postgres://db/calsync?user=calsync&password=***&sslmode=verify-full"
        );
        assert_eq!(
            redact("postgres://u:pw@db/calsync?password=hunter2"),
            "postgres://***@db/calsync?password=***"
        );
        // Encoded or capitalised names still name the password.
        assert_eq!(
            redact("postgres://db/c?%70assword=hunter2"),
            "postgres://db/c?%70assword=***"
        );
        assert_eq!(
            redact("postgres://db/c?PASSWORD=hunter2"),
            "postgres://db/c?PASSWORD=***"
        );
        // An unencoded '@' inside the parameter must not leave a tail showing.
        for url in [
            "postgres://db/c?password=hun@ter2",
            "postgres://u:hun?ter2@db/c",
            "postgres://u:hun&password=x@db/c?password=ter2&a=b",
        ] {
            let redacted = redact(url);
            for part in ["hun", "ter2"] {
                assert!(!redacted.contains(part), "{url} -> {redacted}");
            }
        }
        // Nothing hidden without a password.
        assert_eq!(
            redact("postgres://db/c?sslmode=require&passwordless=1"),
            "postgres://db/c?sslmode=require&passwordless=1"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let url = DatabaseUrl::parse(Some("postgres://u:hunter2@db/c?password=hunter2")).unwrap();
        let debug = format!("{url:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("db/c"), "{debug}");
    }
}
