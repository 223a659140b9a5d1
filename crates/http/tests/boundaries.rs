//! The routes speak to the domain's services only: no module under
//! `src/` names a store port (the domain's `*Store` traits) or reaches
//! for `state.store` (`AppState` has no store: it is built from the
//! service graph alone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::path::{Path, PathBuf};

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The store ports, read from the domain's `ports.rs`: every trait whose
/// name ends in `Store`, so a port added later is covered too.
fn store_ports() -> Vec<String> {
    let ports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/src/ports.rs");
    let text = std::fs::read_to_string(&ports).unwrap();
    let names: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub trait "))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.ends_with("Store"))
        .collect();
    assert!(
        names.iter().any(|n| n == "Store") && names.iter().any(|n| n == "EventStore"),
        "found no store ports in {}: {names:?}",
        ports.display()
    );
    names
}

/// What `source` names that it should not: store ports (as identifiers,
/// comments aside) and `state.store`.
fn trespasses(source: &str, ports: &[String]) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found: Vec<String> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| ports.iter().any(|port| port == word))
        .map(str::to_owned)
        .collect();
    let compact: String = code.split_whitespace().collect();
    if compact.contains("state.store") {
        found.push("state.store".into());
    }
    found
}

#[test]
fn the_check_sees_a_store_port_and_the_store_field() {
    let ports = store_ports();
    assert_eq!(
        trespasses("use calsync_domain::ports::{EventStore, Clock};", &ports),
        ["EventStore"]
    );
    assert_eq!(
        trespasses("let e = state\n    .store\n    .get_event(id);", &ports),
        ["state.store"]
    );
    assert!(trespasses("// the Store, in prose\nStoreUnavailable", &ports).is_empty());
}

#[test]
fn no_route_module_names_a_store_port_or_the_store_field() {
    let ports = store_ports();
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "{files:?}");
    let mut offences = Vec::new();
    for file in files {
        let found = trespasses(&std::fs::read_to_string(&file).unwrap(), &ports);
        if !found.is_empty() {
            offences.push(format!("{}: {found:?}", file.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "routes reach past the services to the store:\n{}",
        offences.join("\n")
    );
}
