// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use kho_meta::AdminUnitStore;
use kho_meta_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_passes_the_store_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    kho_meta::story::run(&store).await;
}

#[tokio::test]
async fn admin_units_load_and_search_without_diacritics() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    let units = kho_refdata::admin_units().unwrap();
    let cw = kho_refdata::crosswalk().unwrap();
    store.load_admin_units(&units, &cw).await.unwrap();
    assert_eq!(store.admin_unit_count().await.unwrap(), units.len() as i64);
    let f = kho_meta::AdminUnitFilter {
        era: Some(kho_core::model::AdminEra::Current),
        q: Some("ha noi".into()),
        limit: 10,
        ..Default::default()
    };
    let (found, _) = store.list_admin_units(&f).await.unwrap();
    assert!(found.iter().any(|u| u.full_name == "Thành phố Hà Nội"));
    let old = store.crosswalk_from("00001").await.unwrap();
    assert_eq!(old[0].new_code, "00097");
    let all = store.crosswalk_all().await.unwrap();
    assert_eq!(all.len(), cw.len());
}

#[tokio::test]
async fn concurrent_writers_keep_one_audit_chain_and_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    kho_meta::story::run_concurrent(&store, &store).await;
}

#[tokio::test]
async fn two_stores_on_one_file_keep_one_audit_chain() {
    // As a server and a command run beside it: each has its own connections and lock, and the
    // database's write lock orders their appends.
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    let second = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    kho_meta::story::run_concurrent(&first, &second).await;
}

#[tokio::test]
async fn leases_hold_across_two_openings_of_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    let second = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    kho_meta::story::run_leases(&first, &second).await;
}

#[tokio::test]
async fn a_dump_loads_into_an_empty_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    let target = SqliteStore::open(&dir.path().join("copy.db")).await.unwrap();
    kho_meta::story::run_dump(&source, &target).await;
}
