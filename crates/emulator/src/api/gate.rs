//! What every Calendar API call goes through before its handler runs:
//! counting, latency, authentication, quotas, faults, and access to the
//! calendar it names.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Data, Reply};
use crate::access::AccessRole;
use crate::error::ApiError;
use crate::lock;
use crate::quota::Principal;
use crate::users::Bearer;

fn record_send_updates(data: &Data, request: &HttpRequest, op: &str) {
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string());
    if let Some(value) = query.ok().and_then(|q| q.get("sendUpdates").cloned()) {
        lock(&data.send_updates).insert(op.to_owned(), value);
    }
}

/// How a call that passed [`enter`] is to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Carry the call out and answer it.
    Answer,
    /// Close the connection at once; nothing is done.
    Drop,
    /// Carry the write out, then close the connection instead of answering.
    ApplyThenDrop,
}

/// A call admitted by [`enter`]: how to answer it, who makes it, and
/// with what access role on the calendar it names (`owner` without one).
pub(super) struct Call {
    entry: Entry,
    pub(super) principal: Principal,
    pub(super) role: AccessRole,
    /// The calendar the call names, `primary` resolved to the account's
    /// own for a user (empty when the call names none).
    pub(super) calendar: String,
}

impl Call {
    pub(super) fn run(&self, call: impl FnOnce() -> Reply) -> Reply {
        match self.entry {
            Entry::Answer => call(),
            Entry::Drop => Ok(dropped_connection()),
            Entry::ApplyThenDrop => {
                // The answer is lost whatever it was, a refusal included:
                // the client cannot tell what happened, which is the point.
                let _lost = call();
                Ok(dropped_connection())
            }
        }
    }

    /// Refuses a write whose body invites attendees when the principal is
    /// a service account acting as itself and the emulator is configured
    /// to refuse it, as Google does without domain-wide delegation.
    pub(super) fn check_attendees(
        &self,
        data: &Data,
        body: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let invites = body
            .get("attendees")
            .and_then(Value::as_array)
            .is_some_and(|attendees| !attendees.is_empty());
        if invites && self.principal.service_account && data.config.forbid_service_account_attendees
        {
            Err(ApiError::forbidden_for_service_accounts())
        } else {
            Ok(())
        }
    }

    /// Records the principal as a caller on calendars a call names in its
    /// body rather than its path (free/busy), as [`enter`] does for the
    /// calendar in the path.
    pub(super) fn read(&self, data: &Data, calendars: &[String]) {
        let mut usage = lock(&data.usage);
        for calendar in calendars {
            usage.called(&self.principal.name, calendar);
        }
    }

    /// Records the principal as the calendar's latest writer.
    pub(super) fn wrote(&self, data: &Data, calendar: &str) {
        lock(&data.usage)
            .last_writer
            .insert(calendar.to_owned(), self.principal.name.clone());
    }
}

/// The operations `applyThenDrop` applies before dropping the answer.
const WRITES: [&str; 4] = ["insert", "patch", "update", "delete"];

