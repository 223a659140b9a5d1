//! Grants (users' own connected accounts) and the pending authorizations
//! their callbacks take once.

use super::*;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::grant::{Grant, GrantId, GrantStatus, PendingAuthorization};

fn grant(account: &str, n: i64) -> Grant {
    let created = now() + Duration::seconds(n);
    Grant {
        id: GrantId::random(),
        provider: "google".into(),
        email: format!("{account}@example.com"),
        account: account.into(),
        scopes: vec![
            "openid".into(),
            "email".into(),
            "https://www.googleapis.com/auth/calendar".into(),
        ],
        status: GrantStatus::Active,
        refresh_token: SealedSecret(format!("sealed-refresh-{account}")),
        created_at: created,
        updated_at: created,
        last_refresh_at: None,
        last_error: None,
    }
}

fn pending(state: &str, expires_at: DateTime<Utc>) -> PendingAuthorization {
    PendingAuthorization {
        state: state.into(),
        verifier: SealedSecret(format!("sealed-verifier-{state}")),
        login_hint: Some("ada@example.com".into()),
        return_to: Some("https://app.example.com/settings?tab=calendars".into()),
        created_at: expires_at - Duration::minutes(10),
        expires_at,
    }
}

pub async fn grants_round_trip_every_field(store: &Arc<dyn Store>) {
    let mut every = grant("1001", 0);
    // Sub-microsecond parts are dropped by every store alike.
    every.created_at += Duration::nanoseconds(123_456_789);
    every.updated_at = every.created_at + Duration::minutes(5);
    every.last_refresh_at = Some(now() + Duration::minutes(7));
    every.last_error = Some("invalid_grant: Token has been expired or revoked.".into());
    every.status = GrantStatus::ReconnectRequired;
    let stored = store.upsert_grant(&every).await.unwrap();
    let expected = Grant {
        created_at: now() + Duration::nanoseconds(123_456_000),
        updated_at: now() + Duration::nanoseconds(123_456_000) + Duration::minutes(5),
        ..every.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(
        store.get_grant(&every.id).await.unwrap().as_ref(),
        Some(&expected)
    );

    let mut bare = grant("1002", 1);
    bare.scopes = Vec::new();
    bare.status = GrantStatus::Revoked;
    assert_eq!(store.upsert_grant(&bare).await.unwrap(), bare);
    assert_eq!(store.get_grant(&bare.id).await.unwrap(), Some(bare));
    assert_eq!(store.get_grant(&GrantId::random()).await.unwrap(), None);

    // The authorization, too, every field and none of the optional ones.
    let full = pending("state-full", now() + Duration::minutes(10));
    let minimal = PendingAuthorization {
        login_hint: None,
        return_to: None,
        ..pending("state-minimal", now() + Duration::minutes(10))
    };
    store.insert_authorization(&full).await.unwrap();
    store.insert_authorization(&minimal).await.unwrap();
    assert!(matches!(
        store.insert_authorization(&full).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(
        store.take_authorization("state-full").await.unwrap(),
        Some(full)
    );
    assert_eq!(
        store.take_authorization("state-minimal").await.unwrap(),
        Some(minimal)
    );
}

pub async fn reconnecting_an_account_updates_its_grant_in_place(store: &Arc<dyn Store>) {
    let first = store.upsert_grant(&grant("2001", 0)).await.unwrap();
    let other = store.upsert_grant(&grant("2002", 1)).await.unwrap();

    // The same account again, with a new id, address, token and status:
    // the grant it had is updated, its id and creation kept.
    let mut again = grant("2001", 60);
    again.email = "renamed@example.com".into();
    again.refresh_token = SealedSecret("sealed-refresh-new".into());
    again.scopes = vec!["openid".into(), "email".into()];
    again.last_refresh_at = Some(now() + Duration::seconds(60));
    let mut before = first.clone();
    before.status = GrantStatus::ReconnectRequired;
    before.last_error = Some("invalid_grant".into());
    assert!(store.update_grant(&before).await.unwrap());

    let stored = store.upsert_grant(&again).await.unwrap();
    let expected = Grant {
        id: first.id.clone(),
        created_at: first.created_at,
        ..again.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(store.get_grant(&first.id).await.unwrap(), Some(expected));
    assert_eq!(store.get_grant(&again.id).await.unwrap(), None);
    assert_eq!(store.list_grants().await.unwrap().len(), 2);

    // Another provider's account of the same id is another grant.
    let mut elsewhere = grant("2001", 2);
    elsewhere.provider = "other".into();
    assert_eq!(
        store.upsert_grant(&elsewhere).await.unwrap().id,
        elsewhere.id
    );

    // A new account cannot take an id another grant has.
    let clash = Grant {
        id: other.id.clone(),
        ..grant("2003", 3)
    };
    assert!(matches!(
        store.upsert_grant(&clash).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(store.get_grant(&other.id).await.unwrap(), Some(other));
}

pub async fn grants_are_updated_and_listed_oldest_first(store: &Arc<dyn Store>) {
    let (newest, oldest, middle) = (grant("3001", 30), grant("3002", 10), grant("3003", 20));
    for g in [&newest, &oldest, &middle] {
        store.upsert_grant(g).await.unwrap();
    }
    let listed: Vec<GrantId> = store
        .list_grants()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(
        listed,
        [oldest.id.clone(), middle.id.clone(), newest.id.clone()]
    );

    // An update changes the grant's state, never who it is for or when it
    // was made.
    let mut edited = middle.clone();
    edited.email = "changed@example.com".into();
    edited.status = GrantStatus::ReconnectRequired;
    edited.refresh_token = SealedSecret("sealed-refresh-rotated".into());
    edited.updated_at = now() + Duration::hours(1);
    edited.last_refresh_at = Some(now() + Duration::hours(1));
    edited.last_error = Some("invalid_grant".into());
    let mut attempted = edited.clone();
    attempted.account = "someone-else".into();
    attempted.provider = "other".into();
    attempted.created_at = now() + Duration::days(1);
    assert!(store.update_grant(&attempted).await.unwrap());
    assert_eq!(store.get_grant(&middle.id).await.unwrap(), Some(edited));

    let missing = grant("3004", 40);
    assert!(!store.update_grant(&missing).await.unwrap());
    assert_eq!(store.get_grant(&missing.id).await.unwrap(), None);
    assert_eq!(store.list_grants().await.unwrap().len(), 3);
}

pub async fn an_authorization_is_taken_once(store: &Arc<dyn Store>) {
    let p = pending("state-once", now() + Duration::minutes(10));
    store.insert_authorization(&p).await.unwrap();
    assert_eq!(
        store.take_authorization("state-once").await.unwrap(),
        Some(p)
    );
    assert_eq!(store.take_authorization("state-once").await.unwrap(), None);
    assert_eq!(
        store.take_authorization("never-issued").await.unwrap(),
        None
    );

    // Callbacks racing for one state: exactly one gets it.
    let p = pending("state-raced", now() + Duration::minutes(10));
    store.insert_authorization(&p).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_authorization("state-raced").await.unwrap()
            })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.unwrap());
    }
    assert_eq!(taken, [p]);
}

pub async fn purging_drops_only_expired_authorizations(store: &Arc<dyn Store>) {
    let expired = pending("state-expired", now() - Duration::seconds(1));
    let at_the_cut = pending("state-at-the-cut", now());
    let live = pending("state-live", now() + Duration::minutes(5));
    for p in [&expired, &at_the_cut, &live] {
        store.insert_authorization(p).await.unwrap();
    }
    assert_eq!(store.purge_authorizations(now()).await.unwrap(), 1);
    assert_eq!(store.purge_authorizations(now()).await.unwrap(), 0);
    assert_eq!(
        store.take_authorization("state-expired").await.unwrap(),
        None
    );
    assert_eq!(
        store.take_authorization("state-at-the-cut").await.unwrap(),
        Some(at_the_cut)
    );
    assert_eq!(
        store.take_authorization("state-live").await.unwrap(),
        Some(live)
    );
}

pub async fn one_holder_at_a_time_refreshes_a_grant(store: &Arc<dyn Store>) {
    use calsync_domain::grant::{RefreshClaim, RefreshResult};
    let g = store.upsert_grant(&grant("2001", 0)).await.unwrap();
    let t0 = now();
    let until = t0 + Duration::seconds(30);
    let claimed = store
        .claim_grant_refresh(&g.id, "a", t0, until)
        .await
        .unwrap();
    assert!(
        matches!(claimed, RefreshClaim::Claimed(ref c) if c.id == g.id),
        "{claimed:?}"
    );
    // Another holder waits while the claim holds, takes it once it lapsed.
    let busy = store
        .claim_grant_refresh(&g.id, "b", t0 + Duration::seconds(1), until)
        .await
        .unwrap();
    assert!(matches!(busy, RefreshClaim::Busy { .. }), "{busy:?}");
    let taken = store
        .claim_grant_refresh(
            &g.id,
            "b",
            until + Duration::seconds(1),
            until + Duration::seconds(31),
        )
        .await
        .unwrap();
    assert!(matches!(taken, RefreshClaim::Claimed(_)), "{taken:?}");
    // The first holder's late finish changes nothing.
    let result = RefreshResult::Refreshed {
        rotated: Some(SealedSecret("sealed-rotated-a".into())),
        scopes: Vec::new(),
    };
    assert!(
        !store
            .finish_grant_refresh(&g.id, "a", &result, until)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_grant(&g.id).await.unwrap().unwrap().refresh_token,
        g.refresh_token
    );
    // The holder's finish saves the rotated token and releases the claim.
    let at = until + Duration::seconds(2);
    let rotated = RefreshResult::Refreshed {
        rotated: Some(SealedSecret("sealed-rotated-b".into())),
        scopes: vec!["email".into(), "openid".into()],
    };
    assert!(
        store
            .finish_grant_refresh(&g.id, "b", &rotated, at)
            .await
            .unwrap()
    );
    let stored = store.get_grant(&g.id).await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token,
        SealedSecret("sealed-rotated-b".into())
    );
    assert_eq!(stored.last_refresh_at, Some(at));
    assert_eq!(stored.scopes, ["email", "openid"]);
    let again = store
        .claim_grant_refresh(&g.id, "a", at, at + Duration::seconds(30))
        .await
        .unwrap();
    assert!(matches!(again, RefreshClaim::Claimed(_)), "{again:?}");
    let failed = RefreshResult::Failed {
        error: "token endpoint: 503".into(),
    };
    assert!(
        store
            .finish_grant_refresh(&g.id, "a", &failed, at)
            .await
            .unwrap()
    );
    let stored = store.get_grant(&g.id).await.unwrap().unwrap();
    assert_eq!(stored.status, GrantStatus::Active);
    assert_eq!(stored.last_error.as_deref(), Some("token endpoint: 503"));
    // Unknown grants, inactive grants.
    assert_eq!(
        store
            .claim_grant_refresh(&GrantId::random(), "a", at, at)
            .await
            .unwrap(),
        RefreshClaim::Missing
    );
}

pub async fn a_refused_refresh_turns_the_grant_and_its_calendars_once(store: &Arc<dyn Store>) {
    use calsync_domain::calendar::ManagedCalendar;
    use calsync_domain::feed::ChangeType;
    use calsync_domain::grant::{RefreshClaim, RefreshResult};
    let g = store.upsert_grant(&grant("2002", 0)).await.unwrap();
    let t0 = now();
    let mine = CalendarId::new("mine@example.com").unwrap();
    let other = CalendarId::new("other@example.com").unwrap();
    for (calendar, through) in [(&mine, Some(g.id.clone())), (&other, None)] {
        store
            .upsert_calendar(&ManagedCalendar {
                calendar_id: calendar.clone(),
                subject: None,
                grant: through,
                created_at: t0,
                updated_at: t0,
            })
            .await
            .unwrap();
        store.mark_dirty(calendar, false).await.unwrap();
    }
    assert_eq!(
        store.get_calendar(&mine).await.unwrap().unwrap().grant,
        Some(g.id.clone())
    );
    let before = store.latest_cursor().await.unwrap();
    let refused = RefreshResult::Refused {
        error: "invalid_grant".into(),
    };
    for _ in 0..2 {
        let claim = store
            .claim_grant_refresh(&g.id, "a", t0, t0 + Duration::seconds(30))
            .await
            .unwrap();
        match claim {
            RefreshClaim::Claimed(_) => {
                assert!(
                    store
                        .finish_grant_refresh(&g.id, "a", &refused, t0)
                        .await
                        .unwrap()
                );
            }
            RefreshClaim::Inactive(status) => assert_eq!(status, GrantStatus::ReconnectRequired),
            other => panic!("{other:?}"),
        }
    }
    let stored = store.get_grant(&g.id).await.unwrap().unwrap();
    assert_eq!(stored.status, GrantStatus::ReconnectRequired);
    assert!(
        store
            .sync_state(&mine)
            .await
            .unwrap()
            .unwrap()
            .reconnect_required
    );
    assert!(
        !store
            .sync_state(&other)
            .await
            .unwrap()
            .unwrap()
            .reconnect_required
    );
    let changes = store
        .read_changes(&calsync_domain::feed::ChangeQuery {
            after: Some(before),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = changes.items.iter().map(|c| c.change.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeType::GrantReconnectRequired,
            ChangeType::CalendarReconnectRequired
        ]
    );
    assert_eq!(
        changes.items[0].change.detail.grant.as_deref(),
        Some(g.id.as_str())
    );

    // The account connects again: active, `grant.recovered`, claim free.
    let mut again = grant("2002", 5);
    again.refresh_token = SealedSecret("sealed-new".into());
    let restored = store.upsert_grant(&again).await.unwrap();
    assert_eq!(
        (restored.id.clone(), restored.status),
        (g.id.clone(), GrantStatus::Active)
    );
    let changes = store
        .read_changes(&calsync_domain::feed::ChangeQuery {
            after: Some(changes.next_cursor),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = changes.items.iter().map(|c| c.change.kind).collect();
    assert_eq!(kinds, [ChangeType::GrantRecovered]);
    // The calendar resumes without a full sync.
    store.clear_reconnect_required(&mine, false).await.unwrap();
    let state = store.sync_state(&mine).await.unwrap().unwrap();
    assert!(!state.reconnect_required && !state.full_sync_requested);
}
