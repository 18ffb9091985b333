//! The metadata store story on a real PostgreSQL server, started for these tests.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use kho_meta::AdminUnitStore;
use kho_meta_postgres::PgStore;
use kho_meta_postgres::testing::TempPostgres;

/// One server for this test binary, one fresh database per test.
fn server() -> &'static TempPostgres {
    static SERVER: OnceLock<TempPostgres> = OnceLock::new();
    SERVER.get_or_init(TempPostgres::start)
}

#[tokio::test]
async fn postgres_passes_the_store_story() {
    let url = server().database().await;
    let store = PgStore::connect(&url, 4).await.unwrap();
    kho_meta::story::run(&store).await;
}

#[tokio::test]
async fn many_connections_keep_one_audit_chain_and_one_version() {
    let url = server().database().await;
    let store = PgStore::connect(&url, 16).await.unwrap();
    kho_meta::story::run_concurrent(&store, &store).await;
}

#[tokio::test]
async fn two_nodes_on_one_database_keep_one_audit_chain_and_one_version() {
    let url = server().database().await;
    let first = PgStore::connect(&url, 8).await.unwrap();
    // The second node migrates the same database again: nothing to do, nothing broken.
    let second = PgStore::connect(&url, 8).await.unwrap();
    kho_meta::story::run_concurrent(&first, &second).await;
}

#[tokio::test]
async fn admin_units_load_and_search_without_diacritics() {
    let url = server().database().await;
    let store = PgStore::connect(&url, 4).await.unwrap();
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
    let (found, total) = store.list_admin_units(&f).await.unwrap();
    assert!(found.iter().any(|u| u.full_name == "Thành phố Hà Nội"), "{found:?}");
    assert!(total >= found.len() as i64);
    assert_eq!(store.crosswalk_from("00001").await.unwrap()[0].new_code, "00097");
    assert_eq!(store.crosswalk_all().await.unwrap().len(), cw.len());
}

#[tokio::test]
async fn the_database_refuses_to_change_the_audit_log_or_a_version() {
    let url = server().database().await;
    let store = PgStore::connect(&url, 2).await.unwrap();
    kho_meta::story::run(&store).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for statement in [
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "UPDATE resource_versions SET rows = 0",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
}

#[tokio::test]
async fn leases_hold_across_two_nodes_on_one_database() {
    let url = server().database().await;
    let first = PgStore::connect(&url, 4).await.unwrap();
    let second = PgStore::connect(&url, 4).await.unwrap();
    kho_meta::story::run_leases(&first, &second).await;
}

#[tokio::test]
async fn a_dump_loads_into_an_empty_store_unchanged() {
    let source = PgStore::connect(&server().database().await, 4).await.unwrap();
    let target = PgStore::connect(&server().database().await, 4).await.unwrap();
    kho_meta::story::run_dump(&source, &target).await;
}
