//! Google Meet conferences made by `conferenceData.createRequest`.
//!
//! Create events guide, "Add video and phone conferences":
//! https://developers.google.com/workspace/calendar/api/guides/create-events
//! events.insert `conferenceDataVersion`: "Version 0 assumes no conference
//! data support and ignores conference data in the event's body. Version 1
//! enables support for copying of ConferenceData as well as for creating
//! new conferences using the createRequest field of conferenceData."
//! https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
//!
//! Creation is asynchronous (`createRequest.status.statusCode`: "pending",
//! then "success"). Here a write answers `pending`, and the next API call
//! naming the calendar finds the conference ready: the event is rewritten
//! with `success`, `entryPoints` and `hangoutLink` under a new etag, as a
//! change incremental sync and watchers see.

use std::collections::{BTreeSet, HashMap};

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

#[derive(Debug, Clone)]
struct Conference {
    id: String,
    ready: bool,
}

#[derive(Debug, Default)]
pub struct Conferences {
    /// By calendar, then `requestId`: the same request yields the same
    /// conference (the guide: the request id makes creation idempotent).
    by_request: HashMap<String, HashMap<String, Conference>>,
    created: HashMap<String, u64>,
    /// Events whose conference is still pending, by calendar.
    pending: HashMap<String, BTreeSet<String>>,
}

fn meet_code() -> String {
    let mut rng = rand::rng();
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect()
    };
    format!("{}-{}-{}", part(3), part(4), part(3))
}

fn solution() -> Value {
    json!({
        "key": {"type": "hangoutsMeet"},
        "name": "Google Meet",
        "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
    })
}

fn render(request_id: &str, conference: &Conference) -> Value {
    let status = if conference.ready {
        "success"
    } else {
        "pending"
    };
    let entry_points = if conference.ready {
        json!([{
            "entryPointType": "video",
            "uri": format!("https://meet.google.com/{}", conference.id),
            "label": format!("meet.google.com/{}", conference.id),
        }])
    } else {
        json!([])
    };
    json!({
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
            "status": {"statusCode": status},
        },
        "entryPoints": entry_points,
        "conferenceSolution": solution(),
        "conferenceId": conference.id,
    })
}

/// Sets `hangoutLink` from the conference data, as Google derives it.
fn link(body: &mut Map<String, Value>) {
    let uri = body
        .get("conferenceData")
        .and_then(|c| c.get("entryPoints"))
        .and_then(Value::as_array)
        .and_then(|points| {
            points
                .iter()
                .find(|p| p.get("entryPointType").and_then(Value::as_str) == Some("video"))
        })
        .and_then(|p| p.get("uri"))
        .and_then(Value::as_str)
        .filter(|uri| uri.starts_with("https://meet.google.com/"))
        .map(str::to_owned);
    match uri {
        Some(uri) => body.insert("hangoutLink".into(), json!(uri)),
        None => body.remove("hangoutLink"),
    };
}

impl Conferences {
    pub fn created(&self, calendar_id: &str) -> u64 {
        self.created.get(calendar_id).copied().unwrap_or(0)
    }

    pub fn created_total(&self) -> u64 {
        self.created.values().sum()
    }

    /// Applies `conferenceData` to an event body being written. `previous`
    /// is the stored event (None on insert); `version` the request's
    /// `conferenceDataVersion`. With version 0 the body's conference data is
    /// ignored: an insert drops it, a patch or update keeps what was stored.
    pub fn apply(
        &mut self,
        calendar_id: &str,
        event_id: &str,
        body: &mut Map<String, Value>,
        previous: Option<&Map<String, Value>>,
        version: u8,
    ) -> Result<(), ApiError> {
        if version == 0 {
            for key in ["conferenceData", "hangoutLink"] {
                match previous.and_then(|p| p.get(key)) {
                    Some(value) => body.insert(key.into(), value.clone()),
                    None => body.remove(key),
                };
            }
            return Ok(());
        }
        let request = body
            .get("conferenceData")
            .and_then(|c| c.get("createRequest"))
            .cloned();
        if let Some(request) = request {
            let request_id = request
                .get("requestId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request("invalid", "Invalid conference create request.")
                })?
                .to_owned();
            let kind = request
                .get("conferenceSolutionKey")
                .and_then(|k| k.get("type"))
                .and_then(Value::as_str);
            if kind != Some("hangoutsMeet") {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Invalid conference type value.",
                ));
            }
            let conferences = self.by_request.entry(calendar_id.to_owned()).or_default();
            let conference = match conferences.get(&request_id) {
                Some(conference) => conference.clone(),
                None => {
                    let conference = Conference {
                        id: meet_code(),
                        ready: false,
                    };
                    conferences.insert(request_id.clone(), conference.clone());
                    *self.created.entry(calendar_id.to_owned()).or_default() += 1;
                    conference
                }
            };
            if !conference.ready {
                self.pending
                    .entry(calendar_id.to_owned())
                    .or_default()
                    .insert(event_id.to_owned());
            }
            body.insert("conferenceData".into(), render(&request_id, &conference));
        }
        link(body);
        Ok(())
    }

    /// Makes the calendar's pending conferences ready. Returns the events
    /// whose body must now be rewritten, with their new conference data.
    pub fn settle(&mut self, calendar_id: &str) -> Vec<String> {
        let events: Vec<String> = self
            .pending
            .remove(calendar_id)
            .map(|set| set.into_iter().collect())
            .unwrap_or_default();
        if let Some(conferences) = self.by_request.get_mut(calendar_id) {
            for conference in conferences.values_mut() {
                conference.ready = true;
            }
        }
        events
    }

    /// The ready form of an event's conference data, if it names one of
    /// this calendar's conferences still shown as pending.
    pub fn ready_form(&self, calendar_id: &str, body: &mut Map<String, Value>) -> bool {
        let data = body.get("conferenceData");
        let pending = data
            .and_then(|c| c.pointer("/createRequest/status/statusCode"))
            .and_then(Value::as_str)
            == Some("pending");
        let request_id = data
            .and_then(|c| c.pointer("/createRequest/requestId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let conference = request_id.as_ref().and_then(|id| {
            self.by_request
                .get(calendar_id)
                .and_then(|c| c.get(id))
                .filter(|c| c.ready)
        });
        match (pending, request_id, conference) {
            (true, Some(request_id), Some(conference)) => {
                body.insert("conferenceData".into(), render(&request_id, conference));
                link(body);
                true
            }
            _ => false,
        }
    }
}
