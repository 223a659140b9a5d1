//! The verdicts: the mirror against Google's truth, each acknowledged
//! write against both, and the logs against panics and leaks; the change
//! feed's verdicts are in [`feed`].

pub mod feed;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;

use super::actors::{ENTITY_TYPE, Model, Shared};

/// A start or end, compared by instant (or date), never by notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Time {
    At(DateTime<Utc>),
    Day(NaiveDate),
    Unreadable(String),
}

impl Time {
    fn parse(value: &Value) -> Self {
        if let Some(at) = value["dateTime"].as_str() {
            // Both stores keep microseconds; the emulator's seeded events
            // carry nanoseconds (Google itself sends whole seconds).
            return DateTime::parse_from_rfc3339(at)
                .map(|at| Self::At(at.with_timezone(&Utc).trunc_subsecs(6)))
                .unwrap_or_else(|_| Self::Unreadable(value.to_string()));
        }
        if let Some(date) = value["date"].as_str() {
            return NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map(Self::Day)
                .unwrap_or_else(|_| Self::Unreadable(value.to_string()));
        }
        Self::Unreadable(value.to_string())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::At(at) => write!(f, "{}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Self::Day(day) => write!(f, "{day}"),
            Self::Unreadable(raw) => write!(f, "unreadable {raw}"),
        }
    }
}

/// The fields compared, as either side holds them.
#[derive(Debug, Clone)]
pub struct Seen {
    pub google_id: String,
    pub cancelled: bool,
    /// confirmed | tentative | cancelled
    pub status: String,
    /// Absent and empty are the same: Google clears a field to "".
    pub summary: String,
    pub start: Time,
    pub end: Time,
    /// The entity id, for events of the battery's entity type.
    pub entity: Option<String>,
    pub etag: String,
    /// Mirror only: calsync's id and push state.
    pub local_id: String,
    pub push_state: String,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {:?} {} .. {} etag {}",
            self.status, self.summary, self.start, self.end, self.etag
        )?;
        if !self.local_id.is_empty() {
            write!(f, " local {} push {}", self.local_id, self.push_state)?;
        }
        write!(f, "]")
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn from_mirror(item: &Value) -> Seen {
    let status = text(&item["status"]);
    Seen {
        google_id: text(&item["googleEventId"]),
        cancelled: status == "cancelled",
        status,
        summary: text(&item["summary"]),
        start: Time::parse(&item["start"]),
        end: Time::parse(&item["end"]),
        entity: (item["entityType"].as_str() == Some(ENTITY_TYPE)).then(|| text(&item["entityId"])),
        etag: text(&item["etag"]),
        local_id: text(&item["id"]),
        push_state: text(&item["pushState"]),
    }
}

fn from_google(item: &Value) -> Seen {
    let status = match item["status"].as_str() {
        Some(status) => status.to_owned(),
        None => "confirmed".to_owned(),
    };
    let private = &item["extendedProperties"]["private"];
    Seen {
        google_id: text(&item["id"]),
        cancelled: status == "cancelled",
        status,
        summary: text(&item["summary"]),
        start: Time::parse(&item["start"]),
        end: Time::parse(&item["end"]),
        entity: (private["entity_type"].as_str() == Some(ENTITY_TYPE))
            .then(|| text(&private["entity_id"])),
        etag: text(&item["etag"]),
        local_id: String::new(),
        push_state: String::new(),
    }
}

pub struct Snapshot {
    pub mirror: Vec<Seen>,
    pub truth: Vec<Seen>,
    /// Both sides as answered, kept with a failed run's logs.
    pub raw: Value,
}

/// The whole mirror of every calendar of the run (paged) and the
/// emulator's ground truth of each. Google event ids are unique across
/// calendars (the emulator's as Google's), so both sides are compared as
/// one set.
pub async fn snapshot(shared: &Shared) -> Result<Snapshot, String> {
    let mut raw_mirror = Vec::new();
    let mut raw_truth = Vec::new();
    for calendar in shared.calendars() {
        raw_mirror.extend(mirror_of(shared, &calendar).await?);
        let reply = shared
            .admin("GET", &format!("/calendars/{calendar}/events"), None)
            .await?;
        if reply.status != 200 {
            return Err(format!(
                "reading the emulator's truth of {calendar}: {}",
                reply.brief()
            ));
        }
        raw_truth.extend(reply.body["items"].as_array().cloned().unwrap_or_default());
    }
    Ok(Snapshot {
        mirror: raw_mirror.iter().map(from_mirror).collect(),
        truth: raw_truth.iter().map(from_google).collect(),
        raw: serde_json::json!({ "mirror": raw_mirror, "google": raw_truth }),
    })
}

