//! Free/busy and availability from the mirror, checked against Google's
//! own `freeBusy.query` (the emulator's, computed from its own state):
//! seeded random calendars with single, all-day and recurring events
//! (moved and cancelled occurrences, DST transitions), declines,
//! transparency and event types, over many random windows and zones. Then
//! freshness after a change in Google, staleness, and the fallback's calls.
//! On both backends.

use std::collections::BTreeMap;
use std::time::Duration;

use calsync_emulator::Change;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::{bearer, eventually, http, object};

const CALENDARS: [&str; 2] = ["ana@example.com", "room-1@example.com"];
const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];

/// xorshift64*: a seeded run replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

fn base() -> DateTime<Utc> {
    // March and early April 2030: the US (10 March) and Europe (31 March)
    // change their clocks inside the seeded span.
    Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random event in Google's shape on `calendar`.
fn random_event(rng: &mut Rng, calendar: &str, id: &str) -> Value {
    let start = base() + chrono::Duration::minutes(15 * rng.below(4 * 24 * 45) as i64);
    let zone = rng.pick(&ZONES[1..]);
    let timed = |at: DateTime<Utc>| json!({"dateTime": stamp(at), "timeZone": zone});
    let length = chrono::Duration::minutes(15 * (1 + rng.below(16) as i64));
    let mut event = json!({"id": id, "summary": format!("seeded {id}")});
    let kind = rng.below(10);
    if kind < 2 {
        let day = start.date_naive();
        event["start"] = json!({"date": day.to_string()});
        event["end"] = json!({"date": (day + chrono::Days::new(1 + rng.below(3))).to_string()});
    } else if kind == 9 {
        // A long single (a conference, a leave): it starts well before
        // many windows it blocks.
        event["start"] = timed(start);
        event["end"] = timed(start + chrono::Duration::hours(24 * 5 + rng.below(24 * 15) as i64));
    } else {
        event["start"] = timed(start);
        event["end"] = timed(start + length);
    }
    if (2..6).contains(&kind) {
        let rule = rng.pick(&[
            "RRULE:FREQ=DAILY;COUNT=30",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
            "RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20300420T000000Z",
            "RRULE:FREQ=WEEKLY",
        ]);
        event["recurrence"] = json!([rule]);
    }
    match rng.below(12) {
        0 | 1 => event["transparency"] = json!("transparent"),
        2 if kind >= 6 => event["eventType"] = json!("outOfOffice"),
        3 if kind >= 6 => event["eventType"] = json!("focusTime"),
        _ => {}
    }
    if rng.below(2) == 0 {
        let answer = rng.pick(&["accepted", "declined", "tentative", "needsAction"]);
        event["attendees"] = json!([
            {"email": calendar, "responseStatus": answer},
            {"email": "guest@example.com", "responseStatus": "accepted"},
        ]);
    }
    event
}

/// Seeds a calendar in Google; returns the series' ids.
fn seed_calendar(api: &Api, rng: &mut Rng, calendar: &str, count: usize) -> Vec<String> {
    let mut series = Vec::new();
    for i in 0..count {
        let id = format!("fb{}e{i}", calendar.len());
        let event = random_event(rng, calendar, &id);
        if event.get("recurrence").is_some() {
            series.push(id.clone());
        }
        api.emulator()
            .change(calendar, Change::Insert(object(event)))
            .unwrap();
    }
    series
}

/// Moves or cancels some occurrences of each series, as an organizer
/// would in Google (an occurrence's own id makes it an exception).
async fn except_some(api: &Api, rng: &mut Rng, calendar: &str, series: &[String]) {
    let base_url = &api.running.emulator.as_ref().unwrap().base_url;
    let (name, value) = bearer();
    for id in series {
        let url = format!(
            "{base_url}/calendar/v3/calendars/{}/events/{id}/instances?timeMin={}&timeMax={}&maxResults=2500",
            calsync_emulator::encode_path(calendar),
            stamp(base()),
            stamp(base() + chrono::Duration::days(50)),
        );
        let (status, page) = http("GET", &url, &[(name, &value)], None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            continue;
        }
        for _ in 0..2 {
            let instance = &items[rng.below(items.len() as u64) as usize];
            let instance_id = instance["id"].as_str().unwrap().to_owned();
            if rng.below(2) == 0 {
                let _ = api
                    .emulator()
                    .change(calendar, Change::Delete { id: instance_id });
            } else if instance["start"].get("dateTime").is_some() {
                // Moved by up to twenty days either way, maybe out of the series' span.
                let shift = chrono::Duration::hours(rng.below(24 * 40) as i64 - 24 * 20);
                let moved = |time: &Value| {
                    let at = DateTime::parse_from_rfc3339(time["dateTime"].as_str().unwrap())
                        .unwrap()
                        .with_timezone(&Utc);
                    json!({"dateTime": stamp(at + shift), "timeZone": time["timeZone"]})
                };
                let fields =
                    json!({"start": moved(&instance["start"]), "end": moved(&instance["end"])});
                let _ = api.emulator().change(
                    calendar,
                    Change::Patch {
                        id: instance_id,
                        fields: object(fields),
                    },
                );
            }
        }
    }
}

fn free_busy_body(from: DateTime<Utc>, until: DateTime<Utc>, zone: &str) -> Value {
    json!({
        "timeMin": stamp(from), "timeMax": stamp(until), "timeZone": zone,
        "items": CALENDARS.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    })
}

type Busy = BTreeMap<String, Vec<(DateTime<Utc>, DateTime<Utc>)>>;

fn busy_of(answer: &Value) -> Busy {
    let at = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    answer["calendars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, c)| {
            let spans = c["busy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (at(&b["start"]), at(&b["end"])))
                .collect();
            (id.clone(), spans)
        })
        .collect()
}

async fn mirror(api: &Api, body: Value, query: &str) -> Value {
    let (status, answer) = api
        .call("POST", &format!("/calendar/freebusy{query}"), Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn google(api: &Api, body: Value) -> Value {
    let base_url = &api.running.emulator.as_ref().unwrap().base_url;
    let (name, value) = bearer();
    let (status, answer) = http(
        "POST",
        &format!("{base_url}/calendar/v3/freeBusy"),
        &[(name, &value)],
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn manage(api: &Api, calendar: &str) {
    let (status, added) = api
        .call(
            "POST",
            "/calendar/calendars",
            Some(json!({"calendarId": calendar})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
}

async fn the_mirror_answers_free_busy_as_google_does(api: Api) {
    let mut rng = Rng(0x5eed_f00d);
    for calendar in CALENDARS {
        let series = seed_calendar(&api, &mut rng, calendar, 40);
        except_some(&api, &mut rng, calendar, &series).await;
        manage(&api, calendar).await;
    }
    // The first window waits for the first syncs to land.
    let first = free_busy_body(base(), base() + chrono::Duration::days(45), "UTC");
    let synced = eventually(Duration::from_secs(30), || async {
        busy_of(&mirror(&api, first.clone(), "").await)
            == busy_of(&google(&api, first.clone()).await)
    })
    .await;
    if !synced {
        let ours = busy_of(&mirror(&api, first.clone(), "").await);
        let theirs = busy_of(&google(&api, first.clone()).await);
        for id in CALENDARS {
            let only_ours: Vec<_> = ours[id]
                .iter()
                .filter(|s| !theirs[id].contains(s))
                .collect();
            let only_theirs: Vec<_> = theirs[id]
                .iter()
                .filter(|s| !ours[id].contains(s))
                .collect();
            eprintln!("{id}: only mirror {only_ours:?}\n only google {only_theirs:?}");
        }
        panic!("the mirror's free/busy differs from Google's");
    }
    let google_busy = busy_of(&google(&api, first.clone()).await);
    assert!(
        google_busy.values().all(|spans| spans.len() > 5),
        "the seeded calendars are busy: {google_busy:?}"
    );

    for round in 0..40 {
        let from = base() + chrono::Duration::minutes(30 * rng.below(2 * 24 * 48) as i64);
        let until = from + chrono::Duration::minutes(30 * (1 + rng.below(2 * 24 * 30) as i64));
        let zone = rng.pick(&ZONES);
        let body = free_busy_body(from, until, zone);
        let ours = mirror(&api, body.clone(), "").await;
        assert_eq!(
            busy_of(&ours),
            busy_of(&google(&api, body.clone()).await),
            "round {round}: {body}"
        );
        for id in CALENDARS {
            assert_eq!(ours["calendars"][id]["source"], "mirror", "{ours}");
            assert_eq!(ours["calendars"][id]["stale"], false, "{ours}");
        }

        // Every slot offered is free at Google, buffer included.
        let days = 1 + rng.below(10) as i64;
        let buffer = rng.below(3) as i64 * 5;
        let period_end = from + chrono::Duration::days(days);
        let required = if rng.below(2) == 0 {
            json!("all")
        } else {
            json!(1)
        };
        let (status, slots) = api
            .call(
                "POST",
                "/calendar/availability",
                Some(json!({
                    "participants": [{"calendarIds": CALENDARS, "required": required}],
                    "durationMinutes": 30, "intervalMinutes": 15, "bufferMinutes": buffer,
                    "periods": [{"start": stamp(from), "end": stamp(period_end)}],
                    "timeZone": zone,
                })),
            )
            .await;
        assert_eq!(status, 200, "{slots}");
        let wide = free_busy_body(
            from - chrono::Duration::minutes(buffer),
            period_end + chrono::Duration::minutes(buffer),
            zone,
        );
        let truth = busy_of(&google(&api, wide).await);
        for slot in slots["slots"].as_array().unwrap() {
            let at = |v: &Value| {
                DateTime::parse_from_rfc3339(v.as_str().unwrap())
                    .unwrap()
                    .with_timezone(&Utc)
            };
            let (start, end) = (
                at(&slot["start"]) - chrono::Duration::minutes(buffer),
                at(&slot["end"]) + chrono::Duration::minutes(buffer),
            );
            let free: Vec<&str> = slot["calendarIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                free.len() == 2 || (required == json!(1) && !free.is_empty()),
                "{slot}"
            );
            for id in free {
                assert!(
                    truth[id].iter().all(|(s, e)| *e <= start || *s >= end),
                    "round {round}: slot {slot} is busy for {id} at Google: {:?}",
                    truth[id]
                );
            }
        }
    }
}

async fn changes_show_once_synced_and_stale_calendars_fall_back_to_google(api: Api) {
    for calendar in CALENDARS {
        manage(&api, calendar).await;
    }
    // Whole seconds, as the bodies write instants.
    let from =
        DateTime::from_timestamp((Utc::now() + chrono::Duration::days(3)).timestamp(), 0).unwrap();
    let until = from + chrono::Duration::days(1);
    let body = free_busy_body(from, until, "UTC");
    // A meeting made in Google shows once the sync ran (its notification).
    api.emulator()
        .change(
            "ana@example.com",
            Change::Insert(object(json!({
                "id": "fbfresh1", "summary": "Made in Google",
                "start": {"dateTime": stamp(from + chrono::Duration::hours(2))},
                "end": {"dateTime": stamp(from + chrono::Duration::hours(3))},
            }))),
        )
        .unwrap();
    let shown = eventually(Duration::from_secs(20), || async {
        busy_of(&mirror(&api, body.clone(), "").await)["ana@example.com"]
            == [(
                from + chrono::Duration::hours(2),
                from + chrono::Duration::hours(3),
            )]
    })
    .await;
    assert!(shown, "{}", mirror(&api, body.clone(), "").await);

    // Nothing stale: the fallback asks Google nothing.
    let before = api.emulator().calls("freebusy");
    let answer = mirror(&api, body.clone(), "?fallback=google").await;
    assert_eq!(api.emulator().calls("freebusy"), before, "{answer}");
    assert!(answer["calendars"]["ana@example.com"]["syncedAt"].is_string());

    // Access to the room is lost: its mirror is stale, and the fallback
    // asks Google for it alone, once.
    api.emulator()
        .set_calendar_revoked("room-1@example.com", true);
    let (status, body_) = api
        .call(
            "POST",
            "/calendar/sync",
            Some(json!({"calendarId": "room-1@example.com"})),
        )
        .await;
    assert!(status < 500, "{body_}");
    let stale = eventually(Duration::from_secs(20), || async {
        mirror(&api, body.clone(), "").await["calendars"]["room-1@example.com"]["stale"] == true
    })
    .await;
    assert!(
        stale,
        "{}\n{:?}",
        mirror(&api, body.clone(), "").await,
        api.call("GET", "/calendar/calendars/room-1@example.com", None)
            .await
    );
    let answer = mirror(&api, body.clone(), "").await;
    assert_eq!(answer["calendars"]["ana@example.com"]["stale"], false);

    let before = api.emulator().calls("freebusy");
    let answer = mirror(&api, body.clone(), "?fallback=google").await;
    assert_eq!(api.emulator().calls("freebusy"), before + 1, "{answer}");
    let room = &answer["calendars"]["room-1@example.com"];
    assert_eq!(room["source"], "google", "{answer}");
    // Google cannot reach it either, and says so.
    assert_eq!(room["errors"][0]["reason"], "notFound", "{answer}");
    let ana = &answer["calendars"]["ana@example.com"];
    assert_eq!(ana["source"], "mirror", "{answer}");
    assert_eq!(ana["busy"].as_array().unwrap().len(), 1, "{answer}");

    // A calendar calsync does not manage: notFound, not a failed request.
    let unknown = json!({"timeMin": stamp(from), "timeMax": stamp(until),
        "items": [{"id": "stranger@example.com"}]});
    let answer = mirror(&api, unknown, "").await;
    assert_eq!(
        answer["calendars"]["stranger@example.com"]["errors"][0]["reason"],
        "notFound"
    );
    // Limits name their field.
    let (status, error) = api
        .call(
            "POST",
            "/calendar/freebusy",
            Some(
                json!({"timeMin": stamp(from), "timeMax": stamp(from + chrono::Duration::days(91)),
                "items": []}),
            ),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("timeMax")),
        "{error}"
    );
}

both_backends!(
    the_mirror_answers_free_busy_as_google_does,
    changes_show_once_synced_and_stale_calendars_fall_back_to_google,
);
