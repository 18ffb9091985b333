//! One scenario that every metadata backend must pass. Each backend's test suite calls [`run`]
//! on a fresh, empty store.

// Test code compiled into the library so that every backend crate can run it: a failed unwrap
// is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use kho_core::ErrorCode;
use kho_core::audit::{AuditEvent, ChainVerifier};
use kho_core::model::*;
use time::OffsetDateTime;

use crate::*;

/// A department at the top of the tree.
fn department(code: &str, name: &str) -> NewAgency {
    NewAgency {
        code: code.into(),
        name: name.into(),
        name_en: None,
        kind: AgencyKind::Department,
        parent_id: None,
        admin_unit_code: None,
    }
}

fn ev(action: &str) -> AuditEvent {
    AuditEvent::new("story", action, "test", "")
}

/// The `n`th id of the story: kho's ids of datasets, tables and uploads are UUIDs, and a backend
/// may store them as such.
pub fn uid(n: u32) -> String {
    format!("00000000-0000-7000-8000-{n:012}")
}

/// A dataset with one table; its id is `uid(n)`, its table's `uid(100 + n)`.
fn dataset(n: u32, slug: &str, owner: i64, level: AccessLevel, allowed: Vec<i64>) -> Dataset {
    let now = OffsetDateTime::now_utc();
    let id = uid(n);
    Dataset {
        id: id.clone(),
        input: DatasetInput {
            slug: slug.into(),
            title: format!("Dân số {slug}"),
            title_en: None,
            description: String::new(),
            description_en: None,
            owner_agency_id: Some(owner),
            catalogs: vec![CatalogKind::Shared],
            access_level: level,
            allowed_agency_ids: allowed,
            license: None,
            frequency: Frequency::Annual,
            sector: None,
            tags: vec!["thống kê".into()],
            spatial: None,
            temporal_start: None,
            temporal_end: None,
            contact_name: None,
            contact_email: None,
            resources: vec![],
        },
        revision: 1,
        created_at: now,
        modified_at: now,
        resources: vec![Resource {
            id: uid(100 + n),
            dataset_id: id,
            input: ResourceInput {
                name: "bang-1".into(),
                title: None,
                description: None,
                schema: serde_json::json!({"fields": [{"name": "x", "type": "integer"}]}),
            },
            created_at: now,
            modified_at: now,
        }],
    }
}

