//! An emulator of the parts of Google's APIs calsync uses: Calendar API v3
//! events (list with sync and page tokens, instances, get, insert, patch,
//! update, delete, watch), calendars.get, channels.stop, freebusy.query,
//! push notifications to channel addresses, and the OAuth2 token endpoint
//! for service accounts and per-user OAuth grants (authorization code with
//! PKCE, refresh, revocation, userinfo) with calendarList.
//! State is in memory.
//!
//! Tests and benchmarks run it in-process ([`Emulator::start`]); the binary
//! runs it standalone (`calsync emulator`). Admin endpoints under
//! `/emulator/` seed data, make changes, dump the ground truth, revoke
//! access to calendars, inject faults and report what fired.
//!
//! It is as strict as Google where a lenient fake would hide bugs:
//! - Deleted events stay as `status: cancelled` (events.get returns them);
//!   a write to one answers 410 `deleted`, except a patch or update whose
//!   body sets `status` to `confirmed` or `tentative`, which restores it.
//! - `If-Match` is checked on patch, update and delete (412 `conditionNotMet`;
//!   `*` matches any etag).
//! - A calendar whose access is revoked answers 404 `notFound` to every
//!   Calendar API call on it, as Google does for a calendar the principal
//!   cannot access.
//! - `events.watch` refuses `http://` addresses (400
//!   `push.webhookUrlNotHttps`) unless the host is loopback (`127.0.0.0/8`,
//!   `::1`, `localhost`): a development concession, since the emulator
//!   delivers only over plain HTTP to local receivers; `https://` addresses
//!   are accepted but their deliveries fail.
//! - Push message numbers start at 1 (`sync`) and then increase by random
//!   steps of 1 to 3, never by a dependable +1.
//! - Faults: error answers, dropped connections, and `applyThenDrop` (a
//!   write carried out in full whose answer is then lost), from a schedule
//!   or at random, plus added latency; `/emulator/stats` counts what fired.
//! - Recurring events: `recurrence` lines are validated with the `rrule`
//!   crate (400 `invalid`) and recur in `start.timeZone` (UTC without one;
//!   all-day series as dates). Occurrences have ids
//!   `{master}_{YYYYMMDDTHHMMSSZ}` (`{master}_{YYYYMMDD}` all-day) that
//!   get, patch, update and delete accept; a write to one stores an
//!   exception. Deleting a series cancels its exceptions too. Lists
//!   without `singleEvents` return masters and exceptions (cancelled ones
//!   as stubs, even without `showDeleted`); with `singleEvents=true`
//!   series are expanded (`timeMin`, `timeMax`, `orderBy=startTime`), and
//!   without `timeMax` up to about two years ahead (see
//!   `recurrence::HORIZON_DAYS`). `events.instances` lists one series.
//!   Generated times are rendered in UTC (the calendars' zone) with the
//!   series' `timeZone` alongside; a stored exception keeps the master's
//!   fields as they were when it was made.
//! - Event types: every event has an `eventType` ("default" unless set);
//!   it cannot change; birthday and fromGmail events take only a few
//!   changes (400 `eventTypeRestriction`); the API cannot create
//!   `fromGmail` events ([`Emulator::change`] can). `eventTypes` filters
//!   lists and watches.
//! - Conferences: with `conferenceDataVersion=1`, a
//!   `conferenceData.createRequest` makes a Meet conference, `pending` in
//!   the write's answer and ready (`success`, `entryPoints`,
//!   `hangoutLink`, a new etag) by the next call on the calendar; a
//!   repeated `requestId` reuses the conference. Without it conference
//!   data in a body is ignored.
//! - Quotas (off unless configured, see [`EmulatorConfig`]): calls are
//!   counted per principal and per project over a sliding window
//!   (`events.patch` costs 3 units, every other Calendar API call 1; the
//!   token endpoint and admin routes nothing). Over the principal's budget
//!   a call is answered 403 `userRateLimitExceeded`, over the project's 403
//!   `rateLimitExceeded` (domain `usageLimits`), and nothing is done.
//! - Principals: with service-account auth, a token's principal is its
//!   assertion's `sub` (the user impersonated under domain-wide
//!   delegation), else its `iss` (the service account itself). With open
//!   auth, a token the token endpoint issued has its assertion's principal
//!   (read without verification); any other bearer token is its own
//!   principal, so tests can act as several users by sending different
//!   tokens. With [`EmulatorConfig::forbid_service_account_attendees`], a
//!   service account acting as itself cannot write `attendees` (403
//!   `forbiddenForServiceAccounts`).
//! - `channels.stop` must come from the principal that made the watch;
//!   any other is answered as for an unknown channel (404 `notFound`,
//!   "Channel '<id>' not found for project."). Google documents no such
//!   rule either way; this is the conservative reading (see `state.rs`).
//! - Recurring timed events need `start.timeZone` and `end.timeZone` (the
//!   events reference: "For recurring events this field is required"): an
//!   insert, patch or update whose resulting event recurs without one is
//!   400 `required`, "Missing time zone definition for start time." (or
//!   "end"). All-day series need none.
//! - Patches merge as Google's do: nested objects key by key, arrays
//!   replaced, an explicit `null` deletes. `start` or `end` holding both
//!   `date` and `dateTime` afterwards is 400 `invalid`, "Invalid start
//!   time." (or "end"). Updates replace the whole resource.
//! - Access roles ([`Emulator::set_access_role`]): every principal is
//!   `owner` unless set; a `reader` or `freeBusyReader` may read but its
//!   writes are 403 `requiredAccessLevel`, "You need to have writer access
//!   to this calendar.". The principal `*` stands for any principal
//!   without a role of its own (calsync's static development token
//!   included).
//! - Invited copies (an `organizer` neither `self` nor the calendar) take
//!   only the attendee's changes (their own response, `reminders`,
//!   `colorId`, `transparency`, `extendedProperties.private`) unless
//!   `guestsCanModify`; `locked` events keep `summary`, `description`,
//!   `location`, `start`, `end` and `recurrence`. Other changes are 403
//!   `forbiddenForNonOrganizer`, "Shared properties can only be changed by
//!   the organizer of the event."; deleting the copy is allowed. The API
//!   cannot set `organizer` or `locked` (read-only in the events
//!   reference); [`Emulator::change`] seeds them.
//! - Deleted events can be purged after an age
//!   ([`EmulatorConfig::deleted_event_purge_after`], never by default):
//!   then 404, gone from listings, the id still reserved (409), and sync
//!   tokens from before the deletion 410.
//! - Ragged paging ([`EmulatorConfig::ragged_pages_seed`], off by
//!   default): pages short or empty while a `nextPageToken` says more
//!   remain, as the events.list reference allows.
//! - `freebusy.query` (`POST /calendar/v3/freeBusy`, operation
//!   `freebusy`, one quota unit): busy time from the emulator's own events
//!   and series expansion (not cancelled, not `transparent`, not declined
//!   by the calendar, not `workingLocation` or `birthday`; all-day events
//!   midnight to midnight in the request's `timeZone`), merged, clipped to
//!   the window, in UTC. A revoked calendar carries `errors: [{domain:
//!   "global", reason: "notFound"}]`, not a failed call. More than 50
//!   calendars (or `calendarExpansionMax`): every calendar carries
//!   `tooManyCalendarsRequested` and no busy time. A window over 90 days is
//!   400 `timeRangeTooLong`, an empty one 400 `timeRangeEmpty`. See
//!   `freebusy.rs` for the sources.
//! - Per-user OAuth grants (see `users.rs` and `api/user_oauth.rs` for
//!   Google's pages): `GET /o/oauth2/v2/auth` approves at once for
//!   `login_hint` (or [`EmulatorConfig::default_account`]; without either
//!   a 400 page) and redirects with `code`, `state`, `scope`; an unknown
//!   client is a 401 page, a redirect URI neither registered for the
//!   client nor loopback (`http://127.0.0.1:PORT/...`,
//!   `http://localhost:PORT/...`) a 400 `redirect_uri_mismatch` page,
//!   never a redirect; [`Emulator::deny_next_authorization`] makes one
//!   answer `error=access_denied`. `POST /token` takes the
//!   `authorization_code` grant (same `redirect_uri`, the PKCE verifier
//!   checked, S256 or plain; codes live 10 minutes and are single use: a
//!   second use is `invalid_grant` and revokes what the first gave) and
//!   the `refresh_token` grant (`invalid_grant`, "Token has been expired
//!   or revoked.", once revoked). A refresh token comes only with
//!   `access_type=offline` on a first consent or with `prompt=consent`;
//!   an `id_token` (HS256 with the client secret, not Google's keys) only
//!   for `openid`/`email`/`profile` scopes; `GET /oauth2/v3/userinfo`
//!   says who a token is. `POST /revoke` revokes the whole grant of a
//!   refresh or access token (200; 400 `invalid_token` otherwise). User
//!   access tokens expire ([`EmulatorConfig::access_token_lifetime`]):
//!   then every Calendar API call is 401 `authError`.
//! - Accounts: a user token's principal is its account's email. It
//!   reaches its primary (id = its email, also as `primary`), calendars
//!   made for it ([`Emulator::create_user_calendar`]) and calendars shared
//!   with it ([`Emulator::share_calendar`], at the shared role); any other
//!   is 404 `notFound` (and `notFound` in free/busy answers). Service-account
//!   and open tokens reach every calendar, as before.
//! - `calendarList.list` (`GET /calendar/v3/users/me/calendarList`): the
//!   principal's list with `showDeleted`, `showHidden`, `minAccessRole`,
//!   `maxResults` (100, at most 250) and page tokens; a `syncToken` read
//!   returns only changed entries, deleted and hidden ones included, and
//!   refuses `showDeleted=false`, `showHidden=false` and `minAccessRole`
//!   (400); [`Emulator::invalidate_sync_tokens`] or another account's
//!   token gives 410 `fullSyncRequired`. See `calendar_list.rs`.

