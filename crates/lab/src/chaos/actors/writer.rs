//! The API writers: each creates events for its entities (with an
//! Idempotency-Key), patches and deletes only its own events.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::shared::*;
use crate::chaos::rng::Rng;
use crate::harness::net::Reply;

/// One API client: creates events for its entities (with an
/// Idempotency-Key) in `calendar` (the default calendar with `None`),
/// patches and deletes only its own events.
pub async fn writer(shared: Arc<Shared>, index: usize, calendar: Option<String>, mut rng: Rng) {
    let mut live: Vec<String> = Vec::new();
    let mut created = 0u64;
    while !shared.stopping() {
        {
            let model = lock(&shared.model);
            live.retain(|id| model.api.get(id).is_some_and(|e| !e.contested));
        }
        let roll = rng.below(100);
        if live.is_empty() || (roll < 40 && live.len() < MAX_LIVE_PER_WRITER) {
            created += 1;
            if let Some(id) = create(&shared, index, calendar.as_deref(), created, &mut rng).await {
                live.push(id);
            }
        } else if let Some(id) = rng.pick(&live).cloned() {
            if roll < 85 {
                patch(&shared, &id, &mut rng).await;
            } else if delete(&shared, &id).await {
                live.retain(|other| other != &id);
            }
        }
        pause(&shared, rng.range(150, 500)).await;
    }
}

pub(super) async fn create(
    shared: &Shared,
    writer: usize,
    calendar: Option<&str>,
    n: u64,
    rng: &mut Rng,
) -> Option<String> {
    let entity_id = format!("{}-w{writer}-{n}", shared.run_id);
    let (start_json, end_json, start, end) = event_times(rng);
    let summary = format!("api {entity_id}");
    let mut body = json!({
        "entityType": ENTITY_TYPE,
        "entityId": entity_id,
        "summary": summary,
        "start": start_json,
        "end": end_json,
    });
    if let Some(calendar) = calendar {
        body["calendarId"] = json!(calendar);
    }
    if rng.chance(0.3) {
        // Personal data the logs must only ever show masked.
        body["attendees"] = json!([{ "email": format!("chaos.guest.{n}@example.com") }]);
        body["description"] = json!(format!("Call jane.roe.{writer}.{n}@example.org first"));
    }
    let key = uuid::Uuid::new_v4().to_string();
    let answer = shared
        .call_server(
            "POST",
            "/calendar/events",
            &[("idempotency-key", key.as_str())],
            Some(&body),
        )
        .await;
    match answer {
        Answer::Acked(reply) => {
            if reply.replayed {
                shared.count("api_create_replayed");
            }
            let google_id = reply.body["googleEventId"].as_str().unwrap_or_default();
            let local_id = reply.body["id"].as_str().unwrap_or_default();
            if google_id.is_empty() || local_id.is_empty() {
                shared.fail(format!(
                    "create {entity_id} answered without ids: {}",
                    reply.brief()
                ));
                return None;
            }
            shared.count("api_create");
            if reply.body["status"].as_str() != Some("confirmed") {
                shared.fail(format!("create {entity_id} answered {}", reply.brief()));
            }
            lock(&shared.model).api.insert(
                google_id.to_owned(),
                ApiEvent {
                    entity_id: entity_id.clone(),
                    local_id: local_id.to_owned(),
                    google_id: google_id.to_owned(),
                    summary,
                    start: start.clone(),
                    end: end.clone(),
                    status: "confirmed".into(),
                    deleted: false,
                    contested: false,
                    uncertain: false,
                },
            );
            shared.note(
                google_id,
                format!("api create acked ({}): entity {entity_id} local {local_id} start {start} end {end}", reply.status),
            );
            Some(google_id.to_owned())
        }
        Answer::Refused { reply, .. } => {
            shared.fail(format!("create {entity_id} refused: {}", reply.brief()));
            None
        }
        Answer::GaveUp(last) => {
            shared.count("api_create_unanswered");
            shared.mark(format!("create {entity_id} never answered ({last})"));
            lock(&shared.model).unacked_creates.push(entity_id);
            None
        }
    }
}