/// One calendar's mirror, every page of it.
async fn mirror_of(shared: &Shared, calendar: &str) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut page_token: Option<String> = None;
    // Calendar ids here are `primary` and plain emails: only `@` to escape.
    let calendar = calendar.replace('@', "%40");
    for _ in 0..1000 {
        let mut path = format!("/calendar/events?calendarId={calendar}&limit=500");
        if let Some(token) = &page_token {
            // Tokens are `<micros>.<uuid>`: nothing to escape.
            path.push_str("&pageToken=");
            path.push_str(token);
        }
        let page = shared.get(&path).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        page_token = page["nextPageToken"].as_str().map(str::to_owned);
        if page_token.is_none() {
            break;
        }
    }
    Ok(items)
}

#[derive(Default)]
pub struct Diff {
    pub compared: usize,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub mismatched: Vec<String>,
    pub duplicated: Vec<String>,
    pub pending: usize,
    /// Google ids of events whose push was dead-lettered.
    pub push_failed: Vec<String>,
    /// Google ids of every divergent event, for their histories.
    pub ids: Vec<String>,
}

impl Diff {
    pub fn clean(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.mismatched.is_empty()
            && self.duplicated.is_empty()
    }
}

fn differences(mirror: &Seen, truth: &Seen) -> Vec<String> {
    let mut out = Vec::new();
    if mirror.status != truth.status {
        out.push(format!("status {} vs {}", mirror.status, truth.status));
    }
    if mirror.summary != truth.summary {
        out.push(format!(
            "summary {:?} vs {:?}",
            mirror.summary, truth.summary
        ));
    }
    if mirror.start != truth.start {
        out.push(format!("start {} vs {}", mirror.start, truth.start));
    }
    if mirror.end != truth.end {
        out.push(format!("end {} vs {}", mirror.end, truth.end));
    }
    out
}

/// The mirror against the truth. A cancelled event equals an absent one
/// (the mirror may never have seen an event inserted and deleted between
/// two syncs, or a create cancelled before it was pushed).
pub fn compare(snapshot: &Snapshot) -> Diff {
    let mut diff = Diff::default();
    let mut mirror: BTreeMap<&str, &Seen> = BTreeMap::new();
    for event in &snapshot.mirror {
        if let Some(first) = mirror.insert(&event.google_id, event) {
            diff.duplicated.push(format!(
                "{} is in the mirror twice: {first} and {event}",
                event.google_id
            ));
            diff.ids.push(event.google_id.clone());
        }
        match event.push_state.as_str() {
            "pending" => diff.pending += 1,
            "failed" => diff.push_failed.push(event.google_id.clone()),
            _ => {}
        }
    }
    let truth: BTreeMap<&str, &Seen> = snapshot
        .truth
        .iter()
        .map(|e| (e.google_id.as_str(), e))
        .collect();
    let mut ids: Vec<&str> = mirror.keys().chain(truth.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    diff.compared = ids.len();
    for id in ids {
        let problem = match (mirror.get(id), truth.get(id)) {
            (Some(m), Some(t)) if m.cancelled && t.cancelled => None,
            (Some(m), Some(t)) if m.cancelled || t.cancelled => Some((
                &mut diff.mismatched,
                format!("{id}: mirror {m} but Google {t}"),
            )),
            (Some(m), Some(t)) => {
                let found = differences(m, t);
                (!found.is_empty()).then(|| {
                    (
                        &mut diff.mismatched,
                        format!("{id}: {} (mirror {m}, Google {t})", found.join("; ")),
                    )
                })
            }
            (None, Some(t)) if !t.cancelled => Some((
                &mut diff.missing,
                format!("{id}: not in the mirror; Google {t}"),
            )),
            (Some(m), None) if !m.cancelled => {
                Some((&mut diff.extra, format!("{id}: not at Google; mirror {m}")))
            }
            _ => None,
        };
        if let Some((list, line)) = problem {
            list.push(line);
            diff.ids.push(id.to_owned());
        }
    }
    diff
}

#[derive(Default)]
pub struct WriteVerdict {
    pub checked: usize,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub refused: Vec<String>,
    pub ids: Vec<String>,
}

impl WriteVerdict {
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.refused.is_empty()
    }
}

