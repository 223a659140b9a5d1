//! The change feed's verdicts, once the mirror converged and delivery
//! caught up: (a) every event of the mirror has its state as the last
//! change of it in the feed; (b) every change after the subscription's
//! start reached the receiver, accepted at least once, signed, and first
//! received in cursor order; (c) replaying the feed from its start,
//! keeping each event's last state, rebuilds each entity's events as the
//! mirror holds them.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use calsync_domain::feed::Cursor;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Time;
use crate::chaos::receiver::{Receipt, Verdict};

#[derive(Debug, Default)]
pub struct FeedVerdict {
    /// Changes in the feed, and by type.
    pub changes: usize,
    pub by_type: BTreeMap<String, usize>,
    /// Cursors not strictly increasing, events without their ids, ...
    pub malformed: Vec<String>,
    /// (a) mirror events compared with their last change.
    pub events: usize,
    /// (a) mirror events without any change in the feed.
    pub missing: Vec<String>,
    /// (a) mirror events whose last change holds another state.
    pub stale: Vec<String>,
    /// (c) entities (and the events without one, as one group) rebuilt.
    pub entities: usize,
    /// (c) entities whose rebuilt events differ from the mirror's.
    pub rebuilt_wrong: Vec<String>,
    /// (b) changes after the subscription's start.
    pub due: usize,
    /// (b) deliveries the receiver read, and accepted.
    pub received: usize,
    pub accepted: usize,
    /// (b) due changes accepted at least once.
    pub delivered: usize,
    /// (b) accepted more than once (at least once allows it).
    pub duplicates: usize,
    pub undelivered: Vec<String>,
    pub out_of_order: Vec<String>,
    pub bad_signatures: Vec<String>,
    /// (b) an accepted body that is not the feed's change, or a delivery
    /// of no change after the subscription's start.
    pub wrong_body: Vec<String>,
    /// (b) from each change's `occurredAt` to its first accepted delivery.
    pub lags: Vec<Duration>,
    /// (b) the longest time between two deliveries the receiver read
    /// (backoffs, the outage, a dead replica's lease).
    pub longest_pause: Duration,
}

impl FeedVerdict {
    pub fn clean(&self) -> bool {
        self.malformed.is_empty()
            && self.missing.is_empty()
            && self.stale.is_empty()
            && self.rebuilt_wrong.is_empty()
            && self.undelivered.is_empty()
            && self.out_of_order.is_empty()
            && self.bad_signatures.is_empty()
            && self.wrong_body.is_empty()
    }