/// What every API call goes through: counting, latency, auth, quotas,
/// faults, and access to the calendar it names.
pub(super) async fn enter(
    data: &Data,
    request: &HttpRequest,
    op: &str,
    calendar: Option<&str>,
) -> Result<Call, ApiError> {
    *lock(&data.calls).entry(op.to_owned()).or_default() += 1;
    record_send_updates(data, request, op);
    let (fault, latency) = {
        let mut plan = lock(&data.faults);
        (plan.next(op), plan.latency_ms)
    };
    if latency > 0 {
        lock(&data.fault_stats).latency_applied += 1;
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let principal = authorize(data, request)?;
    // calendars.get reference: "To retrieve calendar IDs call the
    // calendarList.list method. If you want to access the primary calendar
    // of the currently logged in user, use the "primary" keyword."
    let calendar = calendar.map(|id| {
        if principal.user && id == "primary" {
            principal.name.clone()
        } else {
            id.to_owned()
        }
    });
    // As with authentication, a fault taken by a call refused here never fired.
    lock(&data.usage).admit(
        &principal.name,
        op,
        calendar.as_deref(),
        std::time::Instant::now(),
    )?;
    let entry = match fault {
        None => Entry::Answer,
        Some(fault) => {
            let (entry, kind) = if fault.apply_then_drop && WRITES.contains(&op) {
                (Ok(Entry::ApplyThenDrop), "applyThenDrop".to_owned())
            } else if fault.drop || fault.apply_then_drop {
                (Ok(Entry::Drop), "drop".to_owned())
            } else {
                (Err(fault.to_error()), fault.kind())
            };
            *lock(&data.fault_stats).fired.entry(kind).or_default() += 1;
            entry?
        }
    };
    let mut role = AccessRole::Owner;
    if let Some(calendar) = calendar.as_deref() {
        // A user sees its own calendars and those shared with it; any
        // other is 404, as Google answers for a calendar one cannot see.
        let user_role = if principal.user {
            Some(lock(&data.users).role(&principal.name, calendar))
        } else {
            None
        };
        let mut calendars = lock(&data.calendars);
        role = calendars.roles.of(calendar, &principal.name);
        if let Some(user_role) = user_role {
            role = user_role.map_or(role, |r| r.min(role));
        }
        let refusal = calendars
            .reachable(calendar)
            .and_then(|()| match user_role {
                Some(None) => Err(ApiError::not_found()),
                _ => Ok(()),
            })
            .and_then(|()| {
                if WRITES.contains(&op) && !role.can_write() {
                    Err(ApiError::required_access_level())
                } else {
                    Ok(())
                }
            });
        if let Err(error) = refusal {
            return match entry {
                Entry::Answer => Err(error),
                // A refused write whose answer is lost is just a lost answer.
                Entry::Drop | Entry::ApplyThenDrop => Ok(Call {
                    entry: Entry::Drop,
                    principal,
                    role,
                    calendar: calendar.to_owned(),
                }),
            };
        }
        let now = chrono::Utc::now();
        // Deleted events past the purge age are gone before the call looks.
        calendars.purge(calendar, now);
        // Conferences requested by earlier calls are ready by now.
        let settled = calendars.settle_conferences(calendar, now);
        drop(calendars);
        data.notify(settled);
    }
    Ok(Call {
        entry,
        principal,
        role,
        calendar: calendar.unwrap_or_default(),
    })
}

/// A response whose body fails at once: the server aborts the connection,
/// so the client sees it closed without an answer.
fn dropped_connection() -> HttpResponse {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped",
        ))
    });
    HttpResponse::Ok().streaming(failing)
}

/// The bearer token of a request, if any.
pub(super) fn bearer(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|token| !token.is_empty())
}

/// Google's answer to a missing, expired or revoked token.
pub(super) fn auth_error() -> ApiError {
    ApiError::new(401, "authError", "Invalid Credentials")
}

/// The principal of a call with a valid bearer token: a user access token's
/// account (under either auth mode: the emulator issued it), the one
/// recorded when a service-account token was issued, or with open auth the
/// token itself. An expired or revoked user token is refused even with
/// open auth.
fn authorize(data: &Data, request: &HttpRequest) -> Result<Principal, ApiError> {
    let bearer = bearer(request);
    if let Some(token) = bearer {
        match lock(&data.users).bearer(token, std::time::Instant::now()) {
            Bearer::Unknown => {}
            Bearer::Dead => return Err(auth_error()),
            Bearer::Account(account) => {
                return Ok(Principal {
                    name: account,
                    service_account: false,
                    user: true,
                });
            }
        }
    }
    let principal = bearer.and_then(|token| {
        let issued = lock(&data.tokens).get(token).cloned();
        match &data.config.auth {
            crate::EmulatorAuth::Open => Some(issued.unwrap_or_else(|| Principal {
                name: token.to_owned(),
                service_account: false,
                user: false,
            })),
            crate::EmulatorAuth::ServiceAccount { .. } => issued,
        }
    });
    principal.ok_or_else(auth_error)
}
