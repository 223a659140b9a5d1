//! `calsync secrets reseal` on each backend with real key rings: rows
//! sealed under k1 still open with the ring `k2,k1`; the command moves every
//! one under k2, after which `k2` alone opens them all to what they were,
//! and a webhook's secret still signs what its receiver verifies. A ring
//! that opens nothing fails the command, naming rows and never a value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::process::{Command, Output};
use std::sync::Arc;

use calsync_delivery::SealingKeeper;
use calsync_domain::feed::Cursor;
use calsync_domain::feed::signature::{DEFAULT_TOLERANCE_SECS, verify};
use calsync_domain::feed::subscription::{SealedSecret, WebhookId, WebhookSubscription};
use calsync_domain::grant::{Grant, GrantId, GrantStatus, PendingAuthorization};
use calsync_domain::ports::{SealedColumn, SealedValue, SecretKeeper, Store};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::Utc;

struct Keys {
    k1: String,
    k2: String,
    k3: String,
}

impl Keys {
    fn new() -> Self {
        let key = |id| SealingKeeper::generate_key_with_id(id).unwrap();
        Self {
            k1: key("k1"),
            k2: key("k2"),
            k3: key("k3"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `calsync secrets ...` with only the environment given (none inherited:
/// a stray DATABASE_URL or key must not reach it).
fn calsync(args: &[&str], database_url: &str, ring: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calsync"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("CALSYNC_ENV", "development");
    if let Some(ring) = ring {
        command.env("CALSYNC_SECRETS_KEY", ring);
    }
    command.output().unwrap()
}

fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "not a JSON summary ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// What was stored, in the clear, to compare after.
struct Plain {
    grants: Vec<(GrantId, String)>,
    /// Each webhook with the `whsec_` its receiver holds (and the previous one).
    webhooks: Vec<(WebhookId, String, Option<String>)>,
    verifier: (String, String),
    revoked: GrantId,
}

async fn seed(store: &Arc<dyn Store>, k1: &SealingKeeper) -> Plain {
    let now = Utc::now();
    let mut grants = Vec::new();
    for n in 0..3 {
        let token = format!("1//refresh-token-{n}-{}", uuid::Uuid::new_v4().simple());
        let grant = Grant {
            id: GrantId::random(),
            provider: "google".into(),
            email: format!("user{n}@example.com"),
            account: format!("account-{n}"),
            scopes: vec!["openid".into()],
            status: GrantStatus::Active,
            refresh_token: k1.seal_text(&token).unwrap(),
            created_at: now,
            updated_at: now,
            last_refresh_at: Some(now),
            last_error: None,
        };
        store.upsert_grant(&grant).await.unwrap();
        grants.push((grant.id, token));
    }
    let revoked = Grant {
        id: GrantId::random(),
        provider: "google".into(),
        email: "gone@example.com".into(),
        account: "account-gone".into(),
        scopes: Vec::new(),
        status: GrantStatus::Revoked,
        refresh_token: SealedSecret(String::new()),
        created_at: now,
        updated_at: now,
        last_refresh_at: None,
        last_error: None,
    };
    store.upsert_grant(&revoked).await.unwrap();
    let mut webhooks = Vec::new();
    for n in 0..2 {
        let secret = k1.new_signing_secret().unwrap();
        let previous = (n == 1).then(|| k1.new_signing_secret().unwrap());
        let subscription = WebhookSubscription {
            id: WebhookId::random(),
            url: format!("https://app.example.com/hooks/{n}"),
            types: Vec::new(),
            entity_type: None,
            calendar_id: None,
            description: None,
            secret: k1.seal(&secret).unwrap(),
            previous_secret: previous.as_ref().map(|p| k1.seal(p).unwrap()),
            previous_secret_until: previous.as_ref().map(|_| now + chrono::Duration::hours(24)),
            enabled: true,
            disabled_reason: None,
            cursor: Cursor::START,
            failures: 0,
            failing_since: None,
            next_attempt_at: now,
            last_delivered_at: None,
            created_at: now,
            updated_at: now,
        };
        store.insert_webhook(&subscription).await.unwrap();
        webhooks.push((
            subscription.id,
            secret.expose(),
            previous.map(|p| p.expose()),
        ));
    }
    let verifier = format!("verifier-{}", uuid::Uuid::new_v4().simple());
    store
        .insert_authorization(&PendingAuthorization {
            state: "state-reseal".into(),
            verifier: k1.seal_text(&verifier).unwrap(),
            login_hint: None,
            return_to: None,
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
        })
        .await
        .unwrap();
    Plain {
        grants,
        webhooks,
        verifier: ("state-reseal".into(), verifier),
        revoked: revoked.id,
    }
}

async fn every_sealed(store: &Arc<dyn Store>) -> Vec<SealedValue> {
    let mut all = Vec::new();
    for column in SealedColumn::ALL {
        all.extend(store.list_sealed(column, None, 1000).await.unwrap());
    }
    all
}

/// Every secret opens with `keeper` to what was stored, and each webhook's
/// secret signs what its receiver (holding the `whsec_` it was shown)
/// verifies.
async fn check_opens(store: &Arc<dyn Store>, keeper: &SealingKeeper, plain: &Plain) {
    for (id, token) in &plain.grants {
        let grant = store.get_grant(id).await.unwrap().unwrap();
        assert_eq!(&keeper.open_text(&grant.refresh_token).unwrap(), token);
    }
    let revoked = store.get_grant(&plain.revoked).await.unwrap().unwrap();
    assert_eq!(revoked.refresh_token, SealedSecret(String::new()));
    let now = Utc::now().timestamp();
    for (id, whsec, previous_whsec) in &plain.webhooks {
        let subscription = store.get_webhook(id).await.unwrap().unwrap();
        let secret = keeper.open(&subscription.secret).unwrap();
        assert_eq!(&secret.expose(), whsec);
        let body = br#"{"type":"event.created"}"#;
        let signature = secret.sign("msg_1", now, body);
        verify(
            whsec,
            "msg_1",
            &now.to_string(),
            &signature,
            body,
            now,
            DEFAULT_TOLERANCE_SECS,
        )
        .unwrap();
        let previous = subscription
            .previous_secret
            .as_ref()
            .map(|sealed| keeper.open(sealed).unwrap().expose());
        assert_eq!(&previous, previous_whsec);
    }
    let (state, verifier) = &plain.verifier;
    let values = store
        .list_sealed(SealedColumn::AuthorizationVerifier, None, 10)
        .await
        .unwrap();
    let value = values.iter().find(|v| &v.row == state).unwrap();
    assert_eq!(&keeper.open_text(&value.sealed).unwrap(), verifier);
}

fn reseal_round_trip(database_url: &str) {
    let keys = Keys::new();
    let k1 = SealingKeeper::from_config(&keys.k1).unwrap();
    let url = DatabaseUrl::parse(Some(database_url)).unwrap();
    let rt = runtime();
    let store = rt
        .block_on(calsync_store::connect(&url, &StoreOptions::default()))
        .unwrap();
    let plain = rt.block_on(seed(&store, &k1));
    let before = rt.block_on(every_sealed(&store));
    // 3 refresh tokens (not the revoked grant's), 2 secrets, 1 previous, 1 verifier.
    assert_eq!(before.len(), 7);
    assert!(before.iter().all(|v| v.sealed.0.starts_with("v1.k1.")));

    // The new ring still opens the old rows.
    let ring = format!("{},{}", keys.k2, keys.k1);
    let both = SealingKeeper::from_config(&ring).unwrap();
    rt.block_on(check_opens(&store, &both, &plain));

    // Without a key, the command refuses (the public development key is
    // no ring to re-seal under), and nothing changes.
    let refused = calsync(&["secrets", "reseal"], database_url, None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("CALSYNC_SECRETS_KEY"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(rt.block_on(every_sealed(&store)), before);

    let output = calsync(
        &["secrets", "reseal", "--page-size", "2"],
        database_url,
        Some(&ring),
    );
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = summary(&output);
    assert_eq!(report["resealed"], 7, "{report}");
    assert_eq!(report["alreadyCurrent"], 0, "{report}");
    assert_eq!(report["unopenable"], serde_json::json!([]), "{report}");
    assert_eq!(report["leftBehind"], 0, "{report}");
    assert_eq!(report["sealingKeyId"], "k2", "{report}");

    // Every row is under k2 now, the same rows, and k2 alone opens them.
    let after = rt.block_on(every_sealed(&store));
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!((old.column, &old.row), (new.column, &new.row));
        assert!(new.sealed.0.starts_with("v1.k2."), "{:?}", new.column);
    }
    let k2 = SealingKeeper::from_config(&keys.k2).unwrap();
    rt.block_on(check_opens(&store, &k2, &plain));

    // Run again with k2 alone: nothing left to move, everything opens.
    let output = calsync(&["secrets", "reseal"], database_url, Some(&keys.k2));
    assert!(output.status.success());
    let report = summary(&output);
    assert_eq!(
        (
            &report["resealed"],
            &report["alreadyCurrent"],
            &report["passes"]
        ),
        (
            &serde_json::json!(0),
            &serde_json::json!(7),
            &serde_json::json!(1)
        ),
        "{report}"
    );

    // A ring that opens none of them: every value named by column and row,
    // none moved, the command fails, and no value or token is printed.
    let output = calsync(&["secrets", "reseal"], database_url, Some(&keys.k3));
    assert!(!output.status.success());
    let report = summary(&output);
    let unopenable = report["unopenable"].as_array().unwrap();
    assert_eq!(unopenable.len(), 7, "{report}");
    let rows: Vec<&str> = unopenable
        .iter()
        .map(|u| u["row"].as_str().unwrap())
        .collect();
    for (id, _) in &plain.grants {
        assert!(rows.contains(&id.as_str()), "{report}");
    }
    assert!(
        unopenable
            .iter()
            .all(|u| u["reason"].as_str().unwrap().contains("key id k2")),
        "{report}"
    );
    assert_eq!(rt.block_on(every_sealed(&store)), after);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("7 value(s) do not open"), "{printed}");
    for (_, token) in &plain.grants {
        assert!(!printed.contains(token.as_str()));
    }
    for (_, whsec, _) in &plain.webhooks {
        assert!(!printed.contains(whsec.trim_start_matches("whsec_")));
    }
    assert!(!printed.contains(&plain.verifier.1));
    for value in after.iter().chain(&before) {
        assert!(!printed.contains(&value.sealed.0));
    }
    for key in [&keys.k1, &keys.k2, &keys.k3] {
        assert!(!printed.contains(key.split_once(':').unwrap().1));
    }
}

#[test]
fn reseal_moves_every_secret_to_the_new_key_on_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("calsync-reseal-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("calsync.db").display());
    reseal_round_trip(&url);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reseal_moves_every_secret_to_the_new_key_on_postgres() {
    let Some(base) = support::postgres_url("secrets reseal on Postgres") else {
        return;
    };
    let rt = runtime();
    let options = StoreOptions::default();
    let (url, schema) = rt
        .block_on(calsync_store::create_scratch_schema(&base, &options))
        .unwrap();
    reseal_round_trip(&url);
    rt.block_on(calsync_store::drop_scratch_schema(&base, &schema, &options))
        .unwrap();
}

#[test]
fn generate_key_prints_a_key_the_ring_accepts() {
    let output = calsync(&["secrets", "generate-key", "--id", "k7"], "", None);
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    let line = line.trim();
    assert!(line.starts_with("k7:"), "{line}");
    let keeper = SealingKeeper::from_config(line).unwrap();
    assert_eq!(keeper.sealing_key_id(), "k7");
    let refused = calsync(&["secrets", "generate-key", "--id", "k.7"], "", None);
    assert!(!refused.status.success());
}
