//! Each account's calendar list (`calendarList.list`), with sync and page
//! tokens.
//!
//! calendarList.list reference
//! (<https://developers.google.com/calendar/api/v3/reference/calendarList/list>):
//! `maxResults` "By default the value is 100 entries. The page size can
//! never be larger than 250 entries."; `showDeleted` and `showHidden`
//! default to false; with `syncToken`, "All entries deleted and hidden
//! since the previous list request will always be in the result set and it
//! is not allowed to set showDeleted neither showHidden to False", and
//! "minAccessRole query parameter cannot be specified together with
//! nextSyncToken"; an expired token is answered 410 and the client must
//! sync in full. `nextPageToken` is omitted on the last page, which
//! carries `nextSyncToken`.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::access::AccessRole;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub(crate) struct ListEntry {
    pub summary: String,
    pub time_zone: String,
    pub role: AccessRole,
    pub primary: bool,
    pub hidden: bool,
    pub deleted: bool,
    /// The change that last touched the entry.
    pub seq: u64,
}

impl ListEntry {
    fn json(&self, id: &str) -> Value {
        let mut entry = json!({
            "kind": "calendar#calendarListEntry",
            "etag": format!("\"{}\"", self.seq),
            "id": id,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "accessRole": self.role.as_str(),
        });
        for (flag, on) in [
            ("primary", self.primary),
            ("hidden", self.hidden),
            ("deleted", self.deleted),
        ] {
            if on {
                entry[flag] = json!(true);
            }
        }
        entry
    }
}

#[derive(Debug, Default)]
pub(crate) struct CalendarLists {
    by_account: HashMap<String, BTreeMap<String, ListEntry>>,
    seq: u64,
    /// Bumped to invalidate every sync token.
    pub generation: u64,
}

/// calendarList.list's parameters.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListParams {
    pub sync_token: Option<String>,
    pub page_token: Option<String>,
    pub max_results: Option<usize>,
    pub show_deleted: Option<bool>,
    pub show_hidden: Option<bool>,
    pub min_access_role: Option<AccessRole>,
}

/// Where a listing stands: the same for every page of it.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    account: String,
    generation: u64,
    /// Changes after this sequence (an incremental listing), or all.
    since: Option<u64>,
    /// Changes up to this sequence: the listing's snapshot.
    high: u64,
    offset: usize,
    show_deleted: bool,
    show_hidden: bool,
    min_role: Option<AccessRole>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SyncToken {
    account: String,
    generation: u64,
    seq: u64,
}

