//! The emulator's `events.instances` against an independent RFC 5545
//! implementation: every series of the domain's recurrence corpus
//! (crates/domain/tests/fixtures/recurrence: occurrences computed with
//! Python's `dateutil.rrule`, see its `generate.py`) is inserted over real
//! HTTP, and its instances' id suffixes must match the corpus exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use calsync_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

const CAL_PATH: &str = "corpus%40example.com";
/// Small pages, so that following `nextPageToken` is part of the test.
const PAGE: usize = 7;

struct Api {
    client: support::Http,
    base: String,
}

impl Api {
    async fn call(&self, method: &str, path_and_query: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path_and_query}", self.base);
        let (status, answer) = self.client.json(method, &url, Some("any"), &[], body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path_and_query}: {status} {answer}"
        );
        answer
    }
}

fn corpus() -> Value {
    let path = format!(
        "{}/../domain/tests/fixtures/recurrence/corpus.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_of_every_corpus_series_match_dateutil() {
    let emu = Emulator::new(EmulatorConfig::default())
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let api = Api {
        client: support::Http::new(),
        base: format!("{}/calendar/v3/calendars/{CAL_PATH}/events", emu.base_url),
    };
    let corpus = corpus();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let master = api
            .call(
                "POST",
                "",
                Some(&json!({
                    "summary": name,
                    "start": case["start"],
                    "end": case["end"],
                    "recurrence": case["recurrence"],
                })),
            )
            .await;
        let id = master["id"].as_str().unwrap();
        let mut query = format!("/{id}/instances?maxResults={PAGE}");
        if let Some(window) = case["window"].as_object() {
            for bound in ["timeMin", "timeMax"] {
                query.push_str(&format!("&{bound}={}", window[bound].as_str().unwrap()));
            }
        }
        let mut got = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match &token {
                None => query.clone(),
                Some(token) => format!("{query}&pageToken={token}"),
            };
            let answer = api.call("GET", &page, None).await;
            for item in answer["items"].as_array().unwrap() {
                let instance = item["id"].as_str().unwrap();
                let suffix = instance
                    .strip_prefix(id)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .unwrap_or(instance);
                got.push(suffix.to_owned());
            }
            match answer["nextPageToken"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        let expected: Vec<&str> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    emu.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from dateutil:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
