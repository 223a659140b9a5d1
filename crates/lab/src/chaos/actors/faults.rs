//! The fault controller: Google fault plans on and off, and sync-token
//! invalidations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::shared::*;
use crate::chaos::rng::Rng;

const FAULT_KINDS: &[&str] = &[
    "503",
    "500",
    "429",
    "403 rateLimitExceeded",
    "403 userRateLimitExceeded",
    "403 requiredAccessLevel",
    "latency",
    "drop",
    "applyThenDrop",
    "sync-token invalidation",
    "mixed",
];
const FAULT_OPS: &[&str] = &["list", "get", "insert", "patch", "delete"];
/// The calls a reader may not make: a read-only spell refuses only writes.
const WRITE_OPS: &[&str] = &["insert", "patch", "delete"];

pub(super) fn fault(kind: &str, rng: &mut Rng) -> Value {
    match kind {
        "500" => json!({ "status": 500 }),
        "429" => json!({ "status": 429, "retryAfter": rng.range(1, 3) }),
        "403 rateLimitExceeded" => json!({ "status": 403, "reason": "rateLimitExceeded" }),
        "403 userRateLimitExceeded" => {
            json!({ "status": 403, "reason": "userRateLimitExceeded" })
        }
        // The calendar turned read-only for a while (someone changed its
        // sharing): writes must wait for access, never be dead-lettered.
        "403 requiredAccessLevel" => json!({ "status": 403, "reason": "requiredAccessLevel" }),
        "drop" => json!({ "drop": true }),
        "applyThenDrop" => json!({ "applyThenDrop": true }),
        _ => json!({ "status": 503 }),
    }
}

pub(super) fn fault_plan(kind: &str, rng: &mut Rng) -> Value {
    match kind {
        "latency" => json!({ "latencyMs": rng.range(100, 1200) }),
        "mixed" => {
            let random: Vec<Value> = [
                "503",
                "429",
                "drop",
                "applyThenDrop",
                "403 rateLimitExceeded",
            ]
            .iter()
            .map(|k| fault(k, rng))
            .collect();
            json!({ "probability": 0.25, "random": random, "latencyMs": rng.range(0, 300) })
        }
        "403 requiredAccessLevel" => {
            let mut scheduled = fault(kind, rng);
            scheduled["count"] = json!(rng.range(1, 6));
            scheduled["op"] = json!(rng.pick(WRITE_OPS).copied().unwrap_or("patch"));
            json!({ "schedule": [scheduled] })
        }
        _ if rng.chance(0.5) => {
            let mut scheduled = fault(kind, rng);
            scheduled["count"] = json!(rng.range(1, 5));
            if let Some(op) = rng.pick(FAULT_OPS).filter(|_| rng.chance(0.7)) {
                scheduled["op"] = json!(op);
            }
            json!({ "schedule": [scheduled] })
        }
        _ => {
            let probability = rng.range(10, 40) as f64 / 100.0;
            json!({ "probability": probability, "random": [fault(kind, rng)] })
        }
    }
}

pub(super) async fn fault_pause(shared: &Shared, millis: u64) {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until && !shared.faults_stopped() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets a fault plan of a random kind for a few seconds, clears it for a
/// few, and so on; sometimes invalidates every sync token instead.
pub async fn faults(shared: Arc<Shared>, mut rng: Rng) {
    // Kinds are dealt from a shuffled deck, so every kind fires once before
    // any fires twice: a short run still meets each of them.
    let mut deck: Vec<&str> = Vec::new();
    while !shared.faults_stopped() {
        if deck.is_empty() {
            deck = FAULT_KINDS.to_vec();
        }
        let index = rng.range(0, deck.len() as u64) as usize;
        let kind = deck.swap_remove(index);
        if kind == "sync-token invalidation" {
            if let Ok(reply) = shared.admin("POST", "/sync-tokens/invalidate", None).await
                && reply.status < 300
            {
                shared.count("fault sync-token invalidation");
                shared.mark("sync tokens invalidated".into());
            }
        } else {
            let plan = fault_plan(kind, &mut rng);
            match shared.admin("PUT", "/faults", Some(&plan)).await {
                Ok(reply) if reply.status < 300 => {
                    shared.count(&format!("fault {kind}"));
                    shared.mark(format!("faults: {plan}"));
                }
                Ok(reply) => shared.mark(format!("fault plan {plan} refused: {}", reply.brief())),
                Err(error) => shared.mark(format!("fault plan {plan} not set: {error}")),
            }
        }
        fault_pause(&shared, rng.range(1500, 5000)).await;
        let _ = shared.admin("DELETE", "/faults", None).await;
        fault_pause(&shared, rng.range(500, 3000)).await;
    }
    let _ = shared.admin("DELETE", "/faults", None).await;
}