mod access;
mod api;
mod calendar_list;
mod conference;
mod error;
mod event_types;
mod faults;
mod freebusy;
mod invited;
mod listing;
mod notify;
mod oauth;
mod purge;
mod quota;
mod recurrence;
mod series;
mod state;
mod user_admin;
mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::{App, HttpServer, web};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

pub use access::{ANY_PRINCIPAL, AccessRole};
pub use error::ApiError;
use faults::FaultStats;
pub use faults::{Fault, FaultPlan, ScheduledFault};
use notify::DeliveryStats;
use quota::{Principal, Usage};
use state::{Calendars, Notification, WriteOptions};
use users::Users;
pub use users::{
    CODE_LIFETIME, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, IssuedRefreshToken, OAuthClient,
};

/// Writes made "in Google" by the admin handle: no API restrictions.
const ADMIN: WriteOptions = WriteOptions {
    conference_data_version: 0,
    admin: true,
};

/// How API callers must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmulatorAuth {
    /// Any bearer token is accepted (local development).
    Open,
    /// Only tokens this emulator issued, for assertions signed by the
    /// service account whose public key (PEM, SPKI) is given.
    ServiceAccount { public_key_pem: String },
}

/// Google's default "per minute per user per project" quota
/// (<https://developers.google.com/workspace/calendar/api/guides/quota>).
pub const GOOGLE_PER_PRINCIPAL_PER_MINUTE: u32 = 600;
/// Google's default "per minute per project" quota (same page).
pub const GOOGLE_PER_PROJECT_PER_MINUTE: u32 = 10_000;

