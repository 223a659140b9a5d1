//! Re-sealing every secret at rest under the key that seals now, after a
//! new key was put first in the key ring (`calsync secrets reseal`), so the
//! old key can leave the ring.
//!
//! It runs beside live servers: each value is replaced only if its row
//! still holds what was read (a refresh or a rotation made meanwhile wins),
//! and passes repeat until one finds nothing left to move, which also
//! catches a writer that read a row before a replacement and wrote the old
//! value back after it. Values are opened (every one, current or not, so
//! the report also says whether the ring opens everything) and sealed in
//! memory only; a report names a value by its column and row, never by
//! its text.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::ports::{SealedColumn, SealedSecretStore, SealedValue, SecretKeeper};

/// Values read per page.
pub const DEFAULT_RESEAL_PAGE: u32 = 500;

/// Passes before giving up on values that keep changing under it. The
/// second pass normally finds everything current and ends the run.
pub const MAX_RESEAL_PASSES: u32 = 5;

/// A value the key ring cannot open: where it is, and why (the keeper's
/// reason names a key id at most, never a key or a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnopenableSecret {
    #[serde(serialize_with = "column_name")]
    pub column: SealedColumn,
    pub row: String,
    pub reason: String,
}

fn column_name<S: serde::Serializer>(
    column: &SealedColumn,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(column.as_str())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResealReport {
    /// Values moved under the current key.
    pub resealed: u64,
    /// Values found under the current key already (first pass).
    pub already_current: u64,
    /// Replacements refused because the row changed after it was read;
    /// each is looked at again by the next pass.
    pub changed_meanwhile: u64,
    /// Values still not under the current key when the passes ran out
    /// (they kept changing, written by something sealing with another
    /// key: a server still running the old ring?). Run it again.
    pub left_behind: u64,
    /// Values no key of the ring opens, left as they are.
    pub unopenable: Vec<UnopenableSecret>,
    pub passes: u32,
}

impl ResealReport {
    /// Everything the store holds is under the current key and opens.
    pub fn is_complete(&self) -> bool {
        self.unopenable.is_empty() && self.left_behind == 0
    }
}

#[derive(Clone)]
pub struct ResealService {
    store: Arc<dyn SealedSecretStore>,
    keeper: Arc<dyn SecretKeeper>,
    page_size: u32,
    max_passes: u32,
}

impl ResealService {
    pub fn new(store: Arc<dyn SealedSecretStore>, keeper: Arc<dyn SecretKeeper>) -> Self {
        Self {
            store,
            keeper,
            page_size: DEFAULT_RESEAL_PAGE,
            max_passes: MAX_RESEAL_PASSES,
        }
    }

    /// Values read per page (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Re-seals every value not under the keeper's current key. A value
    /// that does not open is reported and skipped, never fatal; a store
    /// or sealing failure ends the run with an error (what was replaced
    /// stays replaced, and running it again carries on).
    pub async fn reseal(&self) -> Result<ResealReport> {
        let mut report = ResealReport::default();
        let mut unopenable: BTreeMap<(SealedColumn, String), String> = BTreeMap::new();
        for pass in 1..=self.max_passes {
            report.passes = pass;
            let mut moved = 0u64;
            let mut changed = 0u64;
            for column in SealedColumn::ALL {
                let mut after: Option<String> = None;
                loop {
                    let page = self
                        .store
                        .list_sealed(column, after.as_deref(), self.page_size)
                        .await?;
                    for value in &page {
                        if unopenable.contains_key(&(column, value.row.clone())) {
                            continue;
                        }
                        match self.reseal_one(value).await? {
                            Outcome::Current if pass == 1 => report.already_current += 1,
                            Outcome::Current => {}
                            Outcome::Resealed => moved += 1,
                            Outcome::Changed => changed += 1,
                            Outcome::Unopenable(reason) => {
                                unopenable.insert((column, value.row.clone()), reason);
                            }
                        }
                    }
                    if page.len() < self.page_size as usize {
                        break;
                    }
                    after = page.last().map(|value| value.row.clone());
                }
            }
            report.resealed += moved;
            report.changed_meanwhile += changed;
            report.left_behind = changed;
            if moved == 0 && changed == 0 {
                break;
            }
        }
        report.unopenable = unopenable
            .into_iter()
            .map(|((column, row), reason)| UnopenableSecret {
                column,
                row,
                reason,
            })
            .collect();
        Ok(report)
    }

    async fn reseal_one(&self, value: &SealedValue) -> Result<Outcome> {
        let plain = match self.keeper.open_bytes(&value.sealed) {
            Ok(plain) => plain,
            Err(error) => return Ok(Outcome::Unopenable(error.to_string())),
        };
        if self.keeper.sealed_with_current_key(&value.sealed) {
            return Ok(Outcome::Current);
        }
        let new = self.keeper.seal_bytes(&plain)?;
        Ok(if self.store.replace_sealed(value, &new).await? {
            Outcome::Resealed
        } else {
            Outcome::Changed
        })
    }
}

enum Outcome {
    Current,
    Resealed,
    Changed,
    Unopenable(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::Error;
    use crate::feed::Cursor;
    use crate::feed::signature::SigningSecret;
    use crate::feed::subscription::{SealedSecret, WebhookId, WebhookSubscription};
    use crate::grant::{Grant, GrantId, GrantStatus, PendingAuthorization};
    use crate::ports::{GrantStore, WebhookStore};
    use crate::testing::MemoryStore;

    /// Seals as `<key id>:<plain, reversed>` under the first of its ids,
    /// opens under any: the shape of a key ring, readable in assertions.
    struct RingKeeper(Vec<&'static str>);

    impl SecretKeeper for RingKeeper {
        fn new_signing_secret(&self) -> Result<SigningSecret> {
            SigningSecret::from_bytes(vec![7; 32])
        }
        fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret> {
            let mut reversed = plain.to_vec();
            reversed.reverse();
            Ok(SealedSecret(format!(
                "{}:{}",
                self.0[0],
                String::from_utf8(reversed).unwrap()
            )))
        }
        fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>> {
            let (id, data) = sealed.0.split_once(':').unwrap();
            if !self.0.contains(&id) {
                return Err(Error::Storage(format!("key id {id} is not in the ring")));
            }
            let mut plain = data.as_bytes().to_vec();
            plain.reverse();
            Ok(plain)
        }
        fn sealed_with_current_key(&self, sealed: &SealedSecret) -> bool {
            sealed.0.starts_with(&format!("{}:", self.0[0]))
        }
    }

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn grant(n: u32, keeper: &RingKeeper) -> Grant {
        Grant {
            id: GrantId::random(),
            provider: "google".into(),
            email: format!("user{n}@example.com"),
            account: format!("{n}"),
            scopes: vec!["openid".into()],
            status: GrantStatus::Active,
            refresh_token: keeper.seal_text(&format!("refresh-{n}")).unwrap(),
            created_at: at(),
            updated_at: at(),
            last_refresh_at: None,
            last_error: None,
        }
    }

    fn webhook(n: u32, keeper: &RingKeeper, previous: bool) -> WebhookSubscription {
        WebhookSubscription {
            id: WebhookId::random(),
            url: format!("https://app.example.com/hooks/{n}"),
            types: Vec::new(),
            entity_type: None,
            calendar_id: None,
            description: None,
            secret: keeper.seal_text(&format!("secret-{n}")).unwrap(),
            previous_secret: previous.then(|| keeper.seal_text(&format!("old-{n}")).unwrap()),
            previous_secret_until: previous.then(at),
            enabled: true,
            disabled_reason: None,
            cursor: Cursor::START,
            failures: 0,
            failing_since: None,
            next_attempt_at: at(),
            last_delivered_at: None,
            created_at: at(),
            updated_at: at(),
        }
    }

    async fn everything(store: &Arc<MemoryStore>) -> Vec<SealedValue> {
        let mut all = Vec::new();
        for column in SealedColumn::ALL {
            all.extend(store.list_sealed(column, None, 1000).await.unwrap());
        }
        all
    }

    #[tokio::test]
    async fn everything_moves_to_the_new_key_and_still_opens_to_the_same() {
        let store = MemoryStore::new();
        let k1 = RingKeeper(vec!["k1"]);
        for n in 0..7 {
            store.upsert_grant(&grant(n, &k1)).await.unwrap();
            store
                .insert_webhook(&webhook(n, &k1, n % 2 == 0))
                .await
                .unwrap();
        }
        // A revoked grant holds nothing sealed: it is not listed or touched.
        let mut revoked = grant(99, &k1);
        revoked.refresh_token = SealedSecret(String::new());
        store.upsert_grant(&revoked).await.unwrap();
        store
            .insert_authorization(&PendingAuthorization {
                state: "state-1".into(),
                verifier: k1.seal_text("verifier-1").unwrap(),
                login_hint: None,
                return_to: None,
                created_at: at(),
                expires_at: at(),
            })
            .await
            .unwrap();
        let before = everything(&store).await;
        assert_eq!(before.len(), 7 + 7 + 4 + 1);

        let ring = Arc::new(RingKeeper(vec!["k2", "k1"]));
        let service = ResealService::new(store.clone(), ring.clone()).with_page_size(3);
        let report = service.reseal().await.unwrap();
        assert_eq!(
            report,
            ResealReport {
                resealed: 19,
                already_current: 0,
                changed_meanwhile: 0,
                left_behind: 0,
                unopenable: Vec::new(),
                // The second pass finds nothing left.
                passes: 2,
            }
        );
        assert!(report.is_complete());
        let after = everything(&store).await;
        let k2_only = RingKeeper(vec!["k2"]);
        for (old, new) in before.iter().zip(&after) {
            assert_eq!((old.column, &old.row), (new.column, &new.row));
            assert!(new.sealed.0.starts_with("k2:"), "{:?}", new.column);
            assert_eq!(
                k2_only.open_bytes(&new.sealed).unwrap(),
                k1.open_bytes(&old.sealed).unwrap()
            );
        }
        assert_eq!(
            store
                .get_grant(&revoked.id)
                .await
                .unwrap()
                .unwrap()
                .refresh_token,
            SealedSecret(String::new())
        );

        // Again: nothing to do, everything current.
        let again = service.reseal().await.unwrap();
        assert_eq!((again.resealed, again.already_current), (0, 19));
        assert_eq!(again.passes, 1);
    }

    #[tokio::test]
    async fn an_unopenable_value_is_named_by_its_row_and_the_rest_still_move() {
        let store = MemoryStore::new();
        let k0 = RingKeeper(vec!["k0"]);
        let k1 = RingKeeper(vec!["k1"]);
        let lost = grant(1, &k0);
        store.upsert_grant(&lost).await.unwrap();
        let kept = grant(2, &k1);
        store.upsert_grant(&kept).await.unwrap();
        let ring = Arc::new(RingKeeper(vec!["k2", "k1"]));
        let report = ResealService::new(store.clone(), ring)
            .reseal()
            .await
            .unwrap();
        assert_eq!(report.resealed, 1);
        assert_eq!(
            report.unopenable,
            vec![UnopenableSecret {
                column: SealedColumn::GrantRefreshToken,
                row: lost.id.as_str().to_owned(),
                reason: "storage error: key id k0 is not in the ring".into(),
            }]
        );
        assert!(!report.is_complete());
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains("\"column\":\"grant.refresh_token\""),
            "{json}"
        );
        assert!(
            !json.contains("refresh-1") && !json.contains("1-hserfer"),
            "{json}"
        );
        let stored = store.get_grant(&lost.id).await.unwrap().unwrap();
        assert_eq!(stored.refresh_token, lost.refresh_token);
        let moved = store.get_grant(&kept.id).await.unwrap().unwrap();
        assert!(moved.refresh_token.0.starts_with("k2:"));
    }

    /// A store that lets a concurrent writer in between the read and the
    /// replacement of the first value it lists, `times` times.
    struct Racing {
        inner: Arc<MemoryStore>,
        writer: RingKeeper,
        times: Mutex<u32>,
    }

    #[async_trait]
    impl SealedSecretStore for Racing {
        async fn list_sealed(
            &self,
            column: SealedColumn,
            after: Option<&str>,
            limit: u32,
        ) -> Result<Vec<SealedValue>> {
            self.inner.list_sealed(column, after, limit).await
        }
        async fn replace_sealed(&self, value: &SealedValue, new: &SealedSecret) -> Result<bool> {
            let (race, left) = {
                let mut times = self.times.lock().unwrap();
                let race = *times > 0;
                *times = times.saturating_sub(1);
                (race, *times)
            };
            if race && value.column == SealedColumn::GrantRefreshToken {
                // A refresh lands first, sealed with the writer's key (a
                // new text each time, as real seals are).
                let id = GrantId::parse(&value.row).unwrap();
                let mut grant = self.inner.get_grant(&id).await.unwrap().unwrap();
                let token = if left == 0 {
                    "refreshed".to_owned()
                } else {
                    format!("refreshed-{left}")
                };
                grant.refresh_token = self.writer.seal_text(&token).unwrap();
                self.inner.update_grant(&grant).await.unwrap();
            }
            self.inner.replace_sealed(value, new).await
        }
    }

    #[tokio::test]
    async fn a_value_changed_meanwhile_is_never_overwritten_and_is_looked_at_again() {
        let store = MemoryStore::new();
        let k1 = RingKeeper(vec!["k1"]);
        let only = grant(1, &k1);
        store.upsert_grant(&only).await.unwrap();
        let ring = Arc::new(RingKeeper(vec!["k2", "k1"]));

        // A writer on the new ring: its value is current, and kept.
        let racing = Arc::new(Racing {
            inner: store.clone(),
            writer: RingKeeper(vec!["k2", "k1"]),
            times: Mutex::new(1),
        });
        let report = ResealService::new(racing, ring.clone())
            .reseal()
            .await
            .unwrap();
        assert_eq!(
            (
                report.resealed,
                report.changed_meanwhile,
                report.left_behind
            ),
            (0, 1, 0)
        );
        let stored = store.get_grant(&only.id).await.unwrap().unwrap();
        assert_eq!(ring.open_text(&stored.refresh_token).unwrap(), "refreshed");
        assert!(report.is_complete());

        // A writer still on the old ring, every time: its value is moved
        // by a later pass, until the passes run out.
        store.update_grant(&only).await.unwrap();
        let stubborn = Arc::new(Racing {
            inner: store.clone(),
            writer: RingKeeper(vec!["k1"]),
            times: Mutex::new(u32::MAX),
        });
        let report = ResealService::new(stubborn, ring.clone())
            .reseal()
            .await
            .unwrap();
        assert_eq!(report.passes, MAX_RESEAL_PASSES);
        assert_eq!(report.changed_meanwhile, u64::from(MAX_RESEAL_PASSES));
        assert_eq!(report.left_behind, 1);
        assert!(!report.is_complete());
        let stored = store.get_grant(&only.id).await.unwrap().unwrap();
        assert!(stored.refresh_token.0.starts_with("k1:"));

        // Once it stops, a run moves it.
        let report = ResealService::new(store.clone(), ring)
            .reseal()
            .await
            .unwrap();
        assert_eq!((report.resealed, report.left_behind), (1, 0));
    }
}
