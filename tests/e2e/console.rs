//! The operator console in a real browser (Debian's Chromium over the
//! DevTools protocol) against the real server with seeded data: logging in
//! (a wrong token refused, no page without a session), every page's figures
//! against the API, a failed write (Google refusing an insert, by a fault
//! plan in the emulator) retried from its page and then synced at Google,
//! no attendee's email on any page. Each page is saved as a screenshot in
//! `target/console-screenshots/`.

use std::time::Duration;

use calsync_emulator::Fault;
use serde_json::{Value, json};

use crate::browser::{Browser, Page, artifacts_dir};
use crate::events_api::Api;
use crate::helpers::{TOKEN, eventually};

const GUEST: &str = "guest.person@example.org";

fn event_body(entity_id: &str, summary: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    json!({
        "entityType": "deal", "entityId": entity_id, "summary": summary,
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
        "attendees": [{"email": GUEST}],
    })
}

/// A figure on the overview, as a number (`-` and text stay text).
async fn figure(page: &Page, name: &str) -> String {
    page.text(&format!("[data-figure=\"{name}\"]"))
        .await
        .unwrap()
}

async fn html(page: &Page) -> String {
    page.eval("document.documentElement.outerHTML")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Saves the page, and checks it shows no attendee email and no token.
async fn shot(page: &Page, name: &str) {
    let markup = html(page).await;
    assert!(!markup.contains(GUEST), "{name} shows an attendee's email");
    assert!(!markup.contains(TOKEN), "{name} shows the API token");
    let path = artifacts_dir().join(format!("console-{name}.png"));
    let png = page.screenshot(&path).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_logs_in_reads_every_page_and_retries_a_failed_write() {
    let Some(browser) = Browser::for_test("console").await else {
        return;
    };
    let api = Api::sqlite().await;
    let base = format!("http://{}", api.running.address);

    // Seed: a webhook whose receiver is down (subscribed first: it gets
    // the changes after its creation), two events Google took and one it
    // refused for good.
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_url = format!("http://{}/hooks", down.local_addr().unwrap());
    drop(down);
    let (status, hook) = api
        .call(
            "POST",
            "/calendar/webhooks",
            Some(json!({"url": down_url, "description": "CRM"})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    for (entity, summary) in [("c1", "Kick-off"), ("c2", "Review")] {
        let (status, body) = api
            .call(
                "POST",
                "/calendar/events?wait=true",
                Some(event_body(entity, summary)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // The calendar synced once (its first, full sync; before the refused
    // insert, which a full sync would find missing at Google), so the
    // overview has a sync lag to show.
    let (status, body) = api.call("POST", "/calendar/sync", Some(json!({}))).await;
    assert!(status < 300, "{status} {body}");
    let synced = eventually(Duration::from_secs(20), || async {
        let (_, health) = api.call("GET", "/health/calendar", None).await;
        health["lastSyncAt"].is_string()
    })
    .await;
    assert!(synced, "the calendar never synced");
    api.emulator()
        .schedule_fault(Some("insert"), 1, Fault::status(400).with_reason("invalid"));
    let (status, refused) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(event_body("c3", "Refused")),
        )
        .await;
    assert_eq!(status, 502, "{refused}");
    let failed_id = refused["event"]["id"].as_str().unwrap().to_owned();
    let failing = eventually(Duration::from_secs(20), || async {
        let (_, listed) = api.call("GET", "/calendar/webhooks", None).await;
        listed["items"][0]["failures"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(failing, "the webhook never failed");

    // No session: the console sends the browser to the login form.
    let page = browser.new_page(&format!("{base}/console")).await.unwrap();
    assert_eq!(page.url().await.unwrap(), format!("{base}/console/login"));
    assert_eq!(page.count("form#login").await.unwrap(), 1);
    shot(&page, "login").await;
    // A wrong token: refused, no cookie.
    page.fill("form#login input[name=token]", "not-the-token-0123456789")
        .await
        .unwrap();
    page.click("form#login button").await.unwrap();
    assert_eq!(page.status().await.unwrap(), 401);
    assert!(page.cookies().await.unwrap().is_empty());
    // The right one: a session cookie the page's scripts cannot read.
    page.fill("form#login input[name=token]", TOKEN)
        .await
        .unwrap();
    page.click("form#login button").await.unwrap();
    assert_eq!(page.status().await.unwrap(), 200);
    assert_eq!(page.url().await.unwrap(), format!("{base}/console"));
    let cookies = page.cookies().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].http_only, "{cookies:?}");
    assert_eq!(cookies[0].same_site.as_deref(), Some("Strict"));
    assert_eq!(page.eval("document.cookie").await.unwrap(), "");

    // Overview: the figures are the API's.
    let (_, health) = api.call("GET", "/health/calendar", None).await;
    assert_eq!(
        figure(&page, "status").await,
        health["status"].as_str().unwrap()
    );
    for (name, field) in [
        ("active-events", "activeEvents"),
        ("outbox-pending", "outboxPending"),
        ("outbox-quota-waiting", "outboxQuotaWaiting"),
        ("outbox-dead-letters", "outboxDeadLetters"),
    ] {
        assert_eq!(
            figure(&page, name).await,
            health[field].to_string(),
            "{name} against {health}"
        );
    }
    assert_eq!(figure(&page, "active-events").await, "3");
    assert_eq!(figure(&page, "outbox-dead-letters").await, "1");
    let (_, calendars) = api.call("GET", "/calendar/calendars", None).await;
    let managed = calendars["items"].as_array().unwrap().len();
    assert_eq!(figure(&page, "calendars").await, managed.to_string());
    assert_eq!(figure(&page, "webhooks-failing").await, "1");
    let lag = figure(&page, "sync-lag-secs").await;
    assert!(lag.parse::<u64>().is_ok(), "sync lag {lag:?}");
    for chart in ["syncs", "pushes", "deliveries"] {
        assert_eq!(
            page.count(&format!("svg[data-chart=\"{chart}\"]"))
                .await
                .unwrap(),
            1,
            "{chart}"
        );
    }
    // This replica pushed three writes (two taken, one given up) and tried
    // the webhook at least once in the last hour.
    assert_eq!(page.text("[data-total=\"pushed\"]").await.unwrap(), "2");
    assert_eq!(
        page.text("[data-total=\"dead_lettered\"]").await.unwrap(),
        "1"
    );
    let failed: u64 = page
        .text("[data-total=\"failed\"]")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(failed >= 1);
    shot(&page, "overview").await;

    // Calendars: one row per managed calendar, with its actions.
    page.click("a[data-nav=\"calendars\"]").await.unwrap();
    assert_eq!(page.count("tr[data-calendar-id]").await.unwrap(), managed);
    assert_eq!(
        page.count("tr[data-calendar-id] button[data-action=\"sync\"]")
            .await
            .unwrap(),
        managed
    );
    shot(&page, "calendars").await;

    // Webhooks: the subscription and its failed attempts, replayable.
    page.click("a[data-nav=\"webhooks\"]").await.unwrap();
    let section = format!("section[data-webhook-id=\"{hook_id}\"]");
    assert_eq!(page.count(&section).await.unwrap(), 1);
    assert_eq!(
        page.text(&format!("{section} [data-field=\"enabled\"]"))
            .await
            .unwrap(),
        "true"
    );
    let (_, attempts) = api
        .call(
            "GET",
            &format!("/calendar/webhooks/{hook_id}/attempts"),
            None,
        )
        .await;
    assert!(!attempts["items"].as_array().unwrap().is_empty());
    assert!(
        page.count(&format!(
            "{section} tr[data-cursor] button[data-action=\"replay\"]"
        ))
        .await
        .unwrap()
            >= 1
    );
    shot(&page, "webhooks").await;

    // Failed writes: the refused insert with Google's error; retried, it
    // reaches Google (the fault was one refusal).
    page.click("a[data-nav=\"failed-writes\"]").await.unwrap();
    let row = format!("tr[data-event-id=\"{failed_id}\"]");
    assert_eq!(page.count("tr[data-event-id]").await.unwrap(), 1);
    let error = page
        .text(&format!("{row} [data-field=\"error\"]"))
        .await
        .unwrap();
    assert!(error.contains("400"), "{error}");
    shot(&page, "failed-writes").await;
    page.click(&format!("{row} button[data-action=\"retry\"]"))
        .await
        .unwrap();
    assert_eq!(page.count("p.flash[data-flash=\"ok\"]").await.unwrap(), 1);
    let synced = api.pushed(&failed_id).await;
    let google_id = synced["googleEventId"].as_str().unwrap().to_owned();
    assert!(
        api.emulator()
            .events("primary")
            .iter()
            .any(|e| e["id"] == google_id.as_str() && e["status"] != "cancelled"),
        "the retried insert is not at Google"
    );
    page.click("a[data-nav=\"failed-writes\"]").await.unwrap();
    assert_eq!(page.count("tr[data-event-id]").await.unwrap(), 0);
    let (_, feed) = api
        .call("GET", "/calendar/changes?types=event.push_retried", None)
        .await;
    assert_eq!(feed["items"][0]["eventId"], failed_id.as_str(), "{feed}");

    browser.close().await;
    api.stop().await;
}