/// Each acknowledged create exactly once at Google; the last acknowledged
/// patch and any acknowledged delete holding at both ends, for events
/// nobody else touched and whose every write was answered.
pub fn check_writes(model: &Model, snapshot: &Snapshot) -> WriteVerdict {
    let mut verdict = WriteVerdict::default();
    let by_entity = |side: &[Seen]| {
        let mut map: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        for event in side {
            if let Some(entity) = &event.entity {
                map.entry(entity.clone()).or_default().push(event.clone());
            }
        }
        map
    };
    let google_entities = by_entity(&snapshot.truth);
    let mirror_entities = by_entity(&snapshot.mirror);
    let none = Vec::new();
    for entity in &model.unacked_creates {
        let at_google = google_entities.get(entity).unwrap_or(&none);
        if at_google.len() > 1 {
            verdict.duplicated.push(format!(
                "unanswered create of entity {entity} is at Google {} times",
                at_google.len()
            ));
        }
    }
    for event in model.api.values() {
        verdict.checked += 1;
        let id = &event.google_id;
        let mut problems = Vec::new();
        let at_google = google_entities.get(&event.entity_id).unwrap_or(&none);
        let in_mirror = mirror_entities.get(&event.entity_id).unwrap_or(&none);
        if at_google.len() > 1 {
            let ids: Vec<&str> = at_google.iter().map(|e| e.google_id.as_str()).collect();
            verdict.duplicated.push(format!(
                "entity {} is at Google {} times: {ids:?}",
                event.entity_id,
                at_google.len()
            ));
            verdict.ids.push(id.clone());
        }
        if in_mirror.len() > 1 {
            let rows: Vec<String> = in_mirror.iter().map(ToString::to_string).collect();
            verdict.duplicated.push(format!(
                "entity {} is in the mirror {} times: {rows:?}",
                event.entity_id,
                in_mirror.len()
            ));
            verdict.ids.push(id.clone());
        }
        if at_google.is_empty() && !event.deleted {
            problems.push("acknowledged create never reached Google".to_owned());
        }
        if let Some(other) = at_google.iter().find(|e| &e.google_id != id) {
            problems.push(format!(
                "Google has the entity under another id {}",
                other.google_id
            ));
        }
        if !event.contested && !event.uncertain {
            let google = snapshot.truth.iter().find(|e| &e.google_id == id);
            let mirror = snapshot.mirror.iter().find(|e| &e.google_id == id);
            for (side, seen) in [("Google", google), ("the mirror", mirror)] {
                match seen {
                    Some(seen) if event.deleted && !seen.cancelled => {
                        problems.push(format!("acknowledged delete lost in {side}: {seen}"));
                    }
                    Some(_) if event.deleted => {}
                    None if event.deleted => {}
                    None if side == "the mirror" => {
                        problems.push("the event is gone from the mirror".to_owned());
                    }
                    None => {}
                    Some(seen) if seen.cancelled => {
                        problems.push(format!("cancelled in {side} though never deleted: {seen}"));
                    }
                    Some(seen) => {
                        let mut stale = Vec::new();
                        if seen.summary != event.summary {
                            stale.push(format!(
                                "summary {:?} not {:?}",
                                seen.summary, event.summary
                            ));
                        }
                        if seen.start != event.start {
                            stale.push(format!("start {} not {}", seen.start, event.start));
                        }
                        if seen.end != event.end {
                            stale.push(format!("end {} not {}", seen.end, event.end));
                        }
                        if seen.status != event.status {
                            stale.push(format!("status {} not {}", seen.status, event.status));
                        }
                        if !stale.is_empty() {
                            problems.push(format!(
                                "acknowledged write lost in {side}: {}",
                                stale.join("; ")
                            ));
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            verdict.lost.push(format!(
                "{id} (entity {}, local {}): {}",
                event.entity_id,
                event.local_id,
                problems.join("; ")
            ));
            verdict.ids.push(id.clone());
        }
    }
    for (id, line) in &model.refusals {
        if !model.api.get(id).is_some_and(|e| e.contested) {
            verdict.refused.push(line.clone());
            verdict.ids.push(id.clone());
        }
    }
    verdict
}

#[derive(Default)]
pub struct LogVerdict {
    pub lines: usize,
    pub panics: Vec<String>,
    pub leaks: Vec<String>,
}

fn is_local_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._+-".contains(&byte)
}

fn is_domain_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.'
}

/// Addresses in `line` that are not masked (`j***@example.com` is). An
/// independent reading, not calsync's own masker, so a masker bug shows.
/// `user@127.0.0.1` (a URL's user, not a mailbox) does not count.
pub fn unmasked_emails(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let separator = if bytes[i] == b'@' {
            1
        } else if bytes[i..].starts_with(b"%40") {
            3
        } else {
            i += 1;
            continue;
        };
        let mut start = i;
        while start > 0 && is_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = i + separator;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        let domain = line[i + separator..end].trim_end_matches('.');
        let tld = domain.rsplit('.').next().unwrap_or_default();
        if start < i
            && domain.contains('.')
            && tld.len() >= 2
            && tld.bytes().all(|b| b.is_ascii_alphabetic())
        {
            found.push(line[start..i + separator + domain.len()].to_owned());
        }
        i += separator;
    }
    found
}

/// Panics in any log; unmasked emails and secrets in the server's.
pub fn scan_logs(server_log: &Path, other_logs: &[&Path], secrets: &[&str]) -> LogVerdict {
    let mut verdict = LogVerdict::default();
    let mut scan = |path: &Path, server: bool| {
        let Ok(content) = std::fs::read(path) else {
            verdict
                .leaks
                .push(format!("cannot read {}", path.display()));
            return;
        };
        let content = String::from_utf8_lossy(&content);
        for (number, line) in content.lines().enumerate() {
            verdict.lines += 1;
            let at = format!("{}:{}", path.display(), number + 1);
            if line.contains("panicked at") {
                verdict.panics.push(format!("{at}: {line}"));
            }
            for secret in secrets.iter().filter(|s| line.contains(**s)) {
                let shown: String = secret.chars().take(6).collect();
                verdict
                    .leaks
                    .push(format!("{at}: the secret {shown}... in clear"));
            }
            if server {
                for email in unmasked_emails(line) {
                    verdict.leaks.push(format!("{at}: unmasked email {email}"));
                }
            }
        }
    };
    scan(server_log, true);
    for path in other_logs {
        scan(path, false);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unmasked_addresses_are_found() {
        assert_eq!(
            unmasked_emails(r#"{"msg":"to john.doe@example.com"}"#),
            vec!["john.doe@example.com"]
        );
        assert_eq!(
            unmasked_emails("calendars/user%40example.com/events"),
            vec!["user%40example.com"]
        );
        assert!(unmasked_emails(r#"{"msg":"to j***@example.com"}"#).is_empty());
        assert!(unmasked_emails("postgres://***@127.0.0.1:5432/test").is_empty());
        assert!(unmasked_emails("postgres://postgres@127.0.0.1:5432/test").is_empty());
        assert!(unmasked_emails("@ alone, a@b and x@y.").is_empty());
    }

    #[test]
    fn cancelled_equals_absent_and_fields_are_compared() {
        let google = |id: &str, status: &str, summary: &str| {
            from_google(&serde_json::json!({
                "id": id, "status": status, "summary": summary,
                "start": {"dateTime": "2030-01-15T10:00:00+01:00"},
                "end": {"dateTime": "2030-01-15T11:00:00+01:00"},
            }))
        };
        let mirror = |id: &str, status: &str, summary: &str| {
            from_mirror(&serde_json::json!({
                "id": "local", "googleEventId": id, "status": status, "summary": summary,
                "start": {"dateTime": "2030-01-15T09:00:00Z"},
                "end": {"dateTime": "2030-01-15T10:00:00Z"}, "pushState": "synced",
            }))
        };
        let diff = compare(&Snapshot {
            raw: Value::Null,
            mirror: vec![
                mirror("same", "confirmed", "A"),
                mirror("both-gone", "cancelled", "A"),
                mirror("zombie", "confirmed", "A"),
                mirror("stale", "confirmed", "old"),
                mirror("extra", "confirmed", "A"),
            ],
            truth: vec![
                google("same", "confirmed", "A"),
                google("both-gone", "cancelled", "A"),
                google("never-seen", "cancelled", "A"),
                google("zombie", "cancelled", "A"),
                google("stale", "confirmed", "new"),
                google("missing", "confirmed", "A"),
            ],
        });
        assert_eq!(diff.compared, 7);
        assert_eq!(diff.missing.len(), 1, "{:?}", diff.missing);
        assert_eq!(diff.extra.len(), 1, "{:?}", diff.extra);
        assert_eq!(diff.mismatched.len(), 2, "{:?}", diff.mismatched);
        assert!(diff.mismatched.iter().any(|m| m.starts_with("zombie")));
    }
}
