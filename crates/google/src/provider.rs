//! The domain's `CalendarProvider` port on the adapter: each call built
//! with the generated client (or by hand where it cannot set a header),
//! run through `GoogleCalendar::run` and mapped to domain values.

use async_trait::async_trait;
use calsync_domain::channel::{WatchGrant, WatchRequest};
use calsync_domain::event::Event;
use calsync_domain::freebusy::{Interval, RemoteCalendarBusy, RemoteFreeBusyQuery};
use calsync_domain::grant::{AccountCalendar, GrantId};
use calsync_domain::ids::{CalendarId, ChannelId, Etag, EventId, ResourceId};
use calsync_domain::ports::{CalendarProvider, PatchCall};
use calsync_domain::sync::{ChangePage, ListRequest, RemoteEvent};
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use google_calendar3::api::{self, Scope};
use google_calendar3::hyper;

use crate::classify::{Capture, Failure, Op};

use crate::config::segment;
use crate::{GoogleCalendar, Lent};

fn remote(event: api::Event) -> Result<RemoteEvent, Failure> {
    crate::mapping::from_google(event).map_err(Failure::new)
}

/// What calsync records for a calendar Google's free/busy answer leaves
/// out (Google answers every calendar asked for, so this means an answer
/// calsync cannot read): not one of Google's reasons.
pub const MISSING_FROM_ANSWER: &str = "missingFromAnswer";

/// One calendar's part of a free/busy answer. Periods without both ends,
/// or not ending after they start, are skipped rather than failing the
/// answer; with `errors`, busy time is not Google's computation, so it is
/// left empty.
fn calendar_busy(
    calendar_id: &CalendarId,
    answer: Option<&api::FreeBusyCalendar>,
) -> RemoteCalendarBusy {
    let Some(answer) = answer else {
        return RemoteCalendarBusy {
            calendar_id: calendar_id.clone(),
            busy: Vec::new(),
            errors: vec![MISSING_FROM_ANSWER.to_owned()],
        };
    };
    let errors: Vec<String> = answer
        .errors
        .iter()
        .flatten()
        .map(|error| error.reason.clone().unwrap_or_else(|| "unknown".to_owned()))
        .collect();
    let busy = if errors.is_empty() {
        answer
            .busy
            .iter()
            .flatten()
            .filter_map(|period| Interval::new(period.start?, period.end?))
            .collect()
    } else {
        Vec::new()
    };
    RemoteCalendarBusy {
        calendar_id: calendar_id.clone(),
        busy,
        errors,
    }
}