/// How the emulator behaves. Build it with struct-update syntax
/// (`EmulatorConfig { per_principal_per_minute: Some(5), ..EmulatorConfig::default() }`)
/// or [`EmulatorConfig::with_google_quotas`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub auth: EmulatorAuth,
    /// The longest channel lifetime granted (requests above it get this).
    pub max_channel_ttl: chrono::Duration,
    /// Quota units one principal may spend per window; `None` (the
    /// default) is unlimited. Google's default is
    /// [`GOOGLE_PER_PRINCIPAL_PER_MINUTE`].
    pub per_principal_per_minute: Option<u32>,
    /// Quota units all principals together may spend per window; `None`
    /// (the default) is unlimited. Google's default is
    /// [`GOOGLE_PER_PROJECT_PER_MINUTE`].
    pub per_project_per_minute: Option<u32>,
    /// The sliding window both quotas count over: a minute, as Google's,
    /// unless a test wants to see a budget come back sooner.
    pub quota_window: std::time::Duration,
    /// Answer 403 `forbiddenForServiceAccounts` to an insert, patch or
    /// update whose body has non-empty `attendees` when the principal is a
    /// service account acting as itself (an assertion without `sub`), as
    /// Google does without domain-wide delegation. Off by default.
    pub forbid_service_account_attendees: bool,
    /// How long a deleted event stays (as `status: cancelled`) before it is
    /// purged: then it is 404 to get and writes, gone from every listing,
    /// its id still reserved (409 on insert), and a sync token from before
    /// its deletion is 410. `None` (the default): kept for ever, as before.
    /// Google keeps deleted events a while and publishes no age. Changed at
    /// run time with [`Emulator::set_deleted_event_purge_after`].
    pub deleted_event_purge_after: Option<std::time::Duration>,
    /// Ragged paging: with a seed, list pages (events.list with or without
    /// a sync token, events.instances) are sometimes short or empty while a
    /// `nextPageToken` still says more remain, as Google's pages may be; no
    /// event is skipped or repeated. `None` (the default): full pages.
    /// Changed at run time with [`Emulator::set_ragged_pages`].
    pub ragged_pages_seed: Option<u64>,
    /// OAuth clients that may use the user flow (`/o/oauth2/v2/auth`,
    /// the `authorization_code` and `refresh_token` grants). Default: one
    /// client, [`DEFAULT_CLIENT_ID`] / [`DEFAULT_CLIENT_SECRET`], with
    /// only loopback redirect URIs. More with
    /// [`Emulator::register_oauth_client`].
    pub oauth_clients: Vec<OAuthClient>,
    /// The account an authorization without `login_hint` approves for.
    /// `None` (the default): such an authorization is a 400 error page,
    /// since the emulator has no account chooser.
    pub default_account: Option<String>,
    /// How long user access tokens live (Google's `expires_in` is 3599 or
    /// 3600). Changed at run time with [`Emulator::set_access_token_lifetime`].
    pub access_token_lifetime: std::time::Duration,
    /// Refuse authorizations without an S256 `code_challenge` (redirected
    /// with `error=invalid_request`). Google accepts `plain` and no
    /// challenge at all for web clients, so this is off by default.
    pub require_pkce_s256: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            auth: EmulatorAuth::Open,
            max_channel_ttl: chrono::Duration::days(30),
            per_principal_per_minute: None,
            per_project_per_minute: None,
            quota_window: std::time::Duration::from_secs(60),
            forbid_service_account_attendees: false,
            deleted_event_purge_after: None,
            ragged_pages_seed: None,
            oauth_clients: vec![OAuthClient::default()],
            default_account: None,
            access_token_lifetime: std::time::Duration::from_secs(3600),
            require_pkce_s256: false,
        }
    }
}

