//! The battery's report: the figures of a run and every finding, and the
//! verdict.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::actors::{Shared, lock};
use super::check::feed::FeedVerdict;
use super::check::{self, Diff, Snapshot, WriteVerdict};
use super::feed::CatchUp;
use super::receiver::{Receiver, ReceiverFigures};

/// Lines of each kind of finding printed (all are counted).
const SHOWN: usize = 15;

/// What a backend's run measured, for [`report`].
pub(super) struct Figures {
    pub(super) chaos_secs: f64,
    pub(super) kills: u32,
    pub(super) starts: u32,
    pub(super) converged: Option<Duration>,
    pub(super) limit: Duration,
    pub(super) last: Option<(Snapshot, Diff, WriteVerdict)>,
    pub(super) stats: Option<Value>,
    pub(super) feed: FeedFigures,
    /// Why the grants' end state is wrong, if it is.
    pub(super) grants: Result<(), String>,
    pub(super) logs: check::LogVerdict,
    pub(super) server_log: PathBuf,
}

/// The change feed and the webhook receiver, at the end of a run.
pub(super) struct FeedFigures {
    /// `None` when the feed or the mirror could not be read (`error` says why).
    pub(super) verdict: Option<FeedVerdict>,
    pub(super) error: Option<String>,
    pub(super) receiver: ReceiverFigures,
    pub(super) catch_up: Option<CatchUp>,
}

impl FeedFigures {
    pub(super) fn failed(error: String, receiver: &Receiver) -> Self {
        Self {
            verdict: None,
            error: Some(error),
            receiver: receiver.figures(),
            catch_up: None,
        }
    }
}

fn show(tag: &str, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("{tag}: {title} ({}):", lines.len());
    for line in lines.iter().take(SHOWN) {
        println!("{tag}:   {line}");
    }
    if lines.len() > SHOWN {
        println!("{tag}:   ... and {} more", lines.len() - SHOWN);
    }
}

fn count_of(counts: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    counts.get(key).copied().unwrap_or(0)
}

