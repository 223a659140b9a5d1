//! Managed calendars: adding one (it is watched and synced), listing them
//! with their sync health, changing whom calsync acts as, removing one.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::calendar::{ManagedCalendar, Subject};
use crate::channel::{ChannelStatus, WatchChannel};
use crate::error::{Error, Result};
use crate::grant::{GrantId, GrantStatus};
use crate::health::CalendarHealth;
use crate::ids::CalendarId;
use crate::ports::{CalendarStore, ChannelStore, Clock, GrantStore, SyncStateStore};
use crate::sync::SyncState;

use super::channels::ChannelService;

/// A managed calendar with how its sync and channels stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarView {
    #[serde(flatten)]
    pub calendar: ManagedCalendar,
    /// `None` until its first sync was queued.
    pub health: Option<CalendarHealth>,
}

fn view(
    calendar: ManagedCalendar,
    state: Option<&SyncState>,
    active: &[WatchChannel],
) -> CalendarView {
    let channels = active
        .iter()
        .filter(|c| c.calendar_id == calendar.calendar_id)
        .count() as u64;
    CalendarView {
        health: state.map(|s| CalendarHealth::new(s, channels)),
        calendar,
    }
}

/// The managed calendars.
#[derive(Clone)]
pub struct CalendarService {
    calendars: Arc<dyn CalendarStore>,
    states: Arc<dyn SyncStateStore>,
    channel_store: Arc<dyn ChannelStore>,
    channels: ChannelService,
    clock: Arc<dyn Clock>,
    /// Checks a grant a calendar is managed through; `None`: no grants.
    grants: Option<Arc<dyn GrantStore>>,
}

/// Whom calsync acts as for a calendar it is asked to manage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ActingAs {
    /// The deployment's default principal.
    #[default]
    Default,
    /// A Workspace user, through domain-wide delegation.
    Subject(Subject),
    /// A connected account, through its own grant.
    Grant(GrantId),
}