impl EmulatorConfig {
    /// Google's default quotas: 600 per principal and 10,000 per project a minute.
    pub fn with_google_quotas(self) -> Self {
        Self {
            per_principal_per_minute: Some(GOOGLE_PER_PRINCIPAL_PER_MINUTE),
            per_project_per_minute: Some(GOOGLE_PER_PROJECT_PER_MINUTE),
            ..self
        }
    }
}

pub(crate) struct Inner {
    config: EmulatorConfig,
    verifying_key: Option<oauth::RsaPublicKey>,
    calendars: Mutex<Calendars>,
    faults: Mutex<FaultPlan>,
    fault_stats: Mutex<FaultStats>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// The `sendUpdates` parameter of the latest write, per operation.
    send_updates: Mutex<BTreeMap<String, String>>,
    /// Issued access tokens and their principals.
    tokens: Mutex<HashMap<String, Principal>>,
    usage: Mutex<Usage>,
    /// Per-user OAuth grants, accounts' calendars and calendar lists.
    users: Mutex<Users>,
    notifier: Mutex<Option<UnboundedSender<Notification>>>,
    delivery: Arc<DeliveryStats>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn notify(&self, notifications: Vec<Notification>) {
        if let Some(sender) = lock(&self.notifier).as_ref() {
            for notification in notifications {
                // The receiver lives as long as the runtime; a send error means shutdown.
                let _ = sender.send(notification);
            }
        }
    }
}

