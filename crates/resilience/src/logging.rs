//! Structured JSON logs (slog + slog-json behind an async drain). Every line
//! passes through [`crate::mask_json`] before it is written, so no record can
//! carry a raw email address, token or secret, whatever a caller logs.
//!
//! Records carry `timestamp`, `level`, `msg` and `service`; callers add the
//! fields in [`keys`] where they apply.

use std::io::{self, Write};

use slog::{Drain, Logger, o};

/// The field names calsync logs, so every record spells them the same way.
pub mod keys {
    pub const SERVICE: &str = "service";
    pub const ACTION: &str = "action";
    pub const STATUS: &str = "status";
    pub const TIMESTAMP: &str = "timestamp";
    pub const GOOGLE_EVENT_ID: &str = "google_event_id";
    pub const ENTITY_TYPE: &str = "entity_type";
    pub const ENTITY_ID: &str = "entity_id";
    pub const CALENDAR_ID: &str = "calendar_id";
    pub const ERROR_TYPE: &str = "error_type";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const DURATION_MS: &str = "duration_ms";
    pub const REQUEST_ID: &str = "request_id";
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The `service` field of every record.
    pub service: String,
    pub level: slog::Level,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            service: "calsync".into(),
            level: slog::Level::Info,
        }
    }
}

/// Parses a level name as used in `CALSYNC_LOG_LEVEL` (`info`, `debug`, ...).
pub fn parse_level(name: &str) -> Result<slog::Level, crate::Error> {
    name.parse::<slog::Level>()
        .map_err(|()| crate::Error::Config {
            setting: "log level",
            reason: format!("'{name}' is not one of critical, error, warning, info, debug, trace"),
        })
}

/// Keeps the async drain alive; dropping it flushes the pending records.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Builds the JSON logger writing one masked record per line to `writer`.
pub fn json_logger<W>(writer: W, config: &LogConfig) -> (Logger, LogGuard)
where
    W: Write + Send + 'static,
{
    let json = slog_json::Json::new(MaskingWriter::new(writer))
        .set_newlines(true)
        .set_flush(true)
        .add_key_value(o!(
            keys::TIMESTAMP => slog::PushFnValue(|_, serializer| {
                serializer.emit(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }),
            "level" => slog::FnValue(|record| record.level().as_str()),
            "msg" => slog::PushFnValue(|record, serializer| serializer.emit(record.msg())),
        ))
        .build()
        .fuse();
    let (drain, guard) = slog_async::Async::new(json)
        .chan_size(4096)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .thread_name("calsync-log".into())
        .build_with_guard();
    // Filtered before the async hop: a record below the level costs
    // nothing, instead of being copied to the log thread and dropped there.
    let drain = drain.filter_level(config.level).fuse();
    let logger = Logger::root(drain, o!(keys::SERVICE => config.service.clone()));
    (logger, LogGuard(guard))
}

/// Lets one record per key through per interval, counting the rest: a
/// burst (Google may send thousands of notifications a second for one
/// channel) logs a line a second saying how many it stood for, not a line
/// each.
pub struct LogSampler {
    every: std::time::Duration,
    keys: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

/// Keys remembered at most; past it the sampler starts over.
const SAMPLER_KEYS: usize = 10_000;

impl LogSampler {
    pub fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            keys: std::sync::Mutex::default(),
        }
    }

    /// `Some(n)` when a record for `key` may be logged now, `n` being how
    /// many were held back since the last one; `None` to hold this one back.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((last, held)) = keys.get_mut(key) {
            if now.duration_since(*last) < self.every {
                *held += 1;
                return None;
            }
            let held_back = std::mem::take(held);
            *last = now;
            return Some(held_back);
        }
        if keys.len() >= SAMPLER_KEYS {
            keys.clear();
        }
        keys.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

/// A logger that drops everything (tests, embedders without logging).
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// Buffers slog-json's output up to each newline, masks the complete JSON
/// record, and writes it on.
pub struct MaskingWriter<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            line: Vec::with_capacity(512),
        }
    }

    fn emit_line(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let masked = match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(mut value) => {
                let changed = crate::mask::mask_json(&mut value);
                // Nothing to mask (most lines): written as slog-json wrote
                // it. Only without any `@` in the text: slog-json may write
                // a key twice, and the parsed value holds only the last one.
                if !changed && !may_hold_an_address(&line) {
                    self.inner.write_all(&line)?;
                    self.inner.write_all(b"\n")?;
                    self.line = line;
                    self.line.clear();
                    return Ok(());
                }
                serde_json::to_vec(&value).map_err(io::Error::other)?
            }
            // Not JSON (should not happen): mask it as text rather than drop it.
            Err(_) => crate::mask::mask_emails(&String::from_utf8_lossy(&line))
                .into_owned()
                .into_bytes(),
        };
        self.inner.write_all(&masked)?;
        self.inner.write_all(b"\n")?;
        self.line = line;
        self.line.clear();
        Ok(())
    }
}