impl CalendarService {
    pub fn new(
        calendars: Arc<dyn CalendarStore>,
        states: Arc<dyn SyncStateStore>,
        channel_store: Arc<dyn ChannelStore>,
        channels: ChannelService,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            calendars,
            states,
            channel_store,
            channels,
            clock,
            grants: None,
        }
    }

    /// Lets calendars be managed through connected accounts' grants.
    pub fn with_grants(mut self, grants: Arc<dyn GrantStore>) -> Self {
        self.grants = Some(grants);
        self
    }

    /// `acting` as the calendar's record holds it; a grant must exist and
    /// be active (a calendar cannot be watched through a refused one).
    async fn principal_of(&self, acting: ActingAs) -> Result<(Option<Subject>, Option<GrantId>)> {
        match acting {
            ActingAs::Default => Ok((None, None)),
            ActingAs::Subject(subject) => Ok((Some(subject), None)),
            ActingAs::Grant(id) => {
                let grant = match &self.grants {
                    Some(grants) => grants.get_grant(&id).await?,
                    None => None,
                };
                match grant.map(|g| g.status) {
                    None => Err(Error::invalid("grant", "names no connected account")),
                    Some(GrantStatus::Active) => Ok((None, Some(id))),
                    Some(GrantStatus::ReconnectRequired) => Err(Error::unprocessable(
                        "grant",
                        "its account must be connected again first (reconnect_required)",
                    )),
                    Some(GrantStatus::Revoked) => {
                        Err(Error::unprocessable("grant", "was deleted (revoked)"))
                    }
                }
            }
        }
    }

    /// Manages a calendar as `subject` and watches it (which queues its
    /// first, full sync). The record comes first, so the watch call already
    /// acts as the subject; if Google refuses the watch, a calendar that was
    /// not managed before is forgotten again.
    pub async fn add(
        &self,
        calendar_id: &CalendarId,
        acting: ActingAs,
    ) -> Result<(ManagedCalendar, WatchChannel)> {
        let (subject, grant) = self.principal_of(acting).await?;
        let existed = self.calendars.get_calendar(calendar_id).await?.is_some();
        let now = self.clock.now();
        let stored = self
            .calendars
            .upsert_calendar(&ManagedCalendar {
                calendar_id: calendar_id.clone(),
                subject,
                grant,
                created_at: now,
                updated_at: now,
            })
            .await?;
        match self.channels.create(calendar_id).await {
            Ok(channel) => Ok((stored, channel)),
            Err(error) => {
                if !existed {
                    self.calendars.delete_calendar(calendar_id).await?;
                }
                Err(error)
            }
        }
    }

    /// Manages a calendar that is watched or synced through the older
    /// routes, as the deployment's default principal, if it is not yet.
    pub async fn ensure(&self, calendar_id: &CalendarId) -> Result<()> {
        if self.calendars.get_calendar(calendar_id).await?.is_none() {
            let now = self.clock.now();
            self.calendars
                .upsert_calendar(&ManagedCalendar {
                    calendar_id: calendar_id.clone(),
                    subject: None,
                    grant: None,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
        }
        Ok(())
    }

    /// Queues a sync of the calendar (a full one with `full`), managing it
    /// first if it is not yet: a calendar synced on request is swept from
    /// now on. The sync worker takes it; waking it is the caller's part.
    pub async fn request_sync(&self, calendar_id: &CalendarId, full: bool) -> Result<()> {
        self.ensure(calendar_id).await?;
        self.states.mark_dirty(calendar_id, full).await
    }

    pub async fn get(&self, calendar_id: &CalendarId) -> Result<CalendarView> {
        let calendar = self
            .calendars
            .get_calendar(calendar_id)
            .await?
            .ok_or(Error::NotFound { what: "calendar" })?;
        let state = self.states.sync_state(calendar_id).await?;
        let channels = self.active_channels().await?;
        Ok(view(calendar, state.as_ref(), &channels))
    }

    /// Every managed calendar: three reads in all, whatever their number.
    pub async fn list(&self) -> Result<Vec<CalendarView>> {
        let states: HashMap<CalendarId, SyncState> = self
            .states
            .list_sync_states()
            .await?
            .into_iter()
            .map(|s| (s.calendar_id.clone(), s))
            .collect();
        let channels = self.active_channels().await?;
        Ok(self
            .calendars
            .list_calendars()
            .await?
            .into_iter()
            .map(|c| {
                let state = states.get(&c.calendar_id);
                view(c, state, &channels)
            })
            .collect())
    }

    async fn active_channels(&self) -> Result<Vec<WatchChannel>> {
        self.channel_store
            .list_channels(Some(ChannelStatus::Active))
            .await
    }

    /// Acts as another principal for the calendar from now on. Access may
    /// work again as the new one, so a reconnect mark is cleared and the
    /// calendar synced.
    pub async fn set_subject(
        &self,
        calendar_id: &CalendarId,
        acting: ActingAs,
    ) -> Result<ManagedCalendar> {
        let (subject, grant) = self.principal_of(acting).await?;
        let mut calendar = self
            .calendars
            .get_calendar(calendar_id)
            .await?
            .ok_or(Error::NotFound { what: "calendar" })?;
        calendar.subject = subject;
        calendar.grant = grant;
        calendar.updated_at = self.clock.now();
        let stored = self.calendars.upsert_calendar(&calendar).await?;
        self.states
            .clear_reconnect_required(calendar_id, true)
            .await?;
        self.states.mark_dirty(calendar_id, false).await?;
        Ok(stored)
    }

    /// Watches the calendar anew (its access came back).
    pub async fn watch_again(&self, calendar_id: &CalendarId) -> Result<WatchChannel> {
        self.channels.create(calendar_id).await
    }

    /// Stops the calendar's channels and forgets it: no more syncs, sweeps
    /// or renewals. Its mirrored events stay until retention removes them.
    pub async fn remove(&self, calendar_id: &CalendarId) -> Result<ManagedCalendar> {
        let calendar = self
            .calendars
            .get_calendar(calendar_id)
            .await?
            .ok_or(Error::NotFound { what: "calendar" })?;
        let channels = self.channel_store.list_channels(None).await?;
        for channel in channels
            .iter()
            .filter(|c| c.calendar_id == *calendar_id && c.status != ChannelStatus::Stopped)
        {
            match self.channels.stop(&channel.id).await {
                // Google may no longer know it (or the calendar): stopped either way.
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(error) if error.provider_kind().is_some() => {
                    self.channel_store
                        .set_channel_status(&channel.id, ChannelStatus::Stopped)
                        .await?;
                }
                Err(error) => return Err(error),
            }
        }
        self.calendars.delete_calendar(calendar_id).await?;
        Ok(calendar)
    }
}
