//! The shape kho keeps as it grows: front ends (the command line and server here, the web front
//! end) reach the platform through `kho-service`'s use cases only. A front end that depended on a
//! store, the object storage, an engine (query, search, ingest, DCAT) or any other crate below
//! the service could read or change data around the one policy and the audit log, so the build
//! of such a dependency fails this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The crates a front end may build on: the shared model and the use cases. Other front ends may
/// also be used (the binary serves the web front end).
const ALLOWED: &[&str] = &["kho-core", "kho-service"];

/// Crates that serve people or other systems and must not reach below the service.
const FRONT_ENDS: &[&str] = &["kho", "kho-web"];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/ holds this crate").to_path_buf()
}

/// The workspace's own crates, by package name.
fn workspace_crates() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(crates_dir()).expect("crates/ is readable") {
        let manifest = entry.expect("a crate folder").path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let doc: toml::Table = toml::from_str(&text).expect("a valid Cargo.toml");
            if let Some(name) = doc.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The workspace crates among a manifest's normal and build dependencies that a front end may
/// not use (tests may build fixtures with anything: `[dev-dependencies]` are not checked).
fn forbidden_dependencies(manifest: &str, workspace: &BTreeSet<String>) -> Vec<String> {
    let doc: toml::Table = toml::from_str(manifest).expect("a valid Cargo.toml");
    let mut found = Vec::new();
    let mut sections = vec![doc.get("dependencies"), doc.get("build-dependencies")];
    // Dependencies for one platform only count too.
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for t in targets.values() {
            sections.push(t.get("dependencies"));
        }
    }
    for deps in sections.into_iter().flatten().filter_map(|d| d.as_table()) {
        for (key, spec) in deps {
            // `alias = { package = "real-name", … }` names the crate by `package`.
            let name = spec.get("package").and_then(|p| p.as_str()).unwrap_or(key);
            let allowed = ALLOWED.contains(&name) || FRONT_ENDS.contains(&name);
            if workspace.contains(name) && !allowed {
                found.push(name.to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn front_ends_depend_on_the_service_only() {
    let workspace = workspace_crates();
    assert!(workspace.contains("kho-service") && workspace.contains("kho-web"), "read the workspace: {workspace:?}");
    let mut problems = Vec::new();
    for front in FRONT_ENDS {
        let path = crates_dir().join(front).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).expect("the front end's manifest");
        for dep in forbidden_dependencies(&text, &workspace) {
            problems.push(format!("{front} depends on {dep}: use (or add) a use case in kho-service instead"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_names_a_store_engine_or_storage_dependency() {
    let workspace: BTreeSet<String> =
        ["kho-core", "kho-service", "kho-meta-sqlite", "kho-query", "kho-storage", "kho-web"].map(String::from).into();
    let manifest = r#"
        [package]
        name = "a-front-end"
        [dependencies]
        kho-core.workspace = true
        kho-service.workspace = true
        kho-web.workspace = true
        serde = "1"
        db = { package = "kho-meta-sqlite", path = "../kho-meta-sqlite" }
        [build-dependencies]
        kho-query.workspace = true
        [target.'cfg(unix)'.dependencies]
        kho-storage.workspace = true
        [dev-dependencies]
        kho-query.workspace = true
    "#;
    assert_eq!(forbidden_dependencies(manifest, &workspace), ["kho-meta-sqlite", "kho-query", "kho-storage"]);
}