/// Whether raw text could hold an email address, plain or URL-encoded.
fn may_hold_an_address(text: &[u8]) -> bool {
    text.contains(&b'@') || text.windows(3).any(|w| w == b"%40")
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..newline]);
            self.emit_line()?;
            rest = &rest[newline + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn records(log: impl FnOnce(&Logger), level: slog::Level) -> Vec<serde_json::Value> {
        let out = Shared::default();
        let (logger, guard) = json_logger(
            out.clone(),
            &LogConfig {
                service: "calsync-test".into(),
                level,
            },
        );
        log(&logger);
        drop(logger);
        drop(guard); // flushes the async drain
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn records_carry_the_standard_fields() {
        let lines = records(
            |log| {
                slog::info!(log, "event pushed";
                    keys::ACTION => "push_event", keys::STATUS => "success",
                    keys::GOOGLE_EVENT_ID => "abc123", keys::ENTITY_TYPE => "deal", keys::ENTITY_ID => "42",
                    keys::DURATION_MS => 17u64);
            },
            slog::Level::Info,
        );
        assert_eq!(lines.len(), 1);
        let record = &lines[0];
        assert_eq!(record["service"], "calsync-test");
        assert_eq!(record["action"], "push_event");
        assert_eq!(record["status"], "success");
        assert_eq!(record["google_event_id"], "abc123");
        assert_eq!(record["entity_type"], "deal");
        assert_eq!(record["entity_id"], "42");
        assert_eq!(record["duration_ms"], 17);
        assert_eq!(record["msg"], "event pushed");
        assert_eq!(record["level"], "INFO");
        let ts = record["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    }

    #[test]
    fn emails_are_masked_in_messages_values_and_uris_and_secrets_never_appear() {
        let lines = records(
            |log| {
                let child = log.new(o!(keys::CALENDAR_ID => "ops.team@example.com"));
                slog::warn!(child, "sync failed for john.doe@example.com";
                    keys::ERROR_TYPE => "transient",
                    keys::ERROR_MESSAGE => "GET https://www.googleapis.com/calendar/v3/calendars/ops.team%40example.com/events: 503",
                    "channel_token" => "9f86d081884c7d659a2feaa0c55ad015",
                    "sync_token" => "CPDAlvWDx70CEPDAlvWDx70CGAU=");
            },
            slog::Level::Info,
        );
        let record = &lines[0];
        assert_eq!(record["msg"], "sync failed for j***@example.com");
        assert_eq!(record["calendar_id"], "o***@example.com");
        assert!(
            record["error_message"]
                .as_str()
                .unwrap()
                .contains("calendars/o***%40example.com/events")
        );
        assert_eq!(record["channel_token"], "[redacted]");
        assert_eq!(record["sync_token"], "[redacted]");
        let raw = serde_json::to_string(record).unwrap();
        for secret in ["john.doe", "ops.team", "9f86d081", "CPDAlvW"] {
            assert!(!raw.contains(secret), "{secret} leaked: {raw}");
        }
    }

    #[test]
    fn the_level_filter_applies() {
        let lines = records(
            |log| {
                slog::debug!(log, "hidden");
                slog::info!(log, "shown");
            },
            slog::Level::Info,
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["msg"], "shown");
        assert!(parse_level("debug").is_ok());
        assert!(parse_level("loud").is_err());
    }

    #[test]
    fn lines_split_across_writes_are_reassembled() {
        let out = Shared::default();
        let mut writer = MaskingWriter::new(out.clone());
        writer.write_all(b"{\"who\":\"al").unwrap();
        writer
            .write_all(b"ice@example.com\"}\n{\"n\":1}\n")
            .unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "{\"who\":\"a***@example.com\"}\n{\"n\":1}\n");
    }

    #[test]
    fn a_key_written_twice_is_masked_in_both_and_clean_lines_pass_unchanged() {
        let out = Shared::default();
        let mut writer = MaskingWriter::new(out.clone());
        writer
            .write_all(b"{\"calendar_id\":\"ann@example.com\",\"calendar_id\":\"primary\"}\n")
            .unwrap();
        writer
            .write_all(b"{\"sync_token\":\"abc123\",\"sync_token\":\"[redacted]\"}\n")
            .unwrap();
        writer
            .write_all(b"{\"msg\":\"plain\",\"n\":1,\"n\":2}\n")
            .unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("ann@"), "{text}");
        assert!(!text.contains("abc123"), "{text}");
        // Nothing to mask: the line as written, byte for byte.
        assert!(
            text.ends_with("{\"msg\":\"plain\",\"n\":1,\"n\":2}\n"),
            "{text}"
        );
    }

    #[test]
    fn the_sampler_admits_one_record_per_key_per_interval_and_counts_the_rest() {
        let sampler = LogSampler::new(std::time::Duration::from_millis(50));
        assert_eq!(sampler.admit("a"), Some(0));
        assert_eq!(sampler.admit("a"), None);
        assert_eq!(sampler.admit("a"), None);
        assert_eq!(sampler.admit("b"), Some(0), "keys are counted apart");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(sampler.admit("a"), Some(2), "two were held back");
        assert_eq!(sampler.admit("a"), None);
    }
}
