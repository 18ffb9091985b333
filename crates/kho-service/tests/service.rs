// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kho_core::ErrorCode;
use kho_core::model::{AccessLevel, DatasetInput, Frequency, ResourceInput};
use kho_meta_sqlite::SqliteStore;
use kho_service::users::NewToken;
use kho_service::{Ctx, Kho, ServiceConfig};

async fn kho() -> (Kho, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kho.db")).await.unwrap();
    let blobs = kho_storage::BlobStore::local(&dir.path().join("objects")).unwrap();
    let config = ServiceConfig { upload_dir: dir.path().join("uploads"), ..Default::default() };
    let kho = Kho::new(Arc::new(store), blobs, config).unwrap();
    (kho, dir)
}

#[tokio::test]
async fn first_start_demo_sign_in_tokens_and_schemas() {
    let (kho, _dir) = kho().await;
    let report = kho.init(Some("admin-password-1")).await.unwrap();
    assert!(report.admin_units_loaded);
    // Sơn La: committee, data center and its 75 communes.
    assert_eq!(report.agencies_created, 77);
    assert_eq!(report.first_admin.as_ref().unwrap().0, "admin");
    // A second start changes nothing.
    let again = kho.init(None).await.unwrap();
    assert!(again.first_admin.is_none() && again.agencies_created == 0 && !again.admin_units_loaded);

    let creds = kho.load_demo().await.unwrap();
    assert_eq!(creds.len(), 4);
    assert!(kho.load_demo().await.unwrap().is_empty());

    let ip = Some("192.0.2.1".to_string());
    let anon = Ctx::anonymous(ip.clone());
    let wrong = kho.sign_in(&anon, "admin", "nope").await.unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidCredentials);
    let unknown = kho.sign_in(&anon, "nobody", "nope").await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::InvalidCredentials);
    assert_eq!(unknown.message, wrong.message, "no hint whether the user exists");
    let session = kho.sign_in(&anon, "ADMIN", "admin-password-1").await.unwrap();
    let (principal, csrf) = kho.session_principal(&session.secret).await.unwrap().unwrap();
    assert!(principal.is_admin());
    assert_eq!(csrf, session.csrf_token);

    // Tokens: shown once, resolved by hash, revocable.
    let admin = Ctx { principal, ip: ip.clone(), purpose: None };
    let created = kho
        .create_token(&admin, NewToken { name: "etl".into(), role: None, expires_in_days: Some(30), user_id: None })
        .await
        .unwrap();
    assert!(created.secret.starts_with("kho_"));
    assert!(kho.token_principal(&created.secret).await.unwrap().is_admin());
    kho.revoke_token(&admin, created.token.id).await.unwrap();
    assert_eq!(kho.token_principal(&created.secret).await.unwrap_err().code, ErrorCode::TokenRevoked);
    assert_eq!(kho.token_principal("kho_zz").await.unwrap_err().code, ErrorCode::InvalidToken);

    // Schemas: invalid Table Schema and unknown terms are named precisely.
    let input = DatasetInput {
        slug: "thu-nghiem".into(),
        title: "Thử nghiệm".into(),
        title_en: None,
        description: String::new(),
        description_en: None,
        owner_agency_id: None,
        catalogs: vec![],
        access_level: AccessLevel::Shared,
        allowed_agency_ids: vec![],
        license: None,
        frequency: Frequency::Annual,
        sector: None,
        tags: vec![],
        spatial: Some("00001".into()),
        temporal_start: None,
        temporal_end: None,
        contact_name: None,
        contact_email: None,
        resources: vec![],
    };
    let err = kho.create_dataset(&admin, input.clone(), vec![]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownAdminUnit);
    assert!(err.message.contains("00097"), "{}", err.message);
    let mut input = input;
    input.spatial = Some("14".into());
    let bad = ResourceInput {
        name: "bang".into(),
        title: None,
        description: None,
        schema: serde_json::json!({"fields": [{"name": "a", "type": "text"}]}),
    };
    let err = kho.create_dataset(&admin, input.clone(), vec![bad]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidTableSchema);
    assert_eq!(err.details[0].path, "resources[0].schema.fields[0].type");
    let unknown_term = ResourceInput {
        name: "bang".into(),
        title: None,
        description: None,
        schema: serde_json::json!({"fields": [{"name": "a", "dictionaryTerm": "khong_co"}]}),
    };
    let err = kho.create_dataset(&admin, input.clone(), vec![unknown_term]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownDictionaryTerm);

    // Lockout after repeated failures, with a retry time.
    for _ in 0..5 {
        let _ = kho.sign_in(&anon, "yte.canbo", "wrong-password").await;
    }
    let locked = kho.sign_in(&anon, "yte.canbo", "demo-yte-canbo").await.unwrap_err();
    assert_eq!(locked.code, ErrorCode::TooManyAttempts);
    assert!(locked.retry_after.unwrap() > 0);

    assert!(kho.verify_audit().await.unwrap().broken_at.is_none());
}