#[async_trait]
impl CalendarProvider for GoogleCalendar {
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &ListRequest,
    ) -> Result<ChangePage, DomainError> {
        let calendar = &segment(calendar_id.as_str());
        let page_size = i32::try_from(request.max_results.clamp(1, 2500)).unwrap_or(2500);
        self.run(Op::List, calendar_id.as_str(), |principal| async move {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let mut call = principal
                .hub
                .events()
                .list(calendar)
                .max_results(page_size)
                .add_scope(Scope::Full);
            if let Some(token) = &request.sync_token {
                call = call.sync_token(token);
            }
            if let Some(token) = &request.page_token {
                call = call.page_token(token);
            }
            let (_, page) = self
                .settle(Op::List, call.delegate(&mut delegate).doit(), &capture)
                .await?;
            Ok(ChangePage {
                events: page
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(remote)
                    .collect::<Result<_, _>>()?,
                next_page_token: page.next_page_token.filter(|t| !t.is_empty()),
                next_sync_token: page.next_sync_token.filter(|t| !t.is_empty()),
            })
        })
        .await
    }

    async fn get_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
    ) -> Result<RemoteEvent, DomainError> {
        let (calendar, event) = (&segment(calendar_id.as_str()), &segment(id.as_str()));
        self.run(Op::Get, calendar_id.as_str(), |principal| async move {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = principal
                .hub
                .events()
                .get(calendar, event)
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            let (_, found) = self.settle(Op::Get, call.doit(), &capture).await?;
            remote(found)
        })
        .await
    }

    async fn insert_event(&self, event: &Event) -> Result<RemoteEvent, DomainError> {
        let calendar = &segment(event.calendar_id.as_str());
        let body = &crate::mapping::to_google(event, false);
        self.run(
            Op::Insert,
            event.calendar_id.as_str(),
            |principal| async move {
                let capture = std::sync::Mutex::new(Capture::default());
                let mut delegate = Lent(&capture);
                let call = principal
                    .hub
                    .events()
                    .insert(body.clone(), calendar)
                    // Always 1, not only when a conference is asked for: Google
                    // ignores `conferenceData` under version 0 (the default), so
                    // a Meet request would be dropped without a word, and a body
                    // without conference data is unaffected by the version.
                    .conference_data_version(1)
                    .send_updates(self.send_updates.as_str())
                    .add_scope(Scope::Full)
                    .delegate(&mut delegate);
                let (_, created) = self.settle(Op::Insert, call.doit(), &capture).await?;
                remote(created)
            },
        )
        .await
    }

    /// A patch of the changed fields, conditional on `If-Match` when an
    /// etag is given: sent with the hub's own client and authenticator,
    /// since the generated builders cannot set request headers. No
    /// `conferenceDataVersion` (so 0): the body never carries conference
    /// data (`EventChanges` has none), and a patch leaves what it does not
    /// name, so the stored conference stays as it is. Should a patch ever
    /// send `conferenceData`, it must pass `conferenceDataVersion=1` as the
    /// insert does, or Google ignores it without a word. The id
    /// may name one occurrence of a series (`{masterId}_{YYYYMMDDTHHMMSSZ}`),
    /// which Google turns into an exception.
    async fn patch_event(&self, call: &PatchCall) -> Result<RemoteEvent, DomainError> {
        let url = &self.event_url(&call.calendar_id, &call.event_id, true);
        // As the generated client does: absent fields are left out, never
        // sent as `null` (Google's patch would clear them), except the
        // other kind of a start or end sent (see `patch_json`).
        let body = &crate::mapping::patch_json(&call.changes)
            .map(|value| value.to_string().into_bytes())
            .map_err(|error| {
                DomainError::provider(ProviderErrorKind::Permanent, format!("patch body: {error}"))
            })?;
        self.run(
            Op::Patch,
            call.calendar_id.as_str(),
            |principal| async move {
                let answer = self
                    .conditional(
                        &principal,
                        Op::Patch,
                        hyper::Method::PATCH,
                        url,
                        Some(body.clone()),
                        call.if_match.as_ref(),
                    )
                    .await?;
                let event: api::Event = serde_json::from_slice(&answer).map_err(|error| {
                    Failure::new(DomainError::provider(
                        ProviderErrorKind::Permanent,
                        format!("patch: unreadable response: {error}"),
                    ))
                })?;
                remote(event)
            },
        )
        .await
    }

    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
        if_match: Option<&Etag>,
    ) -> Result<(), DomainError> {
        let url = &self.event_url(calendar_id, id, true);
        self.run(Op::Delete, calendar_id.as_str(), |principal| async move {
            self.conditional(
                &principal,
                Op::Delete,
                hyper::Method::DELETE,
                url,
                None,
                if_match,
            )
            .await
            .map(|_| ())
        })
        .await
    }

    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> Result<bool, DomainError> {
        let calendar = &segment(calendar_id.as_str());
        let result = self
            .run(
                Op::CalendarGet,
                calendar_id.as_str(),
                |principal| async move {
                    let capture = std::sync::Mutex::new(Capture::default());
                    let mut delegate = Lent(&capture);
                    let call = principal
                        .hub
                        .calendars()
                        .get(calendar)
                        .add_scope(Scope::Full)
                        .delegate(&mut delegate);
                    self.settle(Op::CalendarGet, call.doit(), &capture)
                        .await
                        .map(|_| ())
                },
            )
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn watch(
        &self,
        calendar_id: &CalendarId,
        request: &WatchRequest,
    ) -> Result<WatchGrant, DomainError> {
        let calendar = &segment(calendar_id.as_str());
        let channel = &api::Channel {
            id: Some(request.channel_id.to_string()),
            token: Some(request.token.clone()),
            type_: Some("web_hook".into()),
            address: Some(request.address.clone()),
            params: Some(
                [("ttl".to_owned(), request.ttl.as_secs().to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..api::Channel::default()
        };
        self.run(Op::Watch, calendar_id.as_str(), |principal| async move {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = principal
                .hub
                .events()
                .watch(channel.clone(), calendar)
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            let (_, granted) = self.settle(Op::Watch, call.doit(), &capture).await?;
            let invalid = |what: &str| {
                Failure::new(DomainError::provider(
                    ProviderErrorKind::Permanent,
                    format!("watch: {what}"),
                ))
            };
            let resource_id = granted
                .resource_id
                .and_then(|id| ResourceId::new(id).ok())
                .ok_or_else(|| invalid("no resourceId in Google's answer"))?;
            // `expiration` is Unix milliseconds, sent as a JSON string.
            let expiration = granted
                .expiration
                .and_then(chrono::DateTime::from_timestamp_millis)
                .ok_or_else(|| invalid("no expiration in Google's answer"))?;
            Ok(WatchGrant {
                resource_id,
                expiration,
            })
        })
        .await
    }

    /// `freebusy.query`, one call per principal: under domain-wide
    /// delegation each calendar is read as its own subject (as every other
    /// call on it is), so calendars of different subjects go in separate
    /// calls, each rate limited under its subject. Answers come back in
    /// request order. A calendar Google could not answer for carries
    /// Google's `errors[].reason` (`notFound` for one this principal cannot
    /// reach; `tooManyCalendarsRequested` past 50 calendars in one call, see
    /// the reference:
    /// <https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query>);
    /// one absent from the answer carries [`MISSING_FROM_ANSWER`]. A refused
    /// window (400 `timeRangeEmpty`, `timeRangeTooLong` past 90 days) is a
    /// `Permanent` error.
    async fn free_busy(
        &self,
        query: &RemoteFreeBusyQuery,
    ) -> Result<Vec<RemoteCalendarBusy>, DomainError> {
        // Groups of (principal, positions in the request), in first-seen order.
        let mut groups: Vec<(std::sync::Arc<crate::Principal>, Vec<usize>)> = Vec::new();
        for (position, calendar) in query.calendars.iter().enumerate() {
            let principal = self.principal(calendar.as_str()).await?;
            match groups.iter_mut().find(|(p, _)| p.key == principal.key) {
                Some((_, positions)) => positions.push(position),
                None => groups.push((principal, vec![position])),
            }
        }
        let mut answers: Vec<Option<RemoteCalendarBusy>> = vec![None; query.calendars.len()];
        for (principal, positions) in groups {
            let calendars: Vec<&CalendarId> =
                positions.iter().map(|&i| &query.calendars[i]).collect();
            let names = calendars
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let request = &api::FreeBusyRequest {
                time_min: Some(query.time_min),
                time_max: Some(query.time_max),
                time_zone: query.time_zone.clone(),
                items: Some(
                    calendars
                        .iter()
                        .map(|c| api::FreeBusyRequestItem {
                            id: Some(c.to_string()),
                        })
                        .collect(),
                ),
                ..api::FreeBusyRequest::default()
            };
            let response = self
                .run_as(Op::FreeBusy, &names, principal, |principal| async move {
                    let capture = std::sync::Mutex::new(Capture::default());
                    let mut delegate = Lent(&capture);
                    let call = principal
                        .hub
                        .freebusy()
                        .query(request.clone())
                        .add_scope(Scope::Full)
                        .delegate(&mut delegate);
                    let (_, answer) = self.settle(Op::FreeBusy, call.doit(), &capture).await?;
                    Ok(answer)
                })
                .await?;
            let by_id = response.calendars.unwrap_or_default();
            for (&position, calendar) in positions.iter().zip(calendars) {
                // Google keys the answer by the id asked for; a different
                // case is read as the same calendar.
                let answer = by_id.get(calendar.as_str()).or_else(|| {
                    by_id
                        .iter()
                        .find(|(id, _)| id.eq_ignore_ascii_case(calendar.as_str()))
                        .map(|(_, answer)| answer)
                });
                answers[position] = Some(calendar_busy(calendar, answer));
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// `channels.stop` names no calendar, but it is made as the calendar's
    /// principal, the one `watch` acted as (same `run`: its hub, its rate
    /// limit key). Google's reference
    /// (<https://developers.google.com/calendar/api/v3/reference/channels/stop>)
    /// asks only for `id` and `resourceId` and says nothing of who may stop a
    /// channel; the push guide
    /// (<https://developers.google.com/calendar/api/guides/push>, "Make
    /// watch requests") says each channel "is associated both with a
    /// particular user and a particular resource", its id unique within
    /// the project. Neither says another principal may stop it, so calsync
    /// stops it as the user who watched: the conservative reading, which
    /// the emulator enforces (another principal's stop is answered as for an
    /// unknown channel, 404 `notFound` "Channel '<id>' not found for
    /// project.").
    async fn stop_channel(
        &self,
        calendar_id: &CalendarId,
        id: &ChannelId,
        resource_id: &ResourceId,
    ) -> Result<(), DomainError> {
        let channel = &api::Channel {
            id: Some(id.to_string()),
            resource_id: Some(resource_id.to_string()),
            ..api::Channel::default()
        };
        self.run(Op::Stop, calendar_id.as_str(), |principal| async move {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = principal
                .hub
                .channels()
                .stop(channel.clone())
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            self.settle(Op::Stop, call.doit(), &capture)
                .await
                .map(|_| ())
        })
        .await
    }

    /// `calendarList.list`, every page, as the grant's account. Deleted and
    /// hidden entries are left out (Google's defaults without a sync
    /// token): a calendar the user hid is still theirs to choose, but
    /// Google lists it only with `showHidden`, which is asked for.
    async fn account_calendars(
        &self,
        grant: &GrantId,
    ) -> Result<Vec<AccountCalendar>, DomainError> {
        let Some(grants) = &self.grants else {
            return Err(DomainError::provider(
                ProviderErrorKind::Permanent,
                "calendar_list: this adapter acts for no connected accounts",
            ));
        };
        let principal = grants.hub_for(grant.clone()).await;
        let mut calendars = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let token = page_token.clone();
            let page = self
                .run_as(
                    Op::CalendarList,
                    grant.as_str(),
                    principal.clone(),
                    |principal| {
                        let token = token.clone();
                        async move {
                            let capture = std::sync::Mutex::new(Capture::default());
                            let mut delegate = Lent(&capture);
                            let mut call = principal
                                .hub
                                .calendar_list()
                                .list()
                                .max_results(250)
                                .show_hidden(true)
                                .add_scope(Scope::Full)
                                .delegate(&mut delegate);
                            if let Some(token) = &token {
                                call = call.page_token(token);
                            }
                            self.settle(Op::CalendarList, call.doit(), &capture)
                                .await
                                .map(|(_, list)| list)
                        }
                    },
                )
                .await?;
            for entry in page.items.into_iter().flatten() {
                if entry.deleted == Some(true) {
                    continue;
                }
                let Some(calendar_id) = entry.id.and_then(|id| CalendarId::new(id).ok()) else {
                    continue;
                };
                calendars.push(AccountCalendar {
                    summary: entry
                        .summary_override
                        .or(entry.summary)
                        .unwrap_or_else(|| calendar_id.to_string()),
                    calendar_id,
                    access_role: entry.access_role.unwrap_or_default(),
                    primary: entry.primary.unwrap_or(false),
                    time_zone: entry.time_zone,
                });
            }
            match page.next_page_token {
                Some(next) if !next.is_empty() => page_token = Some(next),
                _ => break,
            }
        }
        Ok(calendars)
    }
}
