//! "Someone else in Google": remote inserts, edits and deletes, contested
//! edits of calsync's events, and the emulator's own random changes.

use std::sync::Arc;

use serde_json::{Value, json};

use super::shared::*;
use crate::chaos::rng::Rng;

/// Someone else in Google: inserts, edits and deletes events of their own
/// (the seeded ones and those they insert), sometimes edits or deletes an
/// event calsync created (marking it contested), and sometimes has the
/// emulator make random changes anywhere.
pub async fn remote(shared: Arc<Shared>, mut live: Vec<String>, mut rng: Rng) {
    let mut inserted = 0u64;
    while !shared.stopping() {
        let roll = rng.below(100);
        if live.is_empty() || (roll < 30 && live.len() < MAX_REMOTE_LIVE) {
            inserted += 1;
            remote_insert(&shared, &mut live, inserted, &mut rng).await;
        } else if roll < 60 {
            remote_patch(&shared, &mut live, &mut rng).await;
        } else if roll < 72 {
            remote_delete(&shared, &mut live, &mut rng).await;
        } else if roll < 86 {
            remote_contest(&shared, &mut rng).await;
        } else {
            admin_changes(&shared, "primary", &mut live, &mut rng).await;
        }
        pause(&shared, rng.range(300, 900)).await;
    }
}

pub(super) async fn remote_insert(shared: &Shared, live: &mut Vec<String>, n: u64, rng: &mut Rng) {
    // A client-chosen id makes a retried insert safe: a repeat is 409.
    let id = format!("rc{}", uuid::Uuid::new_v4().simple());
    let (start, end, _, _) = event_times(rng);
    let body = json!({ "id": id, "summary": format!("remote {n}"), "start": start, "end": end });
    match shared.call_google("POST", "", Some(&body)).await {
        Ok(reply) if reply.status == 200 || reply.status == 409 => {
            shared.count("remote_insert");
            shared.note(&id, format!("remote insert ({})", reply.status));
            live.push(id);
        }
        Ok(reply) => remote_odd(shared, &id, "insert", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "insert gave up", &last),
    }
}

pub(super) async fn remote_patch(shared: &Shared, live: &mut Vec<String>, rng: &mut Rng) {
    let Some(id) = rng.pick(live).cloned() else {
        return;
    };
    let body = if rng.chance(0.7) {
        json!({ "summary": format!("remote edit {}", short_id()) })
    } else {
        let (start, end, _, _) = event_times(rng);
        json!({ "start": start, "end": end })
    };
    match shared
        .call_google("PATCH", &format!("/{id}"), Some(&body))
        .await
    {
        Ok(reply) if reply.status == 200 => {
            shared.count("remote_patch");
            shared.note(&id, format!("remote patch: {body}"));
        }
        Ok(reply) if reply.status == 410 || reply.status == 404 => {
            // Deleted by the emulator's random changes meanwhile.
            live.retain(|other| other != &id);
        }
        Ok(reply) => remote_odd(shared, &id, "patch", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "patch gave up", &last),
    }
}

pub(super) async fn remote_delete(shared: &Shared, live: &mut Vec<String>, rng: &mut Rng) {
    let Some(id) = rng.pick(live).cloned() else {
        return;
    };
    match shared.call_google("DELETE", &format!("/{id}"), None).await {
        // 410: an earlier attempt was applied and only its answer dropped.
        Ok(reply) if reply.status == 204 || reply.status == 410 => {
            shared.count("remote_delete");
            shared.note(&id, format!("remote delete ({})", reply.status));
            live.retain(|other| other != &id);
        }
        Ok(reply) => remote_odd(shared, &id, "delete", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "delete gave up", &last),
    }
}

/// An edit or deletion in Google of an event calsync created.
pub(super) async fn remote_contest(shared: &Shared, rng: &mut Rng) {
    let ids: Vec<String> = lock(&shared.model)
        .api
        .values()
        .filter(|e| !e.deleted)
        .map(|e| e.google_id.clone())
        .collect();
    let Some(id) = rng.pick(&ids).cloned() else {
        return;
    };
    let deleting = rng.chance(0.3);
    shared.contest(
        &id,
        if deleting {
            "remote delete"
        } else {
            "remote patch"
        },
    );
    let reply = if deleting {
        shared.call_google("DELETE", &format!("/{id}"), None).await
    } else {
        let body = json!({ "summary": format!("remote contest {}", short_id()) });
        shared
            .call_google("PATCH", &format!("/{id}"), Some(&body))
            .await
    };
    shared.count(if deleting {
        "remote_contest_delete"
    } else {
        "remote_contest_patch"
    });
    match reply {
        Ok(reply) => shared.note(&id, format!("remote contest answered {}", reply.brief())),
        Err(last) => shared.note(&id, format!("remote contest gave up ({last})")),
    }
}

/// The emulator's own random changes in `calendar`: edits, deletions and
/// inserts of any live event, calsync's included.
pub(super) async fn admin_changes(
    shared: &Shared,
    calendar: &str,
    live: &mut Vec<String>,
    rng: &mut Rng,
) {
    let count = rng.range(1, 4);
    let reply = shared
        .admin(
            "POST",
            &format!("/calendars/{calendar}/changes"),
            Some(&json!({ "count": count })),
        )
        .await;
    let Ok(reply) = reply else {
        return;
    };
    shared.count("remote_admin_changes");
    let Some(changed) = reply.body["changed"].as_array() else {
        return;
    };
    for event in changed {
        let Some(id) = event["id"].as_str() else {
            continue;
        };
        let cancelled = event["status"].as_str() == Some("cancelled");
        let summary = event["summary"].as_str().unwrap_or_default();
        shared.contest(id, "the emulator's random change");
        shared.note(
            id,
            format!(
                "emulator random change: status {} summary {summary:?}",
                event["status"]
            ),
        );
        let ours = lock(&shared.model).api.contains_key(id);
        if cancelled {
            live.retain(|other| other != id);
        } else if !ours && !live.iter().any(|other| other == id) {
            live.push(id.to_owned());
        }
    }
}

/// The emulator refused "someone in Google": a harness matter, reported, not failed.
pub(super) fn remote_odd(shared: &Shared, id: &str, what: &str, detail: &str) {
    shared.count("remote_unexpected");
    shared.note(id, format!("remote {what}: {detail}"));
}

/// Every id "someone in Google" may edit from the start: the seeded events.
pub fn seeded_ids(truth: &Value) -> Vec<String> {
    truth["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
