//! Every sealed column, listed in keyset pages and replaced value by value
//! only where the row still holds what was read (re-sealing under a new
//! key while servers write).

use super::*;
use calsync_domain::feed::Cursor;
use calsync_domain::feed::subscription::{SealedSecret, WebhookId, WebhookSubscription};
use calsync_domain::grant::{Grant, GrantId, GrantStatus, PendingAuthorization};
use calsync_domain::ports::{SealedColumn, SealedValue};

fn sealed_grant(n: u32, token: &str) -> Grant {
    Grant {
        // Chosen ids, so the test knows where each sorts.
        id: GrantId::parse(&format!("gr_{n:032x}")).unwrap(),
        provider: "google".into(),
        email: format!("user{n}@example.com"),
        account: format!("acct-{n}"),
        scopes: vec!["openid".into()],
        status: GrantStatus::Active,
        refresh_token: SealedSecret(token.into()),
        created_at: now(),
        updated_at: now(),
        last_refresh_at: None,
        last_error: None,
    }
}

fn sealed_webhook(n: u32, previous: Option<&str>) -> WebhookSubscription {
    WebhookSubscription {
        id: WebhookId::parse(&format!("wh_{n:032x}")).unwrap(),
        url: format!("https://app.example.com/hooks/{n}"),
        types: Vec::new(),
        entity_type: None,
        calendar_id: None,
        description: None,
        secret: SealedSecret(format!("sealed-secret-{n}")),
        previous_secret: previous.map(|p| SealedSecret(p.into())),
        previous_secret_until: previous.map(|_| now() + Duration::hours(24)),
        enabled: true,
        disabled_reason: None,
        cursor: Cursor::START,
        failures: 0,
        failing_since: None,
        next_attempt_at: now(),
        last_delivered_at: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// Every value of `column`, `limit` at a time; also the page sizes.
async fn list_all(
    store: &Arc<dyn Store>,
    column: SealedColumn,
    limit: u32,
) -> (Vec<SealedValue>, Vec<usize>) {
    let (mut all, mut pages) = (Vec::new(), Vec::new());
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_sealed(column, after.as_deref(), limit)
            .await
            .unwrap();
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.row.clone());
        all.extend(page);
    }
    (all, pages)
}

fn rows(values: &[SealedValue]) -> Vec<(&str, &str)> {
    values
        .iter()
        .map(|v| (v.row.as_str(), v.sealed.0.as_str()))
        .collect()
}

pub async fn sealed_values_are_listed_in_keyset_pages(store: &Arc<dyn Store>) {
    for column in SealedColumn::ALL {
        assert_eq!(
            list_all(store, column, 10).await.0,
            Vec::new(),
            "{column:?}"
        );
    }
    // Inserted out of order; listed by key.
    for n in [3, 1, 5, 2, 4] {
        store
            .upsert_grant(&sealed_grant(n, &format!("sealed-refresh-{n}")))
            .await
            .unwrap();
    }
    // A revoked grant's token is dropped (empty): nothing sealed to list.
    let mut revoked = sealed_grant(6, "");
    revoked.status = GrantStatus::Revoked;
    store.upsert_grant(&revoked).await.unwrap();
    let (grants, pages) = list_all(store, SealedColumn::GrantRefreshToken, 2).await;
    assert_eq!(pages, vec![2, 2, 1, 0]);
    let expected: Vec<(String, String)> = (1..=5)
        .map(|n| (format!("gr_{n:032x}"), format!("sealed-refresh-{n}")))
        .collect();
    let expected: Vec<(&str, &str)> = expected
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(rows(&grants), expected);
    assert!(
        grants
            .iter()
            .all(|v| v.column == SealedColumn::GrantRefreshToken)
    );

    // Keyset: a page after row 2 starts at 3 whatever was inserted before
    // it meanwhile, and a row inserted after it is found.
    let after_two = format!("gr_{:032x}", 2);
    store
        .upsert_grant(&sealed_grant(0, "sealed-refresh-0"))
        .await
        .unwrap();
    store
        .upsert_grant(&sealed_grant(9, "sealed-refresh-9"))
        .await
        .unwrap();
    let page = store
        .list_sealed(SealedColumn::GrantRefreshToken, Some(&after_two), 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|v| v.sealed.0.as_str()).collect::<Vec<_>>(),
        vec![
            "sealed-refresh-3",
            "sealed-refresh-4",
            "sealed-refresh-5",
            "sealed-refresh-9"
        ]
    );

    for state in ["state-b", "state-a"] {
        store
            .insert_authorization(&PendingAuthorization {
                state: state.into(),
                verifier: SealedSecret(format!("sealed-verifier-{state}")),
                login_hint: None,
                return_to: None,
                created_at: now(),
                expires_at: now() + Duration::minutes(10),
            })
            .await
            .unwrap();
    }
    let (verifiers, _) = list_all(store, SealedColumn::AuthorizationVerifier, 1).await;
    assert_eq!(
        rows(&verifiers),
        vec![
            ("state-a", "sealed-verifier-state-a"),
            ("state-b", "sealed-verifier-state-b")
        ]
    );

    store
        .insert_webhook(&sealed_webhook(2, Some("sealed-previous-2")))
        .await
        .unwrap();
    store
        .insert_webhook(&sealed_webhook(1, None))
        .await
        .unwrap();
    let (secrets, _) = list_all(store, SealedColumn::WebhookSecret, 5).await;
    let one = format!("wh_{:032x}", 1);
    let two = format!("wh_{:032x}", 2);
    assert_eq!(
        rows(&secrets),
        vec![
            (one.as_str(), "sealed-secret-1"),
            (two.as_str(), "sealed-secret-2")
        ]
    );
    // Only a webhook rotated before has a previous secret.
    let (previous, _) = list_all(store, SealedColumn::WebhookPreviousSecret, 5).await;
    assert_eq!(rows(&previous), vec![(two.as_str(), "sealed-previous-2")]);
}