/// Prints the figures and every finding; true when the run passed.
pub(super) fn report(tag: &str, shared: &Shared, figures: Figures) -> bool {
    let counts = shared.counts();
    let c = |key: &str| count_of(&counts, key);
    println!(
        "{tag}: chaos {:.0} s: kills={} server starts={} exits by itself={} restart-to-ready max={:.1} s",
        figures.chaos_secs,
        figures.kills,
        figures.starts,
        c("server_exited_by_itself"),
        lock(&shared.restarts)
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
    );
    println!(
        "{tag}: acknowledged API writes: create={} (replayed for their key={}) patch={} (with If-Match={}, 412={}) delete={}; unanswered: create={} patch={} delete={}; refused: patch={} delete={}",
        c("api_create"),
        c("api_create_replayed"),
        c("api_patch"),
        c("api_patch_conditional"),
        c("api_patch_conflict"),
        c("api_delete"),
        c("api_create_unanswered"),
        c("api_patch_unanswered"),
        c("api_delete_unanswered"),
        c("api_patch_refused"),
        c("api_delete_refused"),
    );
    println!(
        "{tag}: changes in Google: insert={} patch={} delete={} on calsync's events: patch={} delete={}; emulator random-change batches={}; odd answers={}",
        c("remote_insert"),
        c("remote_patch"),
        c("remote_delete"),
        c("remote_contest_patch"),
        c("remote_contest_delete"),
        c("remote_admin_changes"),
        c("remote_unexpected"),
    );
    // Revocations calsync noticed: its feed's `grant.reconnect_required`
    // changes (unknown when the feed could not be read, itself a failure).
    let noticed = figures.feed.verdict.as_ref().map(|v| {
        v.by_type
            .get("grant.reconnect_required")
            .copied()
            .unwrap_or(0)
    });
    println!(
        "{tag}: grants: accounts={} revoked in Google={} connected again={} (flows started over after a kill={}) revocations calsync noticed={}",
        shared.accounts.len(),
        c("grant_revoked"),
        c("grant_reconnected"),
        c("grant_connect_restarted"),
        noticed.map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
    );
    let plans: Vec<String> = counts
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("fault ").map(|kind| format!("{kind}={v}")))
        .collect();
    println!("{tag}: fault plans set: {}", plans.join(", "));
    let stats = figures.stats.unwrap_or(Value::Null);
    match stats.get("faultsFired").and_then(Value::as_object) {
        Some(fired) => {
            let fired: Vec<String> = fired.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("{tag}: faults fired (emulator): {}", fired.join(", "));
        }
        None => println!("{tag}: faults fired: the emulator does not report them"),
    }
    println!(
        "{tag}: emulator calls: {}; notifications delivered={} failed={}",
        stats["calls"], stats["notificationsDelivered"], stats["notificationsFailed"]
    );
    println!(
        "{tag}: server: unreachable attempts (killed)={} 5xx={}",
        c("server_unreachable"),
        c("server_5xx")
    );
    let gaps = lock(&shared.gaps).clone();
    println!(
        "{tag}: sync gap after a restart (remote change to mirror): max={:.1} s over {} probes; unseen={} not made={}",
        gaps.iter().max().copied().unwrap_or_default().as_secs_f64(),
        gaps.len(),
        c("probe_unseen"),
        c("probe_not_made"),
    );

    let mut passed = true;
    if let Err(error) = &figures.grants {
        println!("{tag}: FAIL: grants: {error}");
        passed = false;
    }
    // A revoked account is written to within a second, so calsync meets
    // the dead tokens at once; several revocations all unnoticed mean it
    // never marked a grant.
    if noticed == Some(0) && c("grant_revoked") >= 3 {
        println!(
            "{tag}: FAIL: grants: {} revocations and calsync noticed none",
            c("grant_revoked")
        );
        passed = false;
    }
    let mut divergent: Vec<String> = Vec::new();
    match &figures.last {
        None => {
            println!("{tag}: FAIL: the mirror could not be read after the chaos");
            passed = false;
        }
        Some((snapshot, diff, verdict)) => {
            match figures.converged {
                Some(after) => println!(
                    "{tag}: converged {:.1} s after the chaos stopped",
                    after.as_secs_f64()
                ),
                None => {
                    println!(
                        "{tag}: FAIL: not converged {} s after the chaos stopped",
                        figures.limit.as_secs()
                    );
                    passed = false;
                }
            }
            println!(
                "{tag}: compared {} events (mirror {}, Google {}): missing={} extra={} mismatched={} duplicated={} pending pushes={} failed pushes={}",
                diff.compared,
                snapshot.mirror.len(),
                snapshot.truth.len(),
                diff.missing.len(),
                diff.extra.len(),
                diff.mismatched.len(),
                diff.duplicated.len(),
                diff.pending,
                diff.push_failed.len()
            );
            println!(
                "{tag}: acknowledged creates checked={}: lost or stale={} duplicated={} refused={}",
                verdict.checked,
                verdict.lost.len(),
                verdict.duplicated.len(),
                verdict.refused.len()
            );
            show(tag, "missing from the mirror", &diff.missing);
            show(tag, "in the mirror, not at Google", &diff.extra);
            show(tag, "mismatched", &diff.mismatched);
            show(tag, "duplicated in the mirror", &diff.duplicated);
            let dead_lettered: Vec<String> = {
                let model = lock(&shared.model);
                diff.push_failed
                    .iter()
                    .map(|id| {
                        let who = match model.api.get(id) {
                            Some(event) if event.contested => "also changed in Google",
                            Some(_) => "written by calsync only",
                            None => "not created through the API",
                        };
                        let history = model
                            .history
                            .get(id)
                            .map(|h| h.join(" | "))
                            .unwrap_or_default();
                        format!("{id} ({who}): {history}")
                    })
                    .collect()
            };
            show(tag, "pushes dead-lettered", &dead_lettered);
            show(tag, "acknowledged writes lost or stale", &verdict.lost);
            show(
                tag,
                "duplicated at Google or in the mirror",
                &verdict.duplicated,
            );
            show(
                tag,
                "API writes refused on events nobody else touched",
                &verdict.refused,
            );
            passed &= diff.clean() && verdict.clean();
            divergent.extend(diff.ids.iter().cloned());
            divergent.extend(verdict.ids.iter().cloned());
        }
    }
    passed &= report_feed(tag, &figures.feed);
    let failures = lock(&shared.failures).clone();
    show(tag, "failures during the run", &failures);
    passed &= failures.is_empty();
    println!(
        "{tag}: logs: {} lines scanned ({}): panics={} leaks={}",
        figures.logs.lines,
        figures.server_log.display(),
        figures.logs.panics.len(),
        figures.logs.leaks.len()
    );
    show(tag, "panics", &figures.logs.panics);
    show(tag, "leaks", &figures.logs.leaks);
    passed &= figures.logs.panics.is_empty() && figures.logs.leaks.is_empty();

    if !passed {
        divergent.sort();
        divergent.dedup();
        let model = lock(&shared.model);
        for id in divergent.iter().take(SHOWN) {
            println!("{tag}: history of {id}:");
            for line in model.history.get(id).into_iter().flatten() {
                println!("{tag}:   {line}");
            }
        }
        drop(model);
        let timeline = lock(&shared.timeline).clone();
        println!("{tag}: timeline (kills, faults):");
        for line in &timeline {
            println!("{tag}:   {line}");
        }
    }
    if !passed {
        println!(
            "{tag}: the final mirror and Google are in final-state.json beside {}",
            figures.server_log.display()
        );
    }
    println!("{tag}: {}", if passed { "PASS" } else { "FAIL" });
    passed
}

