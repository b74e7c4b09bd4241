//! The alert rules and the dashboard in deploy/: promtool's checks and unit tests of the
//! rules, the dashboard's JSON, and every metric either one uses, on a real server's
//! /metrics (so a renamed metric fails here, not during an on-call night).

use crate::common;
use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use common::TestServer;
use support::*;

const RULES: &str = "deploy/prometheus/alerts.yaml";
const RULE_TESTS: &str = "deploy/prometheus/alerts_test.yaml";
const DASHBOARD: &str = "deploy/grafana/sessiond.json";

fn repo_file(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {relative}: {error}"))
}

/// Runs `promtool args` in the repository and expects success; false, after saying
/// loudly what was not tested, when promtool is missing (under CI, a failure instead).
fn promtool(args: &[&str]) -> bool {
    let output = match Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool cannot run ({error}): CI needs it to test the alert rules \
                 (.ci/run installs Debian's prometheus package)"
            );
            eprintln!(
                "\n*** SKIPPED `promtool {}`: promtool is not installed, so the alert \
                 rules were NOT tested. Install it (Debian: apt-get install prometheus). ***\n",
                args.join(" ")
            );
            return false;
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{said}");
    eprintln!("{said}");
    true
}

#[test]
fn alert_rules_are_valid_prometheus_rules() {
    promtool(&["check", "rules", RULES]);
}

#[test]
fn each_alert_fires_on_its_series_and_not_on_the_others() {
    promtool(&["test", "rules", RULE_TESTS]);
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_links_its_runbook_in_the_operations_docs() {
    let rules = repo_file(RULES);
    let docs = repo_file("docs/operations.md");
    let anchors: BTreeSet<String> = docs
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect();
    let alerts = rules.matches("- alert: ").count();
    let links: Vec<&str> = rules
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("runbook_url: \"docs/operations.md#")
        })
        .map(|rest| rest.trim_end_matches('"'))
        .collect();
    assert_eq!(links.len(), alerts, "one runbook_url per alert");
    for link in links {
        assert!(
            anchors.contains(link),
            "no heading in docs/operations.md for #{link}"
        );
    }
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut all = Vec::new();
    let mut todo: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = todo.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            todo.extend(nested);
        }
        all.push(panel);
    }
    all
}

#[test]
fn dashboard_is_json_with_the_datasource_as_a_variable() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file(DASHBOARD)).expect("the dashboard is valid JSON");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables
            .iter()
            .any(|variable| variable["name"] == "datasource"
                && variable["type"] == "datasource"
                && variable["query"] == "prometheus"),
        "a `datasource` variable of type prometheus"
    );
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in panels(&dashboard) {
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {id} queries the chosen datasource"
        );
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "panel {id}");
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                expr.contains("sessiond_"),
                "panel {id} queries sessiond: {expr}"
            );
            queries += 1;
        }
    }
    assert!(queries >= 10, "{queries} queries");
}

/// Every `sessiond_…` metric name in `text` (rule expressions, dashboard queries; names
/// in descriptions count too, which only makes the check stricter).
fn metric_names(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("sessiond_") {
        if text[..at].chars().next_back().is_some_and(word) {
            continue;
        }
        let name: String = text[at..].chars().take_while(|c| word(*c)).collect();
        names.insert(name);
    }
    names
}

/// Every `quantile="…"` label value in `text`.
fn quantiles(text: &str) -> BTreeSet<String> {
    text.split("quantile=")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start_matches('\\').strip_prefix('"')?;
            let value = rest.split(['"', '\\']).next()?;
            Some(value.to_owned())
        })
        .collect()
}

/// The metric families of a scrape, by name, with their type.
fn families(scrape: &str) -> HashMap<&str, &str> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect()
}

/// Whether `name` is exported: a family itself, or the `_sum`/`_count` (and `_bucket`)
/// series of a summary or histogram family.
fn exported(name: &str, families: &HashMap<&str, &str>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    ["_sum", "_count", "_bucket"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|family| families.get(family))
            .is_some_and(|kind| match *suffix {
                "_bucket" => *kind == "histogram",
                _ => *kind == "summary" || *kind == "histogram",
            })
    })
}

on_backends!(every_metric_the_rules_and_dashboard_use_is_exported: sled);
async fn every_metric_the_rules_and_dashboard_use_is_exported() {
    // One Start per user per hour, refused at once: the second Start of a user counts a
    // quota refusal. No grace window, so a reused refresh token is detected at once.
    let test = TestServer::with_config(
        r#"metrics_listen = "127.0.0.1:0"
[quotas]
start_per_user = { calls = 1, per = "1h" }
refusal_hold_limit = "0s"
[groups.default]
refresh_grace = "0s"
"#,
    )
    .await;
    let addr = test.running().metrics_addr().expect("metrics port on");
    let mut client = test.client().await;

    let mut events = watch_ok(&mut client, None, "").await;
    expect_caught_up(&mut events).await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    assert_code(
        client.start(start_request("alice")).await,
        tonic::Code::ResourceExhausted,
    );
    whoami_ok(&mut client, &started.session_token).await;
    test.advance(secs(300));
    extend_ok(&mut client, &session_of(&started.session).session_id).await;
    refresh_ok(&mut client, &started.refresh_token).await;
    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        tonic::Code::Unauthenticated,
    );
    next_event(&mut events).await;
    test.running().sweep_now().await.expect("sweep runs");

    let scrape = scrape_metrics(addr).await;
    let families = families(&scrape);
    let rules = repo_file(RULES);
    let dashboard = repo_file(DASHBOARD);
    let used: BTreeSet<String> = metric_names(&rules)
        .into_iter()
        .chain(metric_names(&dashboard))
        .collect();
    assert!(used.len() >= 15, "{used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exported(name, &families))
        .collect();
    assert!(
        missing.is_empty(),
        "used by {RULES} or {DASHBOARD} but not on /metrics: {missing:?}\n{scrape}"
    );
    for quantile in quantiles(&rules).into_iter().chain(quantiles(&dashboard)) {
        assert!(
            scrape.contains(&format!("quantile=\"{quantile}\"")),
            "quantile {quantile} is not exported\n{scrape}"
        );
    }
}