pub async fn a_sealed_value_is_replaced_only_if_unchanged(store: &Arc<dyn Store>) {
    let grant = sealed_grant(1, "sealed-old");
    store.upsert_grant(&grant).await.unwrap();
    let other = sealed_grant(2, "sealed-other");
    store.upsert_grant(&other).await.unwrap();
    let listed = store
        .list_sealed(SealedColumn::GrantRefreshToken, None, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(listed.row, grant.id.as_str());
    let new = SealedSecret("sealed-new".into());
    assert!(store.replace_sealed(&listed, &new).await.unwrap());
    // Only the token changed; not `updated_at`, not the other grant.
    let stored = store.get_grant(&grant.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Grant {
            refresh_token: new.clone(),
            ..grant.clone()
        }
    );
    assert_eq!(store.get_grant(&other.id).await.unwrap().unwrap(), other);
    // What was read is no longer there: refused, nothing written.
    assert!(
        !store
            .replace_sealed(&listed, &SealedSecret("sealed-stale".into()))
            .await
            .unwrap()
    );
    // A refresh lands between the read and the replacement: it wins.
    let read = store
        .list_sealed(SealedColumn::GrantRefreshToken, None, 1)
        .await
        .unwrap()
        .remove(0);
    let mut refreshed = stored.clone();
    refreshed.refresh_token = SealedSecret("sealed-refreshed".into());
    assert!(store.update_grant(&refreshed).await.unwrap());
    assert!(
        !store
            .replace_sealed(&read, &SealedSecret("sealed-resealed".into()))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_grant(&grant.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_token,
        sealed("sealed-refreshed")
    );
    // A row that is gone, or a value under another column, is not replaced.
    let missing = SealedValue {
        row: format!("gr_{:032x}", 7),
        ..read.clone()
    };
    assert!(!store.replace_sealed(&missing, &new).await.unwrap());
    let elsewhere = SealedValue {
        column: SealedColumn::AuthorizationVerifier,
        ..read.clone()
    };
    assert!(!store.replace_sealed(&elsewhere, &new).await.unwrap());

    // A webhook's two secrets are replaced apart; the settings stay.
    let hook = sealed_webhook(1, Some("sealed-previous"));
    store.insert_webhook(&hook).await.unwrap();
    let previous = store
        .list_sealed(SealedColumn::WebhookPreviousSecret, None, 10)
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .replace_sealed(&previous, &sealed("sealed-previous-new"))
            .await
            .unwrap()
    );
    let current = store
        .list_sealed(SealedColumn::WebhookSecret, None, 10)
        .await
        .unwrap()
        .remove(0);
    // A rotation meanwhile (the secret moves to previous): both refused.
    let mut rotated = store.get_webhook(&hook.id).await.unwrap().unwrap();
    assert_eq!(
        rotated,
        WebhookSubscription {
            previous_secret: Some(sealed("sealed-previous-new")),
            ..hook.clone()
        }
    );
    rotated.previous_secret = Some(rotated.secret.clone());
    rotated.secret = sealed("sealed-rotated");
    assert!(store.update_webhook(&rotated).await.unwrap());
    assert!(
        !store
            .replace_sealed(&current, &sealed("sealed-resealed"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_sealed(&previous, &sealed("sealed-resealed"))
            .await
            .unwrap()
    );
    assert_eq!(store.get_webhook(&hook.id).await.unwrap().unwrap(), rotated);

    let pending = PendingAuthorization {
        state: "state-1".into(),
        verifier: sealed("sealed-verifier"),
        login_hint: None,
        return_to: None,
        created_at: now(),
        expires_at: now() + Duration::minutes(10),
    };
    store.insert_authorization(&pending).await.unwrap();
    let verifier = store
        .list_sealed(SealedColumn::AuthorizationVerifier, None, 10)
        .await
        .unwrap()
        .remove(0);
    assert!(
        store
            .replace_sealed(&verifier, &sealed("sealed-verifier-new"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.take_authorization("state-1").await.unwrap(),
        Some(PendingAuthorization {
            verifier: sealed("sealed-verifier-new"),
            ..pending
        })
    );
    // Taken meanwhile: nothing to replace.
    assert!(
        !store
            .replace_sealed(&verifier, &sealed("sealed-late"))
            .await
            .unwrap()
    );
}

fn sealed(text: &str) -> SealedSecret {
    SealedSecret(text.into())
}
