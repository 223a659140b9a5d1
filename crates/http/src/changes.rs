//! `/calendar/changes`: the change feed, read from a cursor (with an
//! optional long poll); and [`ChangeJson`], which renders a change as this
//! API shows it, the body of its webhook delivery too.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::feed::{
    Change, ChangeQuery, ChangeType, Cursor, DEFAULT_READ, MAX_READ, Respondent,
};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::ports::ChangeRenderer;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::events::EventResource;
use crate::openapi::responses::{StoreUnavailable, Unauthorized};
use crate::request::rules;
use crate::{AppState, HttpError};

/// How an instant is written in changes and subscriptions: RFC 3339 in
/// UTC with milliseconds.
pub(crate) fn instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One change to the mirror, as `GET /calendar/changes` lists it and a
/// webhook delivery posts it. Fields that do not apply are absent (never
/// `null`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "cursor": "c2s", "type": "attendee.responded", "occurredAt": "2026-12-01T09:14:03.120Z",
    "origin": "google", "calendarId": "team@example.com",
    "eventId": "0b4c3c1e-5f7e-4f7a-9a57-6f1d2f3e4a5b", "googleEventId": "1m5s0c3e8v2d4f6g8h0j2k4l6n",
    "entityType": "deal", "entityId": "42", "etag": "\"3379160000000000\"",
    "changedFields": ["attendees"],
    "respondents": [{"email": "ana@example.com", "previous": "needsAction", "responseStatus": "declined"}]
}))]
pub struct ChangeResource {
    /// The change's position: pass it as `after` to read what came after
    /// it. Opaque (`c` and a base-36 number today). Also the `webhook-id`
    /// of its delivery, the same on every retry.
    pub cursor: String,
    #[serde(rename = "type")]
    #[schema(inline, value_type = ChangeTypeDoc)]
    pub kind: &'static str,
    /// When the change happened (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(inline, value_type = OriginDoc)]
    pub origin: &'static str,
    /// Absent for `drive.changed` and `grant.*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    /// calsync's event id (an occurrence changed on its own is its own
    /// row, with its own id); absent for `calendar.*` and `drive.changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// The event's etag after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The event's fields that changed, by their names in `event`
    /// (`summary`, `start`, `attendees`, `status`, `pushState`, `etag`,
    /// ...; `entity` for the entity link); empty for a new event and for
    /// changes without an event.
    pub changed_fields: Vec<String>,
    /// The event after the change, as `GET /calendar/events/{id}` answers
    /// it (with `pushError` for `event.push_failed` and `event.conflict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventResource>,
    /// `attendee.responded`: whose answers changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub respondents: Vec<RespondentResource>,
    /// `event.push_failed`: Google's refusal; `event.conflict`: calsync's
    /// note; `calendar.reconnect_required`: Google's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `drive.changed`: the notification's headers as received
    /// (`channelId`, `messageNumber`, `resourceId`, `resourceUri`,
    /// `resourceState`, `changed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub drive: Option<serde_json::Value>,
    /// `grant.reconnect_required`, `grant.recovered`: the connected
    /// account's grant (`GET /calendar/grants/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// An attendee whose answer changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RespondentResource {
    pub email: String,
    /// The answer before; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The answer now (Google's `responseStatus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
}

impl RespondentResource {
    fn new(respondent: &Respondent) -> Self {
        Self {
            email: respondent.email.clone(),
            previous: respondent.previous.clone(),
            response_status: respondent.response_status.clone(),
        }
    }
}

impl ChangeResource {
    pub fn new(change: &Change) -> Self {
        let inner = &change.change;
        let detail = &inner.detail;
        // A refused or lost write shows its reason on the event too, as
        // `GET /calendar/events/{id}` shows the last push error.
        let push_error = matches!(
            inner.kind,
            ChangeType::EventPushFailed | ChangeType::EventConflict
        )
        .then(|| detail.error.clone())
        .flatten();
        Self {
            cursor: change.cursor.encode(),
            kind: inner.kind.as_str(),
            occurred_at: instant(inner.occurred_at),
            origin: inner.origin.as_str(),
            calendar_id: inner.calendar_id.as_ref().map(ToString::to_string),
            event_id: inner.event_id().map(|id| id.to_string()),
            google_event_id: inner.google_event_id().map(ToString::to_string),
            entity_type: inner.entity().map(|e| e.entity_type().to_owned()),
            entity_id: inner.entity().map(|e| e.entity_id().to_owned()),
            etag: inner.etag().map(|e| e.as_str().to_owned()),
            changed_fields: inner.changed_fields.clone(),
            event: inner
                .event
                .as_deref()
                .map(|event| EventResource::new(event, push_error)),
            respondents: detail
                .respondents
                .iter()
                .map(RespondentResource::new)
                .collect(),
            error: detail.error.clone(),
            drive: detail.drive.clone(),
            grant_id: detail.grant.clone(),
        }
    }
}