/// Percent-encodes a calendar id for use in a path (ids may hold `@`, `#`, `/`).
pub fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The emulator's state and admin handle. Cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("auth", &self.inner.config.auth)
            .finish_non_exhaustive()
    }
}

/// A running emulator; stops when [`RunningEmulator::stop`] is called.
pub struct RunningEmulator {
    pub emulator: Emulator,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
}

impl RunningEmulator {
    /// The Calendar API root the google-calendar3 hub needs (trailing slash included).
    pub fn calendar_api_url(&self) -> String {
        format!("{}/calendar/v3/", self.base_url)
    }

    /// The OAuth2 token endpoint (`token_uri` of a service-account key).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// Google's authorization endpoint (`/o/oauth2/v2/auth`).
    pub fn authorization_url(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.base_url)
    }

    /// Google's revocation endpoint (`/revoke`).
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url)
    }

    /// OpenID Connect userinfo (`/oauth2/v3/userinfo`).
    pub fn userinfo_url(&self) -> String {
        format!("{}/oauth2/v3/userinfo", self.base_url)
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Result<Self, String> {
        let verifying_key = match &config.auth {
            EmulatorAuth::Open => None,
            EmulatorAuth::ServiceAccount { public_key_pem } => {
                Some(oauth::parse_public_key(public_key_pem)?)
            }
        };
        let usage = Usage::new(
            config.per_principal_per_minute,
            config.per_project_per_minute,
            config.quota_window,
        );
        let calendars = Calendars {
            purge_after: config.deleted_event_purge_after.map(purge_age),
            ragged_seed: config.ragged_pages_seed,
            ..Calendars::default()
        };
        let users = Users::new(
            &config.oauth_clients,
            config.access_token_lifetime,
            config.default_account.clone(),
            config.require_pkce_s256,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                users: Mutex::new(users),
                config,
                verifying_key,
                calendars: Mutex::new(calendars),
                faults: Mutex::new(FaultPlan::default()),
                fault_stats: Mutex::new(FaultStats::default()),
                calls: Mutex::new(BTreeMap::new()),
                send_updates: Mutex::new(BTreeMap::new()),
                tokens: Mutex::new(HashMap::new()),
                usage: Mutex::new(usage),
                notifier: Mutex::new(None),
                delivery: Arc::new(DeliveryStats::default()),
            }),
        })
    }

    /// Serves the emulator on `bind` (e.g. `127.0.0.1:0`) from the current
    /// Tokio runtime.
    pub async fn start(self, bind: &str) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind(bind)?;
        let base_url = format!("http://{}", listener.local_addr()?);
        lock(&self.inner.calendars).base_url.clone_from(&base_url);
        *lock(&self.inner.notifier) = Some(notify::spawn_delivery(self.inner.delivery.clone()));
        let data = web::Data::from(self.inner.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).configure(api::routes))
                .workers(2)
                .disable_signals()
                .listen(listener)?
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(RunningEmulator {
            emulator: self,
            base_url,
            handle,
        })
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        *lock(&self.inner.faults) = plan;
    }

    /// Makes the next `count` calls of `op` fail with `fault`.
    pub fn schedule_fault(&self, op: Option<&str>, count: u32, fault: Fault) {
        lock(&self.inner.faults).schedule.push_back(ScheduledFault {
            op: op.map(str::to_owned),
            count,
            fault,
        });
    }

    /// How many calls of `op` (list, instances, get, insert, patch, update,
    /// delete, watch, stop, calendars.get, calendarList.list, freebusy,
    /// token, authorize, revoke) the emulator saw, failed ones included;
    /// `token.refresh_token`, `token.authorization_code` and
    /// `token.jwt_bearer` count the token endpoint's calls by grant type.
    pub fn calls(&self, op: &str) -> u64 {
        lock(&self.inner.calls).get(op).copied().unwrap_or(0)
    }

    /// The `sendUpdates` value the latest `op` (insert, patch, update,
    /// delete) carried, if any.
    pub fn last_send_updates(&self, op: &str) -> Option<String> {
        lock(&self.inner.send_updates).get(op).cloned()
    }

    /// Changes the quotas (`None`: unlimited) from now on; units already
    /// spent in the current window still count.
    pub fn set_quotas(&self, per_principal: Option<u32>, per_project: Option<u32>) {
        let mut usage = lock(&self.inner.usage);
        usage.per_principal = per_principal;
        usage.per_project = per_project;
    }

    /// Authenticated Calendar API calls per principal (see the crate docs
    /// for what a principal is), quota refusals included.
    pub fn calls_by_principal(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.usage).calls.clone()
    }

    /// Calls refused for either quota.
    pub fn quota_refusals(&self) -> u64 {
        lock(&self.inner.usage).refusals
    }

    /// The principals whose calls on a calendar got past authentication and
    /// quotas (whatever the call's outcome after that); a free/busy query
    /// counts for each calendar it names once its body is read.
    pub fn principals_for(&self, calendar_id: &str) -> BTreeSet<String> {
        lock(&self.inner.usage)
            .callers
            .get(calendar_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The principal of the latest API write (insert, patch, update,
    /// delete) carried out on a calendar, `applyThenDrop` ones included.
    pub fn last_writer(&self, calendar_id: &str) -> Option<String> {
        lock(&self.inner.usage)
            .last_writer
            .get(calendar_id)
            .cloned()
    }

    /// Invalidates every sync token: events' and calendar lists' (410
    /// `fullSyncRequired` from then on).
    pub fn invalidate_sync_tokens(&self) {
        lock(&self.inner.calendars).token_generation += 1;
        lock(&self.inner.users).lists.generation += 1;
        lock(&self.inner.fault_stats).sync_token_invalidations += 1;
    }

    /// Faults that fired so far, by kind: `drop`, `applyThenDrop` (writes
    /// only; on other operations it counts as `drop`), or
    /// `"<status>:<reason>"` such as `"503:backendError"`. A fault picked for
    /// a call that then failed authentication or was refused for quota did
    /// not fire (and is used up).
    pub fn faults_fired(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.fault_stats).fired.clone()
    }

    /// Calls that were delayed by the plan's `latency_ms`.
    pub fn latency_applied(&self) -> u64 {
        lock(&self.inner.fault_stats).latency_applied
    }

    /// How many times sync tokens were invalidated (method or admin endpoint).
    pub fn sync_token_invalidations(&self) -> u64 {
        lock(&self.inner.fault_stats).sync_token_invalidations
    }

    /// Revokes (or gives back) our access to a calendar: while revoked, every
    /// Calendar API call on it answers 404 `notFound`, which is what Google
    /// answers for a calendar the principal cannot access. Changes made
    /// through [`Emulator::change`] (another user's) still apply.
    pub fn set_calendar_revoked(&self, calendar_id: &str, revoked: bool) {
        let mut calendars = lock(&self.inner.calendars);
        if revoked {
            calendars.revoked.insert(calendar_id.to_owned());
        } else {
            calendars.revoked.remove(calendar_id);
        }
    }

    /// Sets a principal's access role on a calendar; `principal` may be
    /// [`ANY_PRINCIPAL`] (`*`), the role of every principal without one of
    /// its own. Every principal is `owner` of every calendar unless set.
    /// Below `writer`, inserts, patches, updates and deletes (occurrences'
    /// included) answer 403 `requiredAccessLevel`, "You need to have writer
    /// access to this calendar."; reads, watches and stops still work.
    /// The principal is the one the crate docs describe: the token's `sub`,
    /// else its `iss`, or with open auth an unissued bearer token itself.
    /// [`Emulator::change`] is not subject to roles.
    pub fn set_access_role(&self, calendar_id: &str, principal: &str, role: AccessRole) {
        lock(&self.inner.calendars)
            .roles
            .set(calendar_id, principal, role);
    }

    /// Sets (or with `None` turns off) the age at which deleted events are
    /// purged (see [`EmulatorConfig::deleted_event_purge_after`]). Events
    /// deleted longer ago are purged at the next call on their calendar.
    pub fn set_deleted_event_purge_after(&self, age: Option<std::time::Duration>) {
        lock(&self.inner.calendars).purge_after = age.map(purge_age);
    }

    /// Turns ragged paging on with a seed, or off with `None` (see
    /// [`EmulatorConfig::ragged_pages_seed`]). Page tokens handed out
    /// before stay valid.
    pub fn set_ragged_pages(&self, seed: Option<u64>) {
        lock(&self.inner.calendars).ragged_seed = seed;
    }

    /// Every event of a calendar as Google holds it, deleted ones included
    /// (purged ones not).
    pub fn events(&self, calendar_id: &str) -> Vec<Value> {
        let mut calendars = lock(&self.inner.calendars);
        calendars.purge(calendar_id, chrono::Utc::now());
        calendars
            .events
            .get(calendar_id)
            .map(|events| {
                events
                    .values()
                    .map(|e| Value::Object(e.body.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Inserts `count` events (one notification for the whole batch).
    pub fn seed(&self, calendar_id: &str, count: usize) -> Result<usize, ApiError> {
        let now = chrono::Utc::now();
        let mut calendars = lock(&self.inner.calendars);
        let mut last = Vec::new();
        for i in 0..count {
            let start = now + chrono::Duration::minutes(30 * i64::try_from(i).unwrap_or(0));
            let body = serde_json::json!({
                "summary": format!("Seeded event {i}"),
                "description": "Seeded by the calsync emulator.",
                "start": {"dateTime": start.to_rfc3339()},
                "end": {"dateTime": (start + chrono::Duration::minutes(30)).to_rfc3339()},
            });
            let Value::Object(body) = body else { continue };
            last = calendars.insert(calendar_id, body, now, ADMIN)?.1;
        }
        drop(calendars);
        self.inner.notify(last);
        Ok(count)
    }

    /// Applies a change as another Google user (or Google itself) would:
    /// insert, patch or delete, and notifies watchers. Returns the event
    /// after the change. Event-type restrictions do not apply, so this is
    /// how tests seed what the API refuses to create (a `fromGmail` event,
    /// a birthday synced from Contacts); `conferenceData` and `hangoutLink`
    /// are stored verbatim. Ids may name occurrences of a series, as in the
    /// API.
    pub fn change(&self, calendar_id: &str, change: Change) -> Result<Value, ApiError> {
        let now = chrono::Utc::now();
        let mut calendars = lock(&self.inner.calendars);
        calendars.purge(calendar_id, now);
        let (value, notifications) = match change {
            Change::Insert(body) => calendars.insert(calendar_id, body, now, ADMIN)?,
            Change::Patch { id, fields } => {
                calendars.modify(calendar_id, &id, fields, false, None, now, ADMIN)?
            }
            Change::Delete { id } => {
                let notifications = calendars.delete(calendar_id, &id, None, now, ADMIN)?;
                (calendars.get(calendar_id, &id)?, notifications)
            }
        };
        drop(calendars);
        self.inner.notify(notifications);
        Ok(value)
    }

    /// How many Meet conferences `conferenceData.createRequest` made on a
    /// calendar (a repeated `requestId` makes none).
    pub fn conferences_created(&self, calendar_id: &str) -> u64 {
        lock(&self.inner.calendars).conferences.created(calendar_id)
    }

    /// How many watch channels are live (not stopped).
    pub fn channel_count(&self) -> usize {
        lock(&self.inner.calendars).channels.len()
    }

    /// Notifications delivered and failed so far.
    pub fn deliveries(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.inner.delivery.delivered.load(Ordering::Relaxed),
            self.inner.delivery.failed.load(Ordering::Relaxed),
        )
    }
}

/// A purge age as chrono counts it (an age too long for it is for ever, near enough).
fn purge_age(age: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// A change made "in Google" by someone other than calsync.
#[derive(Debug, Clone)]
pub enum Change {
    Insert(serde_json::Map<String, Value>),
    Patch {
        id: String,
        fields: serde_json::Map<String, Value>,
    },
    Delete {
        id: String,
    },
}
