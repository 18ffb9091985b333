//! One scenario that every metadata backend must pass. Each backend's test suite calls [`run`]
//! on a fresh, empty store.

use kho_core::ErrorCode;
use kho_core::audit::{AuditEvent, ChainVerifier};
use kho_core::model::*;
use time::OffsetDateTime;

use crate::*;

fn ev(action: &str) -> AuditEvent {
    AuditEvent::new("story", action, "test", "")
}

fn dataset(id: &str, slug: &str, owner: i64, level: AccessLevel, allowed: Vec<i64>) -> Dataset {
    let now = OffsetDateTime::now_utc();
    Dataset {
        id: id.into(),
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
            id: format!("{id}-r1"),
            dataset_id: id.into(),
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
    for (id, level, allowed) in [
        ("d-open", AccessLevel::Open, vec![]),
        ("d-shared", AccessLevel::Shared, vec![]),
        ("d-restricted", AccessLevel::Restricted, vec![b.id]),
        ("d-private", AccessLevel::Private, vec![]),
    ] {
        store
            .save_dataset(&dataset(id, id, a.id, level, allowed), SaveMode::Create, "create", ev("dataset.create"))
            .await
            .unwrap();
    }
    let clash = store
        .save_dataset(
            &dataset("d-other", "d-open", a.id, AccessLevel::Open, vec![]),
            SaveMode::Create,
            "create",
            ev("x"),
        )
        .await
        .unwrap_err();
    assert_eq!(clash.code, ErrorCode::SlugTaken);
    let visible = |v| async move {
        let f = DatasetFilter { visibility: v, owner_agency_id: None, q: None, limit: 100, offset: 0 };
        let (list, total) = store.list_datasets(&f).await.unwrap();
        assert_eq!(list.len() as i64, total);
        let mut ids: Vec<String> = list.into_iter().map(|d| d.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(visible(Visibility::OpenOnly).await, vec!["d-open"]);
    assert_eq!(visible(Visibility::Agency(c.id)).await, vec!["d-open", "d-shared"]);
    assert_eq!(visible(Visibility::Agency(b.id)).await, vec!["d-open", "d-restricted", "d-shared"]);
    assert_eq!(visible(Visibility::Agency(a.id)).await.len(), 4);
    assert_eq!(visible(Visibility::All).await.len(), 4);
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
    let revs = store.dataset_revisions("d-shared").await.unwrap();
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(revs[1].snapshot["title"], "Dân số d-shared");

    let mut del = store.dataset("d-open").await.unwrap().unwrap();
    del.revision = 2;
    store.save_dataset(&del, SaveMode::Delete { expected_revision: 1 }, "delete", ev("dataset.delete")).await.unwrap();
    assert!(store.dataset("d-open").await.unwrap().is_none());
    assert_eq!(store.dataset_revisions("d-open").await.unwrap().len(), 2);

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
    store.add_usage(&[count("a", day, 3, 1), count("b", day, 1, 0)]).await.unwrap();
    store.add_usage(&[count("a", day, 2, 2), count("a", day.next_day().unwrap(), 1, 0)]).await.unwrap();
    let mut totals = store.usage_totals().await.unwrap();
    totals.sort();
    assert_eq!(totals, vec![("a".to_string(), 6, 3), ("b".to_string(), 1, 0)]);

    // Feedback: a problem report and a data request, listed by filter, answered and routed.
    let at = OffsetDateTime::now_utc();
    let problem = store
        .add_feedback(
            &NewFeedback {
                kind: FeedbackKind::Problem,
                dataset_id: Some("a".into()),
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
    assert_eq!(list(FeedbackFilter { dataset_id: Some("a".into()), ..Default::default() }).await.0, vec![problem.id]);
    let answered = store
        .answer_feedback(
            request.id,
            &FeedbackAnswer {
                status: FeedbackStatus::Resolved,
                answer: Some("Đã công bố".into()),
                agency_id: Some(root.id),
                dataset_id: Some("b".into()),
                answered_by: "steward".into(),
                at,
            },
            ev("feedback.answer"),
        )
        .await
        .unwrap();
    assert_eq!(
        (answered.status, answered.agency_id, answered.dataset_id.as_deref(), answered.answered_by.as_deref()),
        (FeedbackStatus::Resolved, Some(root.id), Some("b"), Some("steward"))
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
    assert_eq!(store.rating_summary("a").await.unwrap(), RatingSummary::default());
    for stars in [5, 4, 4, 1] {
        store.add_rating("a", stars, at).await.unwrap();
    }
    store.add_rating("b", 2, at).await.unwrap();
    assert_eq!(
        store.rating_summary("a").await.unwrap(),
        RatingSummary { count: 4, average: 3.5, stars: [1, 0, 0, 2, 1] }
    );
}