pub async fn run(store: &dyn MetaStore) {
    // Agencies.
    let root = store
        .create_agency(
            &NewAgency {
                code: "ubnd-tinh".into(),
                name: "UBND tỉnh".into(),
                name_en: None,
                kind: AgencyKind::ProvinceCommittee,
                parent_id: None,
                admin_unit_code: Some("14".into()),
            },
            ev("agency.create"),
        )
        .await
        .unwrap();
    let mk = |code: &str| NewAgency {
        code: code.into(),
        name: code.into(),
        name_en: None,
        kind: AgencyKind::Department,
        parent_id: Some(root.id),
        admin_unit_code: None,
    };
    let a = store.create_agency(&mk("so-a"), ev("agency.create")).await.unwrap();
    let b = store.create_agency(&mk("so-b"), ev("agency.create")).await.unwrap();
    let c = store.create_agency(&mk("so-c"), ev("agency.create")).await.unwrap();
    let dup = store.create_agency(&mk("so-a"), ev("agency.create")).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::SlugTaken);
    assert_eq!(store.list_agencies().await.unwrap().len(), 4);
    assert_eq!(store.agency_by_code("so-b").await.unwrap().unwrap().id, b.id);

    // Users and credentials.
    let u = store
        .create_user(
            &NewUserRecord {
                username: "steward-a".into(),
                display_name: "Nguyễn Văn A".into(),
                email: None,
                agency_id: a.id,
                role: Role::Steward,
                password_hash: "h1".into(),
                must_change_password: true,
            },
            ev("user.create"),
        )
        .await
        .unwrap();
    let creds = store.user_credentials("steward-a").await.unwrap().unwrap();
    assert_eq!(creds.password_hash, "h1");
    let u2 = store
        .update_user(u.id, &UserUpdate { active: Some(false), ..Default::default() }, ev("user.update"))
        .await
        .unwrap();
    assert!(!u2.active);
    assert_eq!(u2.display_name, "Nguyễn Văn A");

    // Tokens.
    let t = store
        .create_token(
            &NewTokenRecord {
                name: "etl".into(),
                prefix: "kho_abcd".into(),
                secret_hash: "secret-hash".into(),
                user_id: u.id,
                agency_id: a.id,
                role: Role::Viewer,
                expires_at: None,
            },
            ev("token.create"),
        )
        .await
        .unwrap();
    assert_eq!(store.token_by_secret_hash("secret-hash").await.unwrap().unwrap().id, t.id);
    let revoked = store.revoke_token(t.id, OffsetDateTime::now_utc(), ev("token.revoke")).await.unwrap();
    assert!(revoked.revoked_at.is_some());

    // Datasets: visibility in listings, revisions, optimistic concurrency.
    let made = [
        (1, "d-open", AccessLevel::Open, vec![]),
        (2, "d-shared", AccessLevel::Shared, vec![]),
        (3, "d-restricted", AccessLevel::Restricted, vec![b.id]),
        (4, "d-private", AccessLevel::Private, vec![]),
    ];
    for (n, slug, level, allowed) in &made {
        let d = dataset(*n, slug, a.id, *level, allowed.clone());
        store.save_dataset(&d, SaveMode::Create, "create", ev("dataset.create")).await.unwrap();
    }
    let clash = store
        .save_dataset(&dataset(5, "d-open", a.id, AccessLevel::Open, vec![]), SaveMode::Create, "create", ev("x"))
        .await
        .unwrap_err();
    assert_eq!(clash.code, ErrorCode::SlugTaken);
    let visible = |v| async move {
        let f = DatasetFilter { visibility: v, owner_agency_id: None, q: None, limit: 100, offset: 0 };
        let (list, total) = store.list_datasets(&f).await.unwrap();
        assert_eq!(list.len() as i64, total);
        let mut slugs: Vec<String> = list.into_iter().map(|d| d.input.slug).collect();
        slugs.sort();
        slugs
    };
    assert_eq!(visible(Visibility::OpenOnly).await, vec!["d-open"]);
    assert_eq!(visible(Visibility::Agency(c.id)).await, vec!["d-open", "d-shared"]);
    assert_eq!(visible(Visibility::Agency(b.id)).await, vec!["d-open", "d-restricted", "d-shared"]);
    assert_eq!(visible(Visibility::Agency(a.id)).await.len(), 4);
    assert_eq!(visible(Visibility::All).await.len(), 4);
    // The listing is the policy's one rule, translated into the backend's query.
    for v in [
        Visibility::All,
        Visibility::OpenOnly,
        Visibility::Agency(a.id),
        Visibility::Agency(b.id),
        Visibility::Agency(c.id),
    ] {
        let mut admitted: Vec<String> = made
            .iter()
            .filter(|(_, _, level, allowed)| {
                v.admits(kho_core::policy::DatasetAccess {
                    owner_agency_id: a.id,
                    level: *level,
                    allowed_agency_ids: allowed,
                })
            })
            .map(|(_, slug, _, _)| slug.to_string())
            .collect();
        admitted.sort();
        assert_eq!(visible(v).await, admitted, "{v:?}");
    }
    let f = DatasetFilter {
        visibility: Visibility::All,
        owner_agency_id: None,
        q: Some("DAN SO d-shared".into()),
        limit: 10,
        offset: 0,
    };
    assert_eq!(store.list_datasets(&f).await.unwrap().1, 1);

    let mut d = store.dataset("d-shared").await.unwrap().unwrap();
    assert_eq!(d.resources.len(), 1);
    d.input.title = "Đổi tên".into();
    d.revision = 2;
    store.save_dataset(&d, SaveMode::Update { expected_revision: 1 }, "update", ev("dataset.update")).await.unwrap();
    // A second writer still holding revision 1 loses, and nothing is overwritten.
    let mut stale = d.clone();
    stale.input.title = "Ghi đè".into();
    let err =
        store.save_dataset(&stale, SaveMode::Update { expected_revision: 1 }, "update", ev("x")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(store.dataset("d-shared").await.unwrap().unwrap().input.title, "Đổi tên");
    assert_eq!(store.dataset(&uid(2)).await.unwrap().unwrap().input.slug, "d-shared", "found by id too");
    let revs = store.dataset_revisions(&uid(2)).await.unwrap();
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(revs[1].snapshot["title"], "Dân số d-shared");

    let mut del = store.dataset("d-open").await.unwrap().unwrap();
    del.revision = 2;
    store.save_dataset(&del, SaveMode::Delete { expected_revision: 1 }, "delete", ev("dataset.delete")).await.unwrap();
    assert!(store.dataset("d-open").await.unwrap().is_none());
    assert_eq!(store.dataset_revisions(&uid(1)).await.unwrap().len(), 2);

    // Dictionary versions.
    let term = NewDictionaryTerm {
        name: "cccd".into(),
        title: "CCCD".into(),
        title_en: None,
        description: String::new(),
        description_en: None,
        field_type: "string".into(),
        format: None,
        constraints: serde_json::json!({"pattern": "^[0-9]{12}$"}),
        references: None,
        examples: vec![],
        personal: true,
    };
    assert_eq!(store.add_term_version(&term, ev("term.create")).await.unwrap().version, 1);
    assert_eq!(store.add_term_version(&term, ev("term.create")).await.unwrap().version, 2);
    let versions = store.term_versions("cccd").await.unwrap();
    assert_eq!(versions.len(), 2);
    // Whether its values are personal data is kept with each version.
    assert!(versions.iter().all(|t| t.personal));

    // Sessions and throttling.
    let now = OffsetDateTime::now_utc();
    let rec = SessionRecord {
        user_id: u.id,
        csrf_token: "c".into(),
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    store.create_session("sh", &rec).await.unwrap();
    assert_eq!(store.session("sh").await.unwrap().unwrap().csrf_token, "c");
    store.delete_user_sessions(u.id).await.unwrap();
    assert!(store.session("sh").await.unwrap().is_none());
    store.record_login_failure("k", now).await.unwrap();
    store.record_login_failure("k", now).await.unwrap();
    assert_eq!(store.login_failures_since("k", now - time::Duration::minutes(1)).await.unwrap().0, 2);
    store.clear_login_failures("k").await.unwrap();
    assert_eq!(store.login_failures_since("k", now - time::Duration::minutes(1)).await.unwrap().0, 0);

    // Every write above left one audit entry, and the chain verifies.
    let all = store.audit_chunk(1, 10_000).await.unwrap();
    let mut v = ChainVerifier::default();
    for r in &all {
        v.push(r).unwrap();
    }
    // 4 agencies, 2 users, 2 tokens, 4 creates, an update and a delete of datasets (the conflict and the clash wrote nothing), 2 terms.
    assert_eq!(v.checked, 4 + 2 + 2 + 6 + 2);
    let newest = store.list_audit(&AuditFilter { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(newest[0].seq, all.last().unwrap().seq);
    assert_eq!(newest[0].action, "term.create");
    // Filters: by kind of object, by day, by action.
    let of =
        |object_type: &str| AuditFilter { object_type: Some(object_type.into()), limit: 1000, ..Default::default() };
    assert_eq!(store.list_audit(&of("test")).await.unwrap().len(), all.len());
    assert!(store.list_audit(&of("dataset")).await.unwrap().is_empty());
    let someone = AuditFilter { actor_user_id: Some(1), limit: 1000, ..Default::default() };
    assert!(store.list_audit(&someone).await.unwrap().is_empty(), "every entry here is the story's own");
    let today = OffsetDateTime::now_utc().date();
    let day = |since: Option<time::Date>, until: Option<time::Date>| AuditFilter {
        since,
        until,
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(store.list_audit(&day(Some(today), Some(today))).await.unwrap().len(), all.len());
    assert!(store.list_audit(&day(today.next_day(), None)).await.unwrap().is_empty());
    assert!(store.list_audit(&day(None, today.previous_day())).await.unwrap().is_empty());
    let created = store
        .list_audit(&AuditFilter { action: Some("dataset.create".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert!(!created.is_empty() && created.iter().all(|r| r.action == "dataset.create"));

    // Settings.
    store.set_setting("province", "14").await.unwrap();
    store.set_setting("province", "40").await.unwrap();
    assert_eq!(store.setting("province").await.unwrap().as_deref(), Some("40"));

    // Usage counts add up per dataset and day, and total per dataset.
    let day = time::macros::date!(2026 - 01 - 31);
    let count = |id: &str, day: time::Date, views: i64, downloads: i64| UsageCount {
        dataset_id: id.into(),
        day,
        views,
        downloads,
    };
    let (da, db) = (uid(901), uid(902));
    store.add_usage(&[count(&da, day, 3, 1), count(&db, day, 1, 0)]).await.unwrap();
    store.add_usage(&[count(&da, day, 2, 2), count(&da, day.next_day().unwrap(), 1, 0)]).await.unwrap();
    let mut totals = store.usage_totals().await.unwrap();
    totals.sort();
    assert_eq!(totals, vec![(da.clone(), 6, 3), (db.clone(), 1, 0)]);

    // Feedback: a problem report and a data request, listed by filter, answered and routed.
    let at = OffsetDateTime::now_utc();
    let problem = store
        .add_feedback(
            &NewFeedback {
                kind: FeedbackKind::Problem,
                dataset_id: Some(da.clone()),
                agency_id: Some(root.id),
                category: Some(ProblemCategory::WrongValues),
                title: String::new(),
                body: "Số dân xã Chiềng Sinh sai".into(),
                contact: Some("lan@example.vn".into()),
            },
            at,
            ev("feedback.create"),
        )
        .await
        .unwrap();
    assert_eq!(problem.status, FeedbackStatus::Open);
    assert_eq!(problem.category, Some(ProblemCategory::WrongValues));
    assert_eq!(problem.contact.as_deref(), Some("lan@example.vn"));
    let created = store.list_audit(&AuditFilter { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!((created[0].action.as_str(), created[0].object_id.clone()), ("feedback.create", problem.id.to_string()));
    let request = store
        .add_feedback(
            &NewFeedback {
                kind: FeedbackKind::Request,
                dataset_id: None,
                agency_id: None,
                category: None,
                title: "Danh sách trường học".into(),
                body: "Xin công bố danh sách trường học".into(),
                contact: None,
            },
            at,
            ev("feedback.create"),
        )
        .await
        .unwrap();
    let list = |filter: FeedbackFilter| async move {
        let (items, total) = store.list_feedback(&FeedbackFilter { limit: 10, ..filter }).await.unwrap();
        (items.into_iter().map(|f| f.id).collect::<Vec<_>>(), total)
    };
    assert_eq!(list(FeedbackFilter::default()).await, (vec![request.id, problem.id], 2));
    assert_eq!(list(FeedbackFilter { kind: Some(FeedbackKind::Request), ..Default::default() }).await.1, 1);
    assert_eq!(list(FeedbackFilter { agency_id: Some(root.id), ..Default::default() }).await.0, vec![problem.id]);
    assert_eq!(list(FeedbackFilter { dataset_id: Some(da.clone()), ..Default::default() }).await.0, vec![problem.id]);
    let answered = store
        .answer_feedback(
            request.id,
            &FeedbackAnswer {
                status: FeedbackStatus::Resolved,
                answer: Some("Đã công bố".into()),
                agency_id: Some(root.id),
                dataset_id: Some(db.clone()),
                answered_by: "steward".into(),
                at,
            },
            ev("feedback.answer"),
        )
        .await
        .unwrap();
    assert_eq!(
        (answered.status, answered.agency_id, answered.dataset_id.as_deref(), answered.answered_by.as_deref()),
        (FeedbackStatus::Resolved, Some(root.id), Some(db.as_str()), Some("steward"))
    );
    assert_eq!(store.feedback(request.id).await.unwrap(), Some(answered));
    let only_open = FeedbackFilter { statuses: vec![FeedbackStatus::Open], ..Default::default() };
    assert_eq!(list(only_open).await.0, vec![problem.id]);
    let two = FeedbackFilter { statuses: vec![FeedbackStatus::Open, FeedbackStatus::Resolved], ..Default::default() };
    assert_eq!(list(two).await.1, 2);
    let paged = FeedbackFilter { limit: 1, offset: 1, ..Default::default() };
    let (page, total) = store.list_feedback(&paged).await.unwrap();
    assert_eq!((page.len(), page[0].id, total), (1, problem.id, 2));
    let missing = FeedbackAnswer {
        status: FeedbackStatus::Answered,
        answer: None,
        agency_id: None,
        dataset_id: None,
        answered_by: "x".into(),
        at,
    };
    let err = store.answer_feedback(9999, &missing, ev("feedback.answer")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(store.feedback(9999).await.unwrap(), None);

    // Ratings sum up per dataset.
    assert_eq!(store.rating_summary(&da).await.unwrap(), RatingSummary::default());
    for stars in [5, 4, 4, 1] {
        store.add_rating(&da, stars, at).await.unwrap();
    }
    store.add_rating(&db, 2, at).await.unwrap();
    assert_eq!(
        store.rating_summary(&da).await.unwrap(),
        RatingSummary { count: 4, average: 3.5, stars: [1, 0, 0, 2, 1] }
    );

    uploads_and_versions(store).await;
}

/// Now, to the microsecond: backends may keep times no finer (PostgreSQL does), and the story
/// compares what it wrote with what it reads back.
fn now_us() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

/// An upload of `dataset`'s first table, checked and waiting for a decision.
fn upload(n: u32, d: &Dataset) -> Upload {
    let table = &d.resources[0];
    Upload {
        id: uid(500 + n),
        dataset_id: d.id.clone(),
        resource_id: table.id.clone(),
        resource_name: table.input.name.clone(),
        file_name: "dan-so.csv".into(),
        bytes: 120,
        status: "checked".into(),
        rows: 3,
        valid_rows: 3,
        invalid_rows: 0,
        report: serde_json::json!({"ok": true}),
        created_by: "story".into(),
        created_at: now_us(),
        version: None,
    }
}

fn version_of(u: &Upload, number: i64) -> ResourceVersion {
    ResourceVersion {
        dataset_id: u.dataset_id.clone(),
        resource_id: u.resource_id.clone(),
        version: number,
        rows: 3,
        bytes: 900,
        schema_hash: "h".into(),
        schema: serde_json::json!({"fields": [{"name": "x", "type": "integer"}]}),
        object_key: format!("datasets/{}/{}/v{number}/data.parquet", u.dataset_id, u.resource_id),
        quarantine_key: None,
        quarantined_rows: 0,
        rows_added: 3,
        rows_removed: 0,
        rows_changed: 0,
        upload_id: Some(u.id.clone()),
        quality: Default::default(),
        published_by: "story".into(),
        published_at: now_us(),
    }
}

/// Uploads wait for a decision, are published or rejected once, and each version number of a
/// table exists once.
async fn uploads_and_versions(store: &dyn MetaStore) {
    let d = store.dataset("d-shared").await.unwrap().unwrap();
    let first = upload(1, &d);
    store.create_upload(&first, ev("upload.create")).await.unwrap();
    assert_eq!(store.upload(&first.id).await.unwrap().unwrap(), first);
    assert_eq!(store.upload("not-an-upload").await.unwrap(), None, "an unknown id finds nothing");
    let v1 = version_of(&first, 1);
    store.add_version(&v1, ev("version.publish")).await.unwrap();
    let published = store.upload(&first.id).await.unwrap().unwrap();
    assert_eq!((published.status.as_str(), published.version), ("published", Some(1)));
    assert_eq!(store.version(&v1.resource_id, 1).await.unwrap().unwrap(), v1);
    let again = store.add_version(&version_of(&first, 2), ev("x")).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict, "an upload is published once");
    let err = store.reject_upload(&first.id, ev("x")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "a published upload cannot be rejected");

    let second = upload(2, &d);
    store.create_upload(&second, ev("upload.create")).await.unwrap();
    let clash = store.add_version(&version_of(&second, 1), ev("x")).await.unwrap_err();
    assert_eq!(clash.code, ErrorCode::Conflict, "version 1 exists already");
    assert_eq!(
        store.upload(&second.id).await.unwrap().unwrap().status,
        "checked",
        "the failed publish left it waiting"
    );
    store.reject_upload(&second.id, ev("upload.reject")).await.unwrap();
    assert_eq!(store.upload(&second.id).await.unwrap().unwrap().status, "rejected");

    let mut third = upload(3, &d);
    third.invalid_rows = 1;
    store.create_upload(&third, ev("upload.create")).await.unwrap();
    let mut v2 = version_of(&third, 2);
    v2.quarantine_key = Some(format!("datasets/{}/{}/v2/quarantine.csv", d.id, v2.resource_id));
    v2.quarantined_rows = 1;
    store.add_version(&v2, ev("version.publish")).await.unwrap();
    let listed = store.versions(&v2.resource_id).await.unwrap();
    assert_eq!(listed.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 1], "newest first");
    assert!(store.versions("not-a-table").await.unwrap().is_empty());
    let mut keys = store.version_object_keys().await.unwrap();
    keys.sort();
    let mut expected = vec![v1.object_key.clone(), v2.object_key.clone(), v2.quarantine_key.clone().unwrap()];
    expected.sort();
    assert_eq!(keys, expected);
    verify_chain(store).await;
}

/// The whole audit chain verifies.
async fn verify_chain(store: &dyn MetaStore) -> usize {
    let all = store.audit_chunk(1, 1_000_000).await.unwrap();
    let mut v = ChainVerifier::default();
    for r in &all {
        v.push(r).unwrap_or_else(|e| panic!("the audit chain breaks at entry {}: {e:?}", r.seq));
    }
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=all.len() as i64).collect::<Vec<_>>());
    all.len()
}

/// Two stores on one database, as two kho nodes would be (or one store with many connections,
/// passed twice), written to at the same time: the audit log stays one valid chain with no gap,
/// and of concurrent publishes of the same version of a table exactly one wins.
pub async fn run_concurrent(first: &dyn MetaStore, second: &dyn MetaStore) {
    let agency = first.create_agency(&department("so-song-song", "Sở song song"), ev("agency.create")).await.unwrap();
    let before = verify_chain(first).await;
    const WRITERS: usize = 40;
    let appends = (0..WRITERS).map(|i| {
        let store = if i % 2 == 0 { first } else { second };
        async move { store.append_audit(ev(&format!("concurrent.{i}"))).await.unwrap() }
    });
    let written = futures_util::future::join_all(appends).await;
    let mut seqs: Vec<i64> = written.iter().map(|r| r.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), WRITERS, "every append got its own place in the chain");
    assert_eq!(verify_chain(second).await, before + WRITERS);

    // Concurrent publishes: of one table's version 1, from different uploads.
    let d = dataset(700, "song-song", agency.id, AccessLevel::Shared, vec![]);
    first.save_dataset(&d, SaveMode::Create, "create", ev("dataset.create")).await.unwrap();
    let uploads: Vec<Upload> = (0..8).map(|n| upload(700 + n, &d)).collect();
    for u in &uploads {
        first.create_upload(u, ev("upload.create")).await.unwrap();
    }
    let publishes = uploads.iter().enumerate().map(|(i, u)| {
        let store = if i % 2 == 0 { first } else { second };
        async move { store.add_version(&version_of(u, 1), ev("version.publish")).await }
    });
    let results = futures_util::future::join_all(publishes).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one publish of version 1 wins: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code, ErrorCode::Conflict, "the others are told it exists: {r:?}");
    }
    let table = &d.resources[0].id;
    assert_eq!(second.versions(table).await.unwrap().len(), 1);
    let published = futures_util::future::join_all(uploads.iter().map(|u| first.upload(&u.id))).await;
    let statuses: Vec<String> = published.into_iter().map(|u| u.unwrap().unwrap().status).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "published").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "checked").count(), 7, "the others still wait: {statuses:?}");

    // And concurrent publishes of one upload: once.
    let last = upload(799, &d);
    first.create_upload(&last, ev("upload.create")).await.unwrap();
    let twice = [first, second, first, second].map(|store| {
        let last = &last;
        async move { store.add_version(&version_of(last, 2), ev("version.publish")).await }
    });
    let results = futures_util::future::join_all(twice).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    verify_chain(first).await;
}

