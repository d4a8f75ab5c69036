//! A range over the timeline's fixed history (see `timeline_tests`): days 2 to 4, starting from
//! the end of day 1. Hand-computed figures in the comments.

use super::super::timeline::tests as history;
use super::*;

fn figures() -> Vec<DayFigures> {
    history::four_days()
        .into_iter()
        .zip(1..)
        .map(|(subscriptions, d)| DayFigures {
            day: history::day(d),
            subscriptions,
            ..DayFigures::default()
        })
        .collect()
}

#[test]
fn mrr_and_arr_at_the_start_and_end_of_a_range() {
    let f = figures();
    let s = summarize(Some(&f[0]), &f[1..]);
    assert_eq!(s.mrr_start["usd"], 50_998);
    assert_eq!(s.mrr_end["usd"], 19_149);
    assert_eq!(arr(s.mrr_end["usd"]), 229_788);
}

#[test]
fn movement_over_a_range_adds_the_days() {
    let f = figures();
    let s = summarize(Some(&f[0]), &f[1..]);
    let m = &s.movement["usd"];
    // new: A 9,900 + E 8,250; churned: D 9,900 + C 9,900.
    assert_eq!(
        (m.new, m.expansion, m.contraction, m.churned, m.reactivated),
        (18_150, 8_901, 40_099, 19_800, 999)
    );
    assert_eq!(s.mrr_start["usd"] + m.net(), s.mrr_end["usd"]);
}

#[test]
fn trial_conversion_is_converted_of_the_trials_that_ended() {
    let f = figures();
    let s = summarize(Some(&f[0]), &f[1..]);
    assert_eq!(
        (s.trials.started, s.trials.converted, s.trials.expired),
        (0, 1, 1)
    );
    assert_eq!(s.conversion.map(|r| r.percent()), Some("50.0%".into()));
    // Day 1 alone: two trials started, none ended yet: no rate.
    assert_eq!(summarize(None, &f[..1]).conversion, None);
}

#[test]
fn logo_churn_is_customers_lost_of_those_paying_at_the_start() {
    let f = figures();
    // Paying at the end of day 1: C and D. Lost in days 2-4: D (day 3) and C (day 4). D came
    // back, but churn counts who left.
    let s = summarize(Some(&f[0]), &f[1..]);
    assert_eq!(s.logo_churn, Ratio::new(2, 2));
    assert_eq!(s.logo_churn.map(|r| r.percent()), Some("100.0%".into()));
    // Day 3 alone, from day 2's three payers: one lost, 33.3%.
    let s = summarize(Some(&f[1]), &f[2..3]);
    assert_eq!(s.logo_churn.map(|r| r.percent()), Some("33.3%".into()));
    // No payers at the start: no rate.
    assert_eq!(summarize(None, &f).logo_churn, None);
}

#[test]
fn revenue_churn_is_churned_and_contraction_of_the_starting_mrr() {
    let f = figures();
    let s = summarize(Some(&f[0]), &f[1..]);
    // (19,800 + 40,099) / 50,998 = 117.45%.
    assert_eq!(s.revenue_churn["usd"], Ratio::new(59_899, 50_998));
    assert_eq!(
        s.revenue_churn["usd"].map(|r| r.percent()),
        Some("117.5%".into())
    );
    // Day 3 from day 2: 9,900 / 29,700 = 33.3%.
    let s = summarize(Some(&f[1]), &f[2..3]);
    assert_eq!(
        s.revenue_churn["usd"].map(|r| r.percent()),
        Some("33.3%".into())
    );
}

#[test]
fn webhook_success_rate_and_worst_median_over_a_range() {
    let mut f = figures();
    f[1].webhooks = Webhooks {
        received: 10,
        applied: 9,
        failed: 1,
        pending: 0,
        median_lag_seconds: Some(2),
    };
    f[2].webhooks = Webhooks {
        received: 6,
        applied: 6,
        failed: 0,
        pending: 0,
        median_lag_seconds: Some(40),
    };
    let s = summarize(Some(&f[0]), &f[1..]);
    assert_eq!(
        (s.webhooks.received, s.webhooks.applied, s.webhooks.failed),
        (16, 15, 1)
    );
    // 15 of 16 settled: 93.75% shows as 93.8%.
    assert_eq!(
        s.webhooks.success.map(|r| r.percent()),
        Some("93.8%".into())
    );
    assert_eq!(s.webhooks.worst_median_lag_seconds, Some(40));
}

#[test]
fn a_snapshot_reads_back_what_was_stored_and_tolerates_missing_fields() {
    let f = figures();
    let json = serde_json::to_value(&f[3]).expect("json");
    let back: DayFigures = serde_json::from_value(json).expect("back");
    assert_eq!(back, f[3]);
    let old: DayFigures = serde_json::from_str(r#"{"day": "2026-12-04"}"#).expect("old");
    assert_eq!(old.subscriptions, SubscriptionDay::default());
}
