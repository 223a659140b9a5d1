//! The overview's charts: the last hour's activity as stacked bars per
//! minute, drawn as inline SVG on the server, with per-outcome totals as
//! text beside each so the figures can be checked.

use calsync_resilience::metrics::{ActivityKind, ActivityMinute};
use maud::{Markup, html};

const WIDTH: u32 = 360;
const BAR: u32 = 6;
const PLOT_HEIGHT: u32 = 80;
/// Room above the bars for the peak's label.
const TOP: u32 = 12;
const HEIGHT: u32 = TOP + PLOT_HEIGHT + 14;

/// The chart's name in `data-chart` and its heading.
pub fn name(kind: ActivityKind) -> (&'static str, &'static str) {
    match kind {
        ActivityKind::Syncs => ("syncs", "Syncs"),
        ActivityKind::Pushes => ("pushes", "Pushes to Google"),
        ActivityKind::Deliveries => ("deliveries", "Webhook deliveries"),
    }
}

/// Outcomes listed even when none happened, so a total of 0 is shown as 0.
fn known_outcomes(kind: ActivityKind) -> &'static [&'static str] {
    match kind {
        ActivityKind::Syncs => &["success"],
        ActivityKind::Pushes => &[
            "pushed",
            "retrying",
            "conflict",
            "deleted_at_google",
            "dead_lettered",
        ],
        ActivityKind::Deliveries => &["delivered", "failed", "disabled"],
    }
}

/// The colour class of an outcome: done, will be tried again or lost a
/// race, or failed (syncs' failures are named by their error type).
fn class(outcome: &str) -> &'static str {
    match outcome {
        "success" | "pushed" | "delivered" => "good",
        "retrying" | "conflict" | "deleted_at_google" => "warn",
        _ => "bad",
    }
}

/// Each outcome seen or known, with its total over the hour, known ones first.
pub fn totals(kind: ActivityKind, minutes: &[ActivityMinute]) -> Vec<(&'static str, u64)> {
    let mut totals: Vec<(&'static str, u64)> =
        known_outcomes(kind).iter().map(|o| (*o, 0)).collect();
    for (outcome, count) in minutes.iter().flat_map(|m| m.counts.iter()) {
        match totals.iter_mut().find(|(o, _)| o == outcome) {
            Some((_, total)) => *total += count,
            None => totals.push((outcome, *count)),
        }
    }
    totals
}

fn clock(start: i64) -> String {
    chrono::DateTime::from_timestamp(start, 0)
        .map(|at| at.format("%H:%M").to_string())
        .unwrap_or_default()
}

struct Bar {
    outcome: &'static str,
    x: u32,
    y: u32,
    height: u32,
    label: String,
}

/// One chart: `minutes` is the hour oldest first (60 entries).
pub fn chart(kind: ActivityKind, minutes: &[ActivityMinute]) -> Markup {
    let (name, title) = name(kind);
    let totals = totals(kind, minutes);
    let peak = minutes.iter().map(ActivityMinute::total).max().unwrap_or(0);
    let scale = peak.max(1);
    let order: Vec<&'static str> = totals.iter().map(|(o, _)| *o).collect();
    let first = minutes.first().map(|m| clock(m.start)).unwrap_or_default();
    let last = minutes.last().map(|m| clock(m.start)).unwrap_or_default();
    let sum: u64 = totals.iter().map(|(_, n)| n).sum();
    let mut bars = Vec::new();
    for (i, minute) in minutes.iter().enumerate() {
        let x = u32::try_from(i).unwrap_or(0).saturating_mul(BAR);
        // Stacked from the axis up, outcomes in legend order.
        let mut base = TOP + PLOT_HEIGHT;
        for outcome in &order {
            if let Some((_, count)) = minute.counts.iter().find(|(o, _)| o == outcome) {
                let height = bar_height(*count, scale);
                let y = base.saturating_sub(height);
                base = y;
                bars.push(Bar {
                    outcome,
                    x,
                    y,
                    height,
                    label: format!("{} {outcome}: {count}", clock(minute.start)),
                });
            }
        }
    }
    html! {
        div.chart {
            h3 { (title) }
            svg data-chart=(name) xmlns="http://www.w3.org/2000/svg" role="img"
                viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                aria-label=(format!("{title} per minute over the last hour: {sum} in all, at most {peak} in a minute")) {
                line.axis x1="0" y1=(TOP + PLOT_HEIGHT) x2=(WIDTH) y2=(TOP + PLOT_HEIGHT) {}
                @for bar in &bars {
                    rect class=(class(bar.outcome)) x=(bar.x) y=(bar.y) width=(BAR - 1) height=(bar.height) {
                        title { (bar.label) }
                    }
                }
                text x="0" y=(HEIGHT - 2) { (first) }
                text x=(WIDTH) y=(HEIGHT - 2) text-anchor="end" { (last) }
                text x=(WIDTH) y="9" text-anchor="end" { "max " (peak) "/min" }
            }
            ul.legend {
                @for (outcome, total) in &totals {
                    li {
                        span class=(format!("swatch {}", class(outcome))) {}
                        (outcome) ": "
                        span data-total=(outcome) { (total) }
                    }
                }
            }
        }
    }
}

/// A count's bar height: proportional, and at least a pixel when not 0.
fn bar_height(count: u64, scale: u64) -> u32 {
    let height = count.saturating_mul(u64::from(PLOT_HEIGHT)) / scale.max(1);
    u32::try_from(height.clamp(1, u64::from(PLOT_HEIGHT))).unwrap_or(PLOT_HEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(recent: &[(&'static str, u64)]) -> Vec<ActivityMinute> {
        let mut minutes: Vec<ActivityMinute> = (0..60)
            .map(|i| ActivityMinute {
                start: 1_800_000_000 + i * 60,
                counts: Vec::new(),
            })
            .collect();
        minutes[59].counts = recent.to_vec();
        minutes[10].counts = vec![("pushed", 1)];
        minutes
    }

    #[test]
    fn totals_list_known_outcomes_and_the_ones_seen() {
        let minutes = hour(&[("pushed", 3), ("weird", 2)]);
        let totals = totals(ActivityKind::Pushes, &minutes);
        assert_eq!(totals[0], ("pushed", 4));
        assert!(totals.contains(&("dead_lettered", 0)));
        assert_eq!(totals.last(), Some(&("weird", 2)));
    }

    #[test]
    fn the_chart_stacks_bars_and_shows_totals() {
        let minutes = hour(&[("pushed", 3), ("dead_lettered", 1)]);
        let svg = chart(ActivityKind::Pushes, &minutes).into_string();
        assert!(svg.contains(r#"<svg data-chart="pushes""#), "{svg}");
        assert!(
            svg.contains(r#"<span data-total="pushed">4</span>"#),
            "{svg}"
        );
        assert!(svg.contains(r#"<span data-total="dead_lettered">1</span>"#));
        assert!(svg.contains(r#"<span data-total="retrying">0</span>"#));
        // The last minute: 3 pushed from the axis up (60 of 80 px at a peak of
        // 4), the dead letter on top of it (20 px).
        assert!(
            svg.contains(r#"<rect class="good" x="354" y="32" width="5" height="60">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="bad" x="354" y="12" width="5" height="20">"#),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(bar_height(1, 1000), 1, "a count is never invisible");
    }
}