/// Leases on two stores of one database, as two nodes (or two processes) hold them: a held name
/// is refused to everyone else, names are independent, a waiter gets the name once its holder
/// lets go and not before, and dropping a lease frees its name.
pub async fn run_leases(first: &dyn MetaStore, second: &dyn MetaStore) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let name = "xuất bản:bảng/1";
    let held = first.lease(name).await.unwrap();
    assert!(second.try_lease(name).await.unwrap().is_none(), "another node cannot take a held lease");
    assert!(first.try_lease(name).await.unwrap().is_none(), "nor another task of the same node");
    let other = second.try_lease("xuất bản:bảng/2").await.unwrap();
    assert!(other.is_some(), "names are independent");

    let released = AtomicBool::new(false);
    let waiter = async {
        let lease = second.lease(name).await.unwrap();
        assert!(released.load(Ordering::SeqCst), "the waiter got the lease while its holder still had it");
        lease
    };
    let holder = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        released.store(true, Ordering::SeqCst);
        drop(held);
    };
    let (taken, ()) = futures_util::future::join(waiter, holder).await;
    assert!(first.try_lease(name).await.unwrap().is_none(), "the waiter holds it now");
    drop(taken);
    drop(other);
    // A backend may release in the background (ending a database session): soon, not at once.
    for name in [name, "xuất bản:bảng/2"] {
        let mut again = None;
        for _ in 0..100 {
            again = first.try_lease(name).await.unwrap();
            if again.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(again.is_some(), "a dropped lease frees its name: {name}");
    }
}