pub(super) async fn patch(shared: &Shared, google_id: &str, rng: &mut Rng) {
    let Some(mut expected) = lock(&shared.model).api.get(google_id).cloned() else {
        return;
    };
    let mut body = Map::new();
    let roll = rng.below(10);
    if roll <= 4 || roll == 8 {
        let summary = format!("api edit {}", short_id());
        body.insert("summary".into(), json!(summary));
        expected.summary = summary;
    }
    if (5..=8).contains(&roll) {
        let (start_json, end_json, start, end) = event_times(rng);
        body.insert("start".into(), start_json);
        body.insert("end".into(), end_json);
        expected.start = start;
        expected.end = end;
    }
    if roll == 9 {
        let status = if expected.status == "tentative" {
            "confirmed"
        } else {
            "tentative"
        };
        body.insert("status".into(), json!(status));
        expected.status = status.into();
    }
    let body = Value::Object(body);
    let path = format!("/calendar/events/{}", expected.local_id);
    // Some patches are conditional, on the etag a read just returned.
    let etag = match rng.chance(0.2) {
        true => current_etag(shared, &path).await,
        false => None,
    };
    let headers: Vec<(&str, &str)> = etag.iter().map(|e| ("if-match", e.as_str())).collect();
    match shared
        .call_server("PATCH", &path, &headers, Some(&body))
        .await
    {
        Answer::Refused { reply, retried } if reply.status == 412 && etag.is_some() => {
            if retried {
                // The unanswered attempt may have been applied, moving the etag.
                unanswered(shared, google_id, "patch", "412 after a retry");
            } else {
                shared.count("api_patch_conflict");
                shared.note(google_id, format!("api patch if-match {etag:?}: 412"));
            }
        }
        Answer::Acked(reply) => {
            if etag.is_some() {
                shared.count("api_patch_conditional");
            }
            shared.count("api_patch");
            shared.note(
                google_id,
                format!("api patch acked ({}): {body}", reply.status),
            );
            if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
                event.summary = expected.summary;
                event.start = expected.start;
                event.end = expected.end;
                event.status = expected.status;
            }
        }
        Answer::Refused { reply, .. } => refused(shared, google_id, "patch", &reply),
        Answer::GaveUp(last) => unanswered(shared, google_id, "patch", &last),
    }
}

/// The event's etag from `GET`, if it has one (it has none until pushed).
pub(super) async fn current_etag(shared: &Shared, path: &str) -> Option<String> {
    let url = format!("{}{path}", shared.server);
    let auth = shared.auth();
    match shared
        .http
        .send("GET", &url, &[("authorization", auth.as_str())], None)
        .await
    {
        Ok(reply) if reply.status >= 500 => {
            shared.server_error("GET", path, &reply);
            None
        }
        Ok(reply) if reply.status == 200 => reply.etag,
        _ => None,
    }
}

/// True once the delete is acknowledged.
pub(super) async fn delete(shared: &Shared, google_id: &str) -> bool {
    let Some(local_id) = lock(&shared.model)
        .api
        .get(google_id)
        .map(|e| e.local_id.clone())
    else {
        return false;
    };
    let path = format!("/calendar/events/{local_id}");
    match shared.call_server("DELETE", &path, &[], None).await {
        Answer::Acked(reply) => {
            shared.count("api_delete");
            shared.note(google_id, format!("api delete acked ({})", reply.status));
            if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
                event.deleted = true;
            }
            true
        }
        Answer::Refused { reply, .. } => {
            refused(shared, google_id, "delete", &reply);
            false
        }
        Answer::GaveUp(last) => {
            unanswered(shared, google_id, "delete", &last);
            false
        }
    }
}

pub(super) fn refused(shared: &Shared, google_id: &str, what: &str, reply: &Reply) {
    shared.count(&format!("api_{what}_refused"));
    shared.note(google_id, format!("api {what} refused: {}", reply.brief()));
    lock(&shared.model).refusals.push((
        google_id.to_owned(),
        format!(
            "t={:.1}s {what} of {google_id} refused: {}",
            shared.secs(),
            reply.brief()
        ),
    ));
}

pub(super) fn unanswered(shared: &Shared, google_id: &str, what: &str, last: &str) {
    shared.count(&format!("api_{what}_unanswered"));
    shared.note(google_id, format!("api {what} never answered ({last})"));
    if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
        event.uncertain = true;
    }
}