    /// The `q` quantile of the delivery lags (0 with none).
    pub fn lag(&self, q: f64) -> Duration {
        let mut lags = self.lags.clone();
        lags.sort_unstable();
        let index = ((lags.len() as f64 - 1.0) * q).round().max(0.0) as usize;
        lags.get(index).copied().unwrap_or_default()
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn seq_of(cursor: &str) -> Option<u64> {
    Cursor::decode(cursor).ok().map(Cursor::seq)
}

/// The fields that matter, compared as the mirror's check compares them
/// (times by instant); empty when the two agree.
pub fn differences(feed: &Value, mirror: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["status", "summary", "etag", "pushState"] {
        if text(&feed[field]) != text(&mirror[field]) {
            out.push(format!(
                "{field} {:?} in the feed, {:?} in the mirror",
                text(&feed[field]),
                text(&mirror[field])
            ));
        }
    }
    for field in ["start", "end"] {
        let (f, m) = (Time::parse(&feed[field]), Time::parse(&mirror[field]));
        if f != m {
            out.push(format!("{field} {f} in the feed, {m} in the mirror"));
        }
    }
    let attendees = |event: &Value| match &event["attendees"] {
        Value::Null => Value::Array(Vec::new()),
        other => other.clone(),
    };
    if attendees(feed) != attendees(mirror) {
        out.push(format!(
            "attendees {} in the feed, {} in the mirror",
            attendees(feed),
            attendees(mirror)
        ));
    }
    out
}

fn entity_key(event: &Value) -> String {
    match (event["entityType"].as_str(), event["entityId"].as_str()) {
        (Some(kind), Some(id)) => format!("{kind}/{id}"),
        _ => "(no entity)".to_owned(),
    }
}

/// The verdict on `feed` (every change, from the oldest), the mirror's
/// events as listed, and what the receiver read for the subscription
/// that began after `start`.
pub fn check(feed: &[Value], mirror: &[Value], receipts: &[Receipt], start: Cursor) -> FeedVerdict {
    let mut verdict = FeedVerdict {
        changes: feed.len(),
        ..FeedVerdict::default()
    };
    // The replay: each event's last state, and the feed's own shape.
    let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut by_cursor: BTreeMap<u64, &Value> = BTreeMap::new();
    let mut previous = 0;
    for change in feed {
        let cursor = text(&change["cursor"]);
        *verdict
            .by_type
            .entry(text(&change["type"]).to_owned())
            .or_default() += 1;
        match seq_of(cursor) {
            Some(seq) if seq > previous => {
                previous = seq;
                by_cursor.insert(seq, change);
            }
            _ => verdict.malformed.push(format!(
                "cursor {cursor:?} does not come after the change before it ({})",
                Cursor::from_seq(previous).encode()
            )),
        }
        if let Some(event) = change.get("event") {
            let id = text(&event["id"]);
            if id.is_empty() || text(&change["eventId"]) != id {
                verdict.malformed.push(format!(
                    "{cursor}: eventId {:?} but its event's id {id:?}",
                    text(&change["eventId"])
                ));
            }
            last.insert(id, event);
        }
    }

    // (a) Every mirror event is the last state the feed gave it.
    let mut fields_differ: BTreeSet<&str> = BTreeSet::new();
    for row in mirror {
        verdict.events += 1;
        let id = text(&row["id"]);
        match last.get(id) {
            None => verdict.missing.push(format!(
                "{id} ({} {:?}, google {}): no change of it in the feed",
                text(&row["status"]),
                text(&row["summary"]),
                text(&row["googleEventId"])
            )),
            Some(event) => {
                let found = differences(event, row);
                if !found.is_empty() {
                    fields_differ.insert(id);
                    verdict.stale.push(format!(
                        "{id} (google {}): {}",
                        text(&row["googleEventId"]),
                        found.join("; ")
                    ));
                }
            }
        }
    }

    // (c) Each entity's events, rebuilt from the replay, against the mirror's.
    let group = |events: &mut dyn Iterator<Item = &Value>| {
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for event in events {
            groups
                .entry(entity_key(event))
                .or_default()
                .insert(text(&event["id"]).to_owned());
        }
        groups
    };
    let rebuilt = group(&mut last.values().copied());
    let held = group(&mut mirror.iter());
    let keys: BTreeSet<&String> = rebuilt.keys().chain(held.keys()).collect();
    verdict.entities = keys.len();
    let none = BTreeSet::new();
    for key in keys {
        let (from_feed, in_mirror) = (
            rebuilt.get(key).unwrap_or(&none),
            held.get(key).unwrap_or(&none),
        );
        let only_feed: Vec<&String> = from_feed.difference(in_mirror).collect();
        let only_mirror: Vec<&String> = in_mirror.difference(from_feed).collect();
        let stale = in_mirror
            .iter()
            .filter(|id| fields_differ.contains(id.as_str()))
            .count();
        if !only_feed.is_empty() || !only_mirror.is_empty() || stale > 0 {
            verdict.rebuilt_wrong.push(format!(
                "{key}: events only in the replay {only_feed:?}, only in the mirror {only_mirror:?}, in both but different {stale}"
            ));
        }
    }

    // (b) Deliveries.
    verdict.received = receipts.len();
    verdict.longest_pause = receipts
        .windows(2)
        .filter_map(|pair| (pair[1].at - pair[0].at).to_std().ok())
        .max()
        .unwrap_or_default();
    let mut first_seen: BTreeSet<&str> = BTreeSet::new();
    let mut first_order = 0;
    let mut accepted: BTreeMap<u64, (DateTime<Utc>, &Value)> = BTreeMap::new();
    for receipt in receipts {
        let Some(seq) = seq_of(&receipt.id) else {
            verdict.wrong_body.push(format!(
                "a delivery with webhook-id {:?}, not a cursor",
                receipt.id
            ));
            continue;
        };
        if first_seen.insert(receipt.id.as_str()) {
            if seq <= first_order {
                verdict.out_of_order.push(format!(
                    "{} first received at {} after {} (a later change)",
                    receipt.id,
                    receipt.at.format("%H:%M:%S%.3f"),
                    Cursor::from_seq(first_order).encode()
                ));
            }
            first_order = first_order.max(seq);
        }
        match &receipt.verdict {
            Verdict::BadSignature(problem) => verdict
                .bad_signatures
                .push(format!("{} at {}: {problem}", receipt.id, receipt.at)),
            Verdict::Accepted => {
                verdict.accepted += 1;
                match accepted.entry(seq) {
                    Entry::Occupied(_) => verdict.duplicates += 1,
                    Entry::Vacant(slot) => {
                        if let Some(body) = &receipt.body {
                            slot.insert((receipt.at, body));
                        }
                    }
                }
            }
            Verdict::Refused(_) | Verdict::Stalled => {}
        }
    }
    for (seq, change) in by_cursor.range(start.seq().saturating_add(1)..) {
        verdict.due += 1;
        let cursor = text(&change["cursor"]);
        let Some((at, body)) = accepted.get(seq) else {
            verdict.undelivered.push(format!(
                "{cursor} ({} at {}, event {})",
                text(&change["type"]),
                text(&change["occurredAt"]),
                text(&change["eventId"])
            ));
            continue;
        };
        verdict.delivered += 1;
        if *body != *change {
            let keys: Vec<&String> = change
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| body.get(k.as_str()) != Some(*v))
                .map(|(k, _)| k)
                .collect();
            verdict.wrong_body.push(format!(
                "{cursor}: the delivered body differs from the feed's change in {keys:?}"
            ));
        }
        if let Ok(occurred) = DateTime::parse_from_rfc3339(text(&change["occurredAt"])) {
            verdict.lags.push(
                (*at - occurred.with_timezone(&Utc))
                    .to_std()
                    .unwrap_or_default(),
            );
        }
    }
    for seq in accepted.keys() {
        if *seq <= start.seq() || !by_cursor.contains_key(seq) {
            verdict.wrong_body.push(format!(
                "{} was delivered but is not a change after the subscription's start {}",
                Cursor::from_seq(*seq).encode(),
                start.encode()
            ));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn event(id: &str, summary: &str, entity: &str) -> Value {
        json!({
            "id": id, "googleEventId": format!("g{id}"), "status": "confirmed",
            "summary": summary, "entityType": "chaos", "entityId": entity,
            "start": {"dateTime": "2030-01-15T10:00:00+01:00"},
            "end": {"dateTime": "2030-01-15T11:00:00+01:00"},
            "attendees": [], "etag": "\"1\"", "pushState": "synced",
        })
    }

    fn change(seq: u64, event: &Value) -> Value {
        json!({
            "cursor": Cursor::from_seq(seq).encode(), "type": "event.updated",
            "occurredAt": "2030-01-01T00:00:00.000Z", "eventId": event["id"],
            "event": event,
        })
    }

    fn accepted(seq: u64, body: &Value) -> Receipt {
        Receipt {
            id: Cursor::from_seq(seq).encode(),
            at: DateTime::parse_from_rfc3339("2030-01-01T00:00:01Z")
                .unwrap()
                .with_timezone(&Utc),
            verdict: Verdict::Accepted,
            body: Some(body.clone()),
        }
    }

    #[test]
    fn a_faithful_feed_and_delivery_pass() {
        let (a1, a2, b) = (
            event("a", "one", "1"),
            event("a", "two", "1"),
            event("b", "x", "2"),
        );
        let feed = vec![change(1, &a1), change(2, &b), change(3, &a2)];
        let mut mirror_a = a2.clone();
        // Another notation of the same instant.
        mirror_a["start"] = json!({"dateTime": "2030-01-15T09:00:00Z"});
        let receipts = vec![
            accepted(2, &feed[1]),
            accepted(3, &feed[2]),
            accepted(3, &feed[2]),
        ];
        let verdict = check(&feed, &[mirror_a, b], &receipts, Cursor::from_seq(1));
        assert!(verdict.clean(), "{verdict:?}");
        assert_eq!(
            (verdict.due, verdict.delivered, verdict.duplicates),
            (2, 2, 1)
        );
        assert_eq!(verdict.lags, vec![Duration::from_secs(1); 2]);
    }

    #[test]
    fn lost_stale_unordered_and_unsigned_are_found() {
        let (a1, a2, b) = (
            event("a", "one", "1"),
            event("a", "two", "1"),
            event("b", "x", "2"),
        );
        let c = event("c", "never in the feed", "3");
        let feed = vec![change(1, &a1), change(2, &b), change(3, &a1)];
        let mut moved = b.clone();
        moved["entityId"] = json!("9");
        let mut bad = accepted(1, &feed[0]);
        bad.verdict = Verdict::BadSignature("Forbidden".into());
        let receipts = vec![accepted(3, &feed[2]), accepted(2, &json!({})), bad];
        let verdict = check(&feed, &[a2, moved, c], &receipts, Cursor::from_seq(0));
        assert_eq!(verdict.missing.len(), 1, "{:?}", verdict.missing);
        assert_eq!(verdict.stale.len(), 1, "{:?}", verdict.stale);
        assert!(verdict.stale[0].contains("summary"), "{:?}", verdict.stale);
        // a (stale), b (moved to another entity: both groups), c (absent).
        assert_eq!(
            verdict.rebuilt_wrong.len(),
            4,
            "{:?}",
            verdict.rebuilt_wrong
        );
        assert_eq!(verdict.undelivered.len(), 1, "{:?}", verdict.undelivered);
        assert_eq!(verdict.out_of_order.len(), 2, "{:?}", verdict.out_of_order);
        assert_eq!(verdict.bad_signatures.len(), 1);
        assert_eq!(verdict.wrong_body.len(), 1, "{:?}", verdict.wrong_body);
        assert!(!verdict.clean());
    }
}