/// Rows kept in memory, as a dump gives them.
#[derive(Default)]
struct Rows(Vec<(&'static dump::Table, Vec<Vec<serde_json::Value>>)>);

impl dump::DumpSink for Rows {
    fn table(&mut self, table: &'static dump::Table) -> Result<()> {
        self.0.push((table, Vec::new()));
        Ok(())
    }
    fn row(&mut self, values: Vec<serde_json::Value>) -> Result<()> {
        self.0.last_mut().unwrap().1.push(values);
        Ok(())
    }
}

/// A store that went through the story, dumped and loaded into an empty one: the second dumps
/// the same rows, keeps one valid audit chain, and numbers new rows after the loaded ones.
pub async fn run_dump(source: &dyn MetaStore, target: &dyn MetaStore) {
    run(source).await;
    let mut rows = Rows::default();
    source.dump(&mut rows).await.unwrap();
    assert_eq!(rows.0.len(), dump::TABLES.len());
    for (table, values) in &rows.0 {
        for name in dump::MUST_BE_EMPTY.iter().filter(|n| **n == table.name) {
            assert_eq!(target.rows_in(table).await.unwrap(), 0, "{name} starts empty");
        }
        for chunk in values.chunks(50) {
            target.load(table, chunk).await.unwrap();
        }
    }
    target.finish_load().await.unwrap();
    let mut again = Rows::default();
    target.dump(&mut again).await.unwrap();
    for ((table, before), (_, after)) in rows.0.iter().zip(&again.0) {
        assert_eq!(before.len(), after.len(), "{} rows", table.name);
        assert!(before == after, "{}: the rows loaded are not the rows dumped", table.name);
    }
    assert!(rows.0.iter().any(|(t, r)| t.name == "audit_log" && !r.is_empty()));
    verify_chain(target).await;
    let agency =
        target.create_agency(&department("so-sau-khi-chuyen", "Sở sau khi chuyển"), ev("agency.create")).await.unwrap();
    let most = target.list_agencies().await.unwrap().iter().map(|a| a.id).max().unwrap();
    assert_eq!(agency.id, most, "new rows are numbered after the loaded ones");
    verify_chain(target).await;
}