/// Renders changes as [`ChangeResource`] JSON: the body of a webhook
/// delivery is exactly one element of `GET /calendar/changes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeJson;

impl ChangeRenderer for ChangeJson {
    fn render(&self, change: &Change) -> calsync_domain::Result<Vec<u8>> {
        serde_json::to_vec(&ChangeResource::new(change))
            .map_err(|e| DomainError::Storage(format!("rendering a change: {e}")))
    }
}

/// A change type: `event.created`, `event.updated`, `event.cancelled`,
/// `event.push_failed`, `event.conflict`, `attendee.responded`,
/// `calendar.reconnect_required`, `calendar.recovered`, `drive.changed`.
pub(crate) struct ChangeTypeDoc;

impl utoipa::PartialSchema for ChangeTypeDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ChangeType::FEED.map(ChangeType::as_str)))
            .into()
    }
}

impl ToSchema for ChangeTypeDoc {}

/// google (read from Google: an edit there, an RSVP, a deletion) | api (a
/// write through this API) | calsync (a push settling, a dead letter,
/// retention, a calendar's state)
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only
pub(crate) enum OriginDoc {
    Google,
    Api,
    Calsync,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePage {
    /// In cursor order.
    pub items: Vec<ChangeResource>,
    /// Where to read on from (`after`): past every change this read could
    /// see, those the filters left out included. Always present; the same
    /// as `after` when nothing came.
    pub next_cursor: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestCursor {
    /// The newest change's cursor (`c0` when there is none yet).
    pub cursor: String,
}

/// `GET /calendar/changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes after this cursor (a change's `cursor` or a read's
    /// `nextCursor`, unchanged); absent: from the oldest change kept. A
    /// cursor older than the oldest change kept (see
    /// `CALSYNC_CHANGES_RETENTION_DAYS`) is a 410 `cursor_expired`.
    pub after: Option<String>,
    /// Changes per read, 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only this calendar's changes.
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    pub calendar_id: Option<String>,
    /// Only changes to events of this entity type.
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    pub entity_type: Option<String>,
    /// Only changes to events of this entity id (with or without `entityType`).
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub entity_id: Option<String>,
    /// Only these types, comma-separated without spaces (e.g.
    /// `event.cancelled,attendee.responded`); empty: every type.
    pub types: Option<String>,
    /// Long poll: with nothing to answer yet, wait up to this many seconds
    /// (0 to 30; default 0) for a change, answering as soon as one
    /// commits, or empty at the deadline.
    #[param(minimum = 0, maximum = 30)]
    pub wait_secs: Option<u32>,
}

impl ChangesQuery {
    fn to_domain(&self) -> Result<(ChangeQuery, Duration), HttpError> {
        let after = self.after.as_deref().map(Cursor::decode).transpose()?;
        // The entity link's own rules, each part alone (a placeholder for
        // the other).
        if let Some(kind) = &self.entity_type {
            EntityRef::new(kind.clone(), "x")?;
        }
        if let Some(id) = &self.entity_id {
            EntityRef::new("x", id.clone())?;
        }
        let query = ChangeQuery {
            after,
            limit: self.limit.unwrap_or(DEFAULT_READ),
            calendar_id: self
                .calendar_id
                .as_deref()
                .map(CalendarId::new)
                .transpose()?,
            entity_type: self.entity_type.clone(),
            entity_id: self.entity_id.clone(),
            types: self
                .types
                .as_deref()
                .map(rules::change_types)
                .transpose()?
                .unwrap_or_default(),
        };
        if !(1..=MAX_READ).contains(&query.limit) {
            return Err(DomainError::invalid("limit", format!("must be 1 to {MAX_READ}")).into());
        }
        let wait = Duration::from_secs(u64::from(self.wait_secs.unwrap_or(0)));
        Ok((query, wait))
    }
}

/// Reads the change feed: every change to the mirror, in cursor order.
/// Read on from each answer's `nextCursor`; the ordering promise: once a
/// read has answered up to a cursor, no change sorting before it appears
/// later. With `waitSecs`, an empty answer waits for the next change.
#[utoipa::path(
    get, path = "/calendar/changes", tag = "changes", operation_id = "listChanges", params(ChangesQuery),
    responses(
        (status = 200, description = "The changes after `after` that the filters match, in cursor order, and where to read on from", body = ChangePage),
        (status = 400, description = "An invalid or unknown query parameter (a cursor this feed did not issue, an unknown type, a `limit` or `waitSecs` out of range); `error.field` names it", body = crate::error::ErrorBody),
        (status = 410, description = "`after` is older than the oldest change kept (`cursor_expired`): resynchronise (take `GET /calendar/changes/latest`, list the events, then read on from that cursor)", body = crate::error::ErrorBody),
        Unauthorized, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ChangesQuery>,
) -> Result<HttpResponse, HttpError> {
    let (query, wait) = query.to_domain()?;
    let batch = state.feed.read(&query, wait).await?;
    Ok(HttpResponse::Ok().json(ChangePage {
        items: batch.items.iter().map(ChangeResource::new).collect(),
        next_cursor: batch.next_cursor.encode(),
    }))
}

/// The newest change's cursor: where a reader starts (or starts again
/// after a `cursor_expired`). Take it first, then list the events, then
/// read on from it: a change made while listing is read again, not lost.
#[utoipa::path(
    get, path = "/calendar/changes/latest", tag = "changes", operation_id = "getLatestChangeCursor",
    responses(
        (status = 200, description = "The newest change's cursor", body = LatestCursor),
        Unauthorized, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn latest(
    _: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let cursor = state.feed.latest().await?;
    Ok(HttpResponse::Ok().json(LatestCursor {
        cursor: cursor.encode(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

    use super::*;
    use calsync_domain::event::{EventTime, NewEvent, NewEventFields};
    use calsync_domain::feed::{calendar_change, drive_change, push_failed};
    use chrono::TimeZone;

    fn rendered(change: calsync_domain::feed::NewChange) -> serde_json::Value {
        let change = Change {
            cursor: Cursor::from_seq(36),
            change,
        };
        serde_json::from_slice(&ChangeJson.render(&change).unwrap()).unwrap()
    }

    #[test]
    fn a_refused_write_shows_its_reason_on_the_change_and_on_the_event() {
        let at = chrono::Utc.with_ymd_and_hms(2030, 1, 15, 10, 0, 0).unwrap();
        let before = NewEvent::new(
            CalendarId::new("team@example.com").unwrap(),
            EntityRef::new("deal", "42").unwrap(),
            EventTime::at(at, None),
            EventTime::at(at + chrono::Duration::hours(1), None),
            NewEventFields::default(),
        )
        .unwrap()
        .into_event(at);
        let mut after = before.clone();
        after.push_state = calsync_domain::event::PushState::Failed;
        let json = rendered(push_failed(&before, &after, "Google said no", at));
        assert_eq!(json["cursor"], "c10");
        assert_eq!(json["type"], "event.push_failed");
        assert_eq!(json["occurredAt"], "2030-01-15T10:00:00.000Z");
        assert_eq!(json["origin"], "calsync");
        assert_eq!(json["error"], "Google said no");
        assert_eq!(json["event"]["pushError"], "Google said no");
        assert_eq!(json["changedFields"], serde_json::json!(["pushState"]));
        assert_eq!(json["entityId"], "42");
    }

    #[test]
    fn changes_without_an_event_leave_its_fields_out() {
        let at = chrono::Utc.with_ymd_and_hms(2030, 1, 15, 10, 0, 0).unwrap();
        let calendar = CalendarId::new("team@example.com").unwrap();
        let json = rendered(calendar_change(
            ChangeType::CalendarReconnectRequired,
            &calendar,
            Some("invalid_grant"),
            at,
        ));
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "calendarId",
                "changedFields",
                "cursor",
                "error",
                "occurredAt",
                "origin",
                "type"
            ]
        );
        let json = rendered(drive_change(serde_json::json!({"channelId": "d1"}), at));
        assert_eq!(json["drive"]["channelId"], "d1");
        assert!(json.get("calendarId").is_none() && json.get("event").is_none());
        assert!(!json.to_string().contains("null"), "{json}");
    }
}