fn encode<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode<T: for<'de> Deserialize<'de>>(token: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn full_sync_required() -> ApiError {
    ApiError::new(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
    )
}

impl CalendarLists {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn has(&self, account: &str, calendar_id: &str) -> bool {
        self.by_account
            .get(account)
            .is_some_and(|l| l.contains_key(calendar_id))
    }

    /// Adds the calendar to the account's list (again, if it was removed).
    pub fn upsert(
        &mut self,
        account: &str,
        calendar_id: &str,
        summary: &str,
        time_zone: &str,
        role: AccessRole,
        primary: bool,
    ) {
        let seq = self.next_seq();
        let hidden = self
            .by_account
            .get(account)
            .and_then(|l| l.get(calendar_id))
            .is_some_and(|e| e.hidden && !e.deleted);
        self.by_account
            .entry(account.to_owned())
            .or_default()
            .insert(
                calendar_id.to_owned(),
                ListEntry {
                    summary: summary.to_owned(),
                    time_zone: time_zone.to_owned(),
                    role,
                    primary,
                    hidden,
                    deleted: false,
                    seq,
                },
            );
    }

    fn entry_mut(&mut self, account: &str, calendar_id: &str) -> Result<&mut ListEntry, ApiError> {
        self.by_account
            .get_mut(account)
            .and_then(|l| l.get_mut(calendar_id))
            .filter(|e| !e.deleted)
            .ok_or_else(ApiError::not_found)
    }

    pub fn set_hidden(
        &mut self,
        account: &str,
        calendar_id: &str,
        hidden: bool,
    ) -> Result<(), ApiError> {
        self.entry_mut(account, calendar_id)?;
        let seq = self.next_seq();
        let entry = self.entry_mut(account, calendar_id)?;
        entry.hidden = hidden;
        entry.seq = seq;
        Ok(())
    }

    /// Marks the entry deleted: incremental syncs report it as such.
    pub fn remove(&mut self, account: &str, calendar_id: &str) -> Result<(), ApiError> {
        self.entry_mut(account, calendar_id)?;
        let seq = self.next_seq();
        let entry = self.entry_mut(account, calendar_id)?;
        entry.deleted = true;
        entry.hidden = false;
        entry.seq = seq;
        Ok(())
    }

    /// The account's entries, deleted ones included.
    pub fn entries(&self, account: &str) -> Vec<Value> {
        self.by_account
            .get(account)
            .map(|l| l.iter().map(|(id, e)| e.json(id)).collect())
            .unwrap_or_default()
    }

    pub fn list(&self, account: &str, params: &ListParams) -> Result<Value, ApiError> {
        let max = match params.max_results {
            Some(0) => {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Invalid value for maxResults",
                ));
            }
            Some(n) => n.min(250),
            None => 100,
        };
        let cursor = match (&params.page_token, &params.sync_token) {
            (Some(page), _) => decode::<Cursor>(page)
                .filter(|c| c.account == account)
                .ok_or_else(|| ApiError::bad_request("invalid", "Invalid page token value."))?,
            (None, Some(token)) => {
                if params.show_deleted == Some(false) || params.show_hidden == Some(false) {
                    return Err(ApiError::bad_request(
                        "invalid",
                        "showDeleted and showHidden cannot be false with a syncToken.",
                    ));
                }
                if params.min_access_role.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid",
                        "minAccessRole cannot be used with a syncToken.",
                    ));
                }
                let token = decode::<SyncToken>(token)
                    .filter(|t| t.account == account && t.generation == self.generation)
                    .ok_or_else(full_sync_required)?;
                Cursor {
                    account: account.to_owned(),
                    generation: self.generation,
                    since: Some(token.seq),
                    high: self.seq,
                    offset: 0,
                    show_deleted: true,
                    show_hidden: true,
                    min_role: None,
                }
            }
            (None, None) => Cursor {
                account: account.to_owned(),
                generation: self.generation,
                since: None,
                high: self.seq,
                offset: 0,
                show_deleted: params.show_deleted.unwrap_or(false),
                show_hidden: params.show_hidden.unwrap_or(false),
                min_role: params.min_access_role,
            },
        };
        if cursor.generation != self.generation {
            return Err(full_sync_required());
        }
        let matching: Vec<Value> = self
            .by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter(|(_, e)| e.seq <= cursor.high)
            .filter(|(_, e)| match cursor.since {
                Some(since) => e.seq > since,
                None => {
                    (cursor.show_deleted || !e.deleted)
                        && (cursor.show_hidden || !e.hidden)
                        && cursor.min_role.is_none_or(|role| e.role >= role)
                }
            })
            .map(|(id, e)| e.json(id))
            .collect();
        let end = (cursor.offset + max).min(matching.len());
        let items = matching
            .get(cursor.offset..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let mut body = json!({
            "kind": "calendar#calendarList",
            "etag": format!("\"{}\"", cursor.high),
            "items": items,
        });
        if end < matching.len() {
            body["nextPageToken"] = json!(encode(&Cursor {
                offset: end,
                ..cursor
            }));
        } else {
            body["nextSyncToken"] = json!(encode(&SyncToken {
                account: account.to_owned(),
                generation: self.generation,
                seq: cursor.high,
            }));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &Value) -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn incremental_lists_carry_only_changes_hidden_and_deleted_included() {
        let mut lists = CalendarLists::default();
        for id in ["a", "b", "c"] {
            lists.upsert("ada", id, id, "UTC", AccessRole::Reader, false);
        }
        lists.set_hidden("ada", "b", true).unwrap();
        let full = lists.list("ada", &ListParams::default()).unwrap();
        assert_eq!(ids(&full), ["a", "c"]);
        let token = full["nextSyncToken"].as_str().unwrap().to_owned();
        lists.remove("ada", "c").unwrap();
        lists.set_hidden("ada", "a", true).unwrap();
        let changes = lists
            .list(
                "ada",
                &ListParams {
                    sync_token: Some(token.clone()),
                    ..ListParams::default()
                },
            )
            .unwrap();
        assert_eq!(ids(&changes), ["a", "c"]);
        assert_eq!(changes["items"][1]["deleted"], json!(true));
        assert_eq!(changes["items"][0]["hidden"], json!(true));
        assert!(
            lists
                .list(
                    "bob",
                    &ListParams {
                        sync_token: Some(token),
                        ..ListParams::default()
                    }
                )
                .is_err(),
            "a token is its account's"
        );
    }
}
