//! A fresh Postgres schema per run, so runs never share rows. The binary
//! reaches Postgres only through the store (no raw SQL there), so this
//! speaks just enough of the wire protocol for one statement: startup with
//! trust or cleartext-password authentication, then a simple query.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

/// The database URL the server gets, and the schema made for it, if any.
pub struct Schema {
    pub url: String,
    made: Option<(Target, String)>,
}

impl Schema {
    /// The schema's name when this run made it.
    pub fn name(&self) -> Option<&str> {
        self.made.as_ref().map(|(_, name)| name.as_str())
    }
}

/// A new schema in `base`, or `base` itself when it already names one
/// (`options=-csearch_path%3D...`): the caller chose where the run goes.
pub async fn fresh_schema(base: &str) -> Result<Schema, String> {
    if base.contains("search_path") {
        return Ok(Schema {
            url: base.to_owned(),
            made: None,
        });
    }
    let target = parse(base)?;
    let name = format!("calsync_chaos_{}", uuid::Uuid::new_v4().simple());
    let sql = format!("CREATE SCHEMA {name}");
    let connect = target.clone();
    tokio::task::spawn_blocking(move || execute(&connect, &sql))
        .await
        .map_err(|e| e.to_string())??;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(Schema {
        url: format!("{base}{separator}options=-csearch_path%3D{name}"),
        made: Some((target, name)),
    })
}

pub async fn drop_schema(schema: &Schema) -> Result<(), String> {
    let Some((target, name)) = schema.made.clone() else {
        return Ok(());
    };
    let sql = format!("DROP SCHEMA {name} CASCADE");
    tokio::task::spawn_blocking(move || execute(&target, &sql))
        .await
        .map_err(|e| e.to_string())?
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
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
    String::from_utf8_lossy(&out).into_owned()
}

/// `postgres://[user[:password]@]host[:port][/database][?...]`.
fn parse(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("--postgres-url must start with postgres://")?;
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, "")) => (percent_decode(user), None),
        Some((user, password)) => (percent_decode(user), Some(percent_decode(password))),
        None => ("postgres".to_owned(), None),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unbalanced [ in --postgres-url")?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| format!("bad port '{port}' in --postgres-url"))?,
        None => 5432,
    };
    Ok(Target {
        host: if host.is_empty() { "127.0.0.1" } else { host }.to_owned(),
        port,
        database: if database.is_empty() {
            user.clone()
        } else {
            percent_decode(database)
        },
        user,
        password,
    })
}

fn write_message(stream: &mut TcpStream, tag: Option<u8>, payload: &[u8]) -> Result<(), String> {
    let length = u32::try_from(payload.len() + 4).map_err(|_| "message too long")?;
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.extend(tag);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    stream
        .write_all(&frame)
        .map_err(|e| format!("Postgres: {e}"))
}

fn read_message(stream: &mut TcpStream) -> Result<(u8, Vec<u8>), String> {
    let mut header = [0u8; 5];
    stream
        .read_exact(&mut header)
        .map_err(|e| format!("Postgres: {e}"))?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=16 << 20).contains(&length) {
        return Err(format!("Postgres sent a message of length {length}"));
    }
    let mut payload = vec![0; length - 4];
    stream
        .read_exact(&mut payload)
        .map_err(|e| format!("Postgres: {e}"))?;
    Ok((header[0], payload))
}

/// An ErrorResponse's message field.
fn error_text(payload: &[u8]) -> String {
    let message = payload
        .split(|b| *b == 0)
        .filter_map(|field| field.split_first())
        .find(|(kind, _)| **kind == b'M')
        .map(|(_, text)| String::from_utf8_lossy(text).into_owned())
        .unwrap_or_default();
    format!("Postgres: {message}")
}

fn execute(target: &Target, sql: &str) -> Result<(), String> {
    let where_ = format!("{}:{}", target.host, target.port);
    let address = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve Postgres at {where_}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve Postgres at {where_}"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach Postgres at {where_}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut startup = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [("user", &target.user), ("database", &target.database)] {
        startup.extend_from_slice(key.as_bytes());
        startup.push(0);
        startup.extend_from_slice(value.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    write_message(&mut stream, None, &startup)?;
    loop {
        let (tag, payload) = read_message(&mut stream)?;
        match tag {
            b'R' => match payload.get(..4).map(|c| [c[0], c[1], c[2], c[3]]) {
                Some(code) if u32::from_be_bytes(code) == 0 => {}
                Some(code) if u32::from_be_bytes(code) == 3 => {
                    let password = target
                        .password
                        .as_deref()
                        .ok_or("Postgres wants a password: put it in --postgres-url")?;
                    let mut message = password.as_bytes().to_vec();
                    message.push(0);
                    write_message(&mut stream, Some(b'p'), &message)?;
                }
                other => {
                    return Err(format!(
                        "Postgres asks for an authentication method (code {:?}) `calsync chaos` cannot \
                         do; pass a --postgres-url ending in options=-csearch_path%3D<an existing empty schema>",
                        other.map(u32::from_be_bytes)
                    ));
                }
            },
            b'E' => return Err(error_text(&payload)),
            b'Z' => break,
            _ => {}
        }
    }
    let mut query = sql.as_bytes().to_vec();
    query.push(0);
    write_message(&mut stream, Some(b'Q'), &query)?;
    let mut failure = None;
    loop {
        let (tag, payload) = read_message(&mut stream)?;
        match tag {
            b'E' => failure = Some(error_text(&payload)),
            b'Z' => break,
            _ => {}
        }
    }
    let _ = write_message(&mut stream, Some(b'X'), &[]);
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults() {
        let t = parse("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.database.as_str()
            ),
            ("127.0.0.1", 5432, "postgres", "test")
        );
        assert_eq!(t.password, None);
        let t = parse("postgresql://u%40x:p%3Aw@[::1]/db?sslmode=disable").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("::1", 5432, "u@x")
        );
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(t.database, "db");
        let t = parse("postgres://db.internal").unwrap();
        assert_eq!(
            (t.user.as_str(), t.database.as_str()),
            ("postgres", "postgres")
        );
        assert!(parse("mysql://x").is_err());
    }
}