/// The feed's and the receiver's lines; true when the feed checks passed.
fn report_feed(tag: &str, figures: &FeedFigures) -> bool {
    let r = &figures.receiver;
    println!(
        "{tag}: webhook receiver misbehaved: refusals={} timeouts={} outages={} ({:.1} s refusing connections){}",
        r.refusals,
        r.stalls,
        r.outages,
        r.outage.as_secs_f64(),
        r.outage_skipped
            .as_ref()
            .map(|why| format!("; no outage: {why}"))
            .unwrap_or_default()
    );
    let mut passed = true;
    if let Some(catch_up) = &figures.catch_up {
        match catch_up.after {
            Some(after) => println!(
                "{tag}: webhook delivery caught up {:.1} s after the mirror converged",
                after.as_secs_f64()
            ),
            None => {
                println!(
                    "{tag}: FAIL: webhook delivery not caught up {:.0} s after the mirror converged; the subscription: {}",
                    catch_up.limit.as_secs_f64(),
                    catch_up.state
                );
                passed = false;
            }
        }
    }
    let Some(v) = &figures.verdict else {
        println!(
            "{tag}: FAIL: the feed could not be checked: {}",
            figures.error.as_deref().unwrap_or("no reason given")
        );
        return false;
    };
    let types: Vec<String> = v.by_type.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!(
        "{tag}: feed: changes={} ({}); malformed={}",
        v.changes,
        types.join(" "),
        v.malformed.len()
    );
    println!(
        "{tag}: feed vs mirror: events={} without a change={} last change differs={}; replay: entities={} rebuilt wrong={}",
        v.events,
        v.missing.len(),
        v.stale.len(),
        v.entities,
        v.rebuilt_wrong.len()
    );
    println!(
        "{tag}: webhook deliveries: changes due={} delivered={} undelivered={}; received={} accepted={} duplicates={} out of order={} bad signatures={} wrong bodies={}",
        v.due,
        v.delivered,
        v.undelivered.len(),
        v.received,
        v.accepted,
        v.duplicates,
        v.out_of_order.len(),
        v.bad_signatures.len(),
        v.wrong_body.len()
    );
    println!(
        "{tag}: webhook delivery lag (occurredAt to first accepted): p50={:.2} s p99={:.2} s max={:.2} s; longest pause between deliveries={:.1} s",
        v.lag(0.5).as_secs_f64(),
        v.lag(0.99).as_secs_f64(),
        v.lag(1.0).as_secs_f64(),
        v.longest_pause.as_secs_f64()
    );
    show(tag, "feed malformed", &v.malformed);
    show(
        tag,
        "mirror events without a change in the feed",
        &v.missing,
    );
    show(tag, "mirror events unlike their last change", &v.stale);
    show(tag, "entities the replay rebuilds wrong", &v.rebuilt_wrong);
    show(
        tag,
        "changes never accepted by the receiver",
        &v.undelivered,
    );
    show(
        tag,
        "changes first received out of cursor order",
        &v.out_of_order,
    );
    show(tag, "deliveries with a bad signature", &v.bad_signatures);
    show(tag, "deliveries unlike the feed's change", &v.wrong_body);
    passed && v.clean()
}
