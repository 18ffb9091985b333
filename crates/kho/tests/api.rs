//! The JSON API over real HTTP against a real `kho serve`.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn health_metrics_and_openapi() {
    let s = Server::start(false);
    let c = s.client();
    let h = c.get("/health").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["status"], "ok");
    let m = c.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.text.contains("kho_http_requests_total"), "{}", m.text);
    assert!(m.text.contains("kho_users 1"), "{}", m.text);
    let o = c.get("/openapi.json").await;
    assert_eq!(o.body["openapi"], "3.1.0");
    let paths = o.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/datasets",
        "/api/v1/datasets/{id}",
        "/api/v1/dictionary/terms",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/agencies/tree",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    // Every operation documents the shared error body.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let r = &op["responses"];
            assert!(r.get("401").is_some() && r.get("422").is_some(), "{method} {path} lacks error responses");
        }
    }
    let unknown = c.get("/api/v1/nothing-here").await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn sign_in_failures_lockout_and_csrf() {
    let s = Server::start(false);
    let c = s.client();
    let wrong = c.sign_in("admin", "not-the-password").await;
    let unknown = c.sign_in("no-such-user", "whatever-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong.code(), unknown.code()), ("invalid_credentials", "invalid_credentials"));
    assert_eq!(wrong.body["message"], unknown.body["message"], "no hint whether the user exists");
    for _ in 0..4 {
        c.sign_in("admin", "still-wrong-password").await;
    }
    let locked = c.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!((locked.status, locked.code()), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"));
    let retry: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900);

    // Another account is not locked by the first one's failures.
    let s2 = Server::start(false);
    let mut admin = Client::signed_in(&s2.base, "admin", ADMIN_PASSWORD).await;
    let csrf = admin.csrf.take();
    let no_csrf =
        admin.post("/api/v1/agencies", json!({"code": "so-moi", "name": "Sở Mới", "kind": "department"})).await;
    assert_eq!((no_csrf.status, no_csrf.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    admin.csrf = Some("wrong".into());
    assert_eq!(
        admin.post("/api/v1/agencies", json!({"code": "so-moi", "name": "Sở Mới", "kind": "department"})).await.code(),
        "csrf_failed"
    );
    admin.csrf = csrf;
    let ok = admin.post("/api/v1/agencies", json!({"code": "so-moi", "name": "Sở Mới", "kind": "department"})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let me = admin.get("/api/v1/me").await;
    assert_eq!(me.body["user"]["username"], "admin");
    let out = admin.post("/api/v1/auth/sign-out", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get("/api/v1/me").await.body["user"], Value::Null);
}

#[tokio::test]
async fn tokens_are_shown_once_scoped_and_revocable() {
    let s = Server::start(true);
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let created =
        steward.post("/api/v1/tokens", json!({"name": "đồng bộ", "role": "viewer", "expires_in_days": 30})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kho_") && secret.len() == 68);
    let id = created.body["token"]["id"].as_i64().unwrap();
    // The list never shows the secret again.
    let list = steward.get("/api/v1/tokens").await;
    assert!(!list.text.contains(&secret));
    assert_eq!(list.body[0]["prefix"].as_str().unwrap(), &secret[..12]);
    // The token acts as a viewer of the steward's agency: it reads, it cannot write.
    let t = Client::with_token(&s.base, &secret);
    assert_eq!(t.get("/api/v1/me").await.body["role"], "viewer");
    assert_eq!(t.get("/api/v1/datasets/co-so-y-te").await.status, StatusCode::OK);
    let denied = t
        .put(
            "/api/v1/datasets/co-so-y-te",
            json!({"slug": "co-so-y-te", "title": "x", "access_level": "shared", "frequency": "annual"}),
        )
        .await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "forbidden"));
    // A stronger role than the user's is refused.
    let too_strong = steward.post("/api/v1/tokens", json!({"name": "x", "role": "admin"})).await;
    assert_eq!((too_strong.status, too_strong.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    assert_eq!(too_strong.body["details"][0]["path"], "role");

    // Malformed, unknown, revoked and expired tokens each say so.
    for (tok, code) in [("abc", "invalid_token"), (&*format!("kho_{}", "0".repeat(64)), "invalid_token")] {
        let r = Client::with_token(&s.base, tok).get("/api/v1/me").await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, code));
    }
    let r = s.client().send(Method::GET, "/api/v1/me", None, &[("Authorization", "Basic abc")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let other = steward.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(other.status, StatusCode::OK);
    let r = t.get("/api/v1/me").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "token_revoked"));

    let created = admin.post("/api/v1/tokens", json!({"name": "hết hạn", "expires_in_days": 1})).await;
    let expiring = created.body["secret"].as_str().unwrap().to_string();
    assert_eq!(Client::with_token(&s.base, &expiring).get("/api/v1/me").await.status, StatusCode::OK);
    // Move its expiry into the past directly in the database.
    let id = created.body["token"]["id"].as_i64().unwrap();
    store_sql(&s.data_dir(), &format!("UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00Z' WHERE id = {id}"))
        .await;
    let r = Client::with_token(&s.base, &expiring).get("/api/v1/me").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "token_expired"));

    // A token cannot mint tokens.
    let admin_tok =
        admin.post("/api/v1/tokens", json!({"name": "ci"})).await.body["secret"].as_str().unwrap().to_string();
    let r = Client::with_token(&s.base, &admin_tok).post("/api/v1/tokens", json!({"name": "child"})).await;
    assert_eq!(r.code(), "forbidden");
}

/// Agencies A (owner), B (named for restricted data) and C (unrelated), with a viewer and a
/// steward in each, plus the administrator.
struct World {
    _server: Server,
    clients: Vec<(&'static str, Client)>,
    a: i64,
    b: i64,
}

async fn world() -> World {
    let s = Server::start(false);
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let mut ids = Vec::new();
    for code in ["so-a", "so-b", "so-c"] {
        let r = admin
            .post("/api/v1/agencies", json!({"code": code, "name": format!("Sở {code}"), "kind": "department"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    let mut clients = vec![("anonymous", s.client())];
    for (name, agency, role) in [
        ("viewer-a", ids[0], "viewer"),
        ("viewer-b", ids[1], "viewer"),
        ("viewer-c", ids[2], "viewer"),
        ("steward-a", ids[0], "steward"),
        ("steward-b", ids[1], "steward"),
        ("steward-c", ids[2], "steward"),
    ] {
        let r = admin
            // These accounts act at once: their administrator chose not to ask for a new password.
            .post("/api/v1/users", json!({"username": name, "display_name": name, "agency_id": agency, "role": role, "password": "password-of-tests", "must_change_password": false}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        clients.push((name, Client::signed_in(&s.base, name, "password-of-tests").await));
    }
    clients.push(("admin", admin));
    World { a: ids[0], b: ids[1], _server: s, clients }
}

fn ds(level: &str, w: &World) -> Value {
    let mut d = dataset(&format!("du-lieu-{level}"), level);
    d["owner_agency_id"] = json!(w.a);
    if level == "restricted" {
        d["allowed_agency_ids"] = json!([w.b]);
    }
    d
}

#[tokio::test]
async fn authorization_matrix() {
    let w = world().await;
    let admin = &w.clients.last().unwrap().1;
    let steward_a = &w.clients.iter().find(|(n, _)| *n == "steward-a").unwrap().1;
    let levels = ["open", "shared", "restricted", "private"];
    // Expected (read, update, delete) status for each principal and access level.
    let expected: &[(&str, [[u16; 3]; 4])] = &[
        ("anonymous", [[200, 401, 401], [404, 404, 404], [404, 404, 404], [404, 404, 404]]),
        ("viewer-a", [[200, 403, 403], [200, 403, 403], [200, 403, 403], [200, 403, 403]]),
        ("viewer-b", [[200, 403, 403], [200, 403, 403], [200, 403, 403], [404, 404, 404]]),
        ("viewer-c", [[200, 403, 403], [200, 403, 403], [404, 404, 404], [404, 404, 404]]),
        ("steward-a", [[200, 200, 204], [200, 200, 204], [200, 200, 204], [200, 200, 204]]),
        ("steward-b", [[200, 403, 403], [200, 403, 403], [200, 403, 403], [404, 404, 404]]),
        ("steward-c", [[200, 403, 403], [200, 403, 403], [404, 404, 404], [404, 404, 404]]),
        ("admin", [[200, 200, 204], [200, 200, 204], [200, 200, 204], [200, 200, 204]]),
    ];
    let code_of = |status: u16| match status {
        401 => "authentication_required",
        403 => "forbidden",
        404 => "not_found",
        _ => "",
    };
    for (name, row) in expected {
        let c = &w.clients.iter().find(|(n, _)| n == name).unwrap().1;
        for (level, cells) in levels.iter().zip(row) {
            // A fresh dataset per cell, so that an allowed delete does not affect other cells.
            let slug = format!("{level}-{name}");
            let mut body = ds(level, &w);
            body["slug"] = json!(slug);
            let r = steward_a.post("/api/v1/datasets", body.clone()).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            let path = format!("/api/v1/datasets/{slug}");
            let read = c.get(&path).await;
            body.as_object_mut().unwrap().remove("resources");
            body["title"] = json!(format!("Sửa bởi {name}"));
            let update = c.put(&path, body).await;
            let after_update = admin.get(&path).await;
            let delete = c.delete(&path).await;
            let got = [read.status.as_u16(), update.status.as_u16(), delete.status.as_u16()];
            assert_eq!(
                &got, cells,
                "{name} on {level}: read {} / update {} / delete {}",
                read.text, update.text, delete.text
            );
            for (status, resp) in got.iter().zip([&read, &update, &delete]) {
                if *status >= 400 {
                    assert_eq!(resp.code(), code_of(*status), "{name} on {level}");
                }
            }
            if cells[1] >= 400 {
                // A refused update changed nothing.
                assert_eq!(after_update.body["revision"], 1, "{name} on {level} changed the dataset");
                assert_eq!(after_update.body["title"], format!("Bộ dữ liệu du-lieu-{level}"));
            } else {
                assert_eq!(after_update.body["revision"], 2);
            }
            let gone = admin.get(&path).await.status;
            assert_eq!(gone, if cells[2] == 204 { StatusCode::NOT_FOUND } else { StatusCode::OK }, "{name} on {level}");
        }
    }

    // Listings return exactly what each caller may read.
    for (name, row) in expected {
        let c = &w.clients.iter().find(|(n, _)| n == name).unwrap().1;
        let mut readable: Vec<String> =
            levels.iter().zip(row).filter(|(_, cells)| cells[0] == 200).map(|(l, _)| l.to_string()).collect();
        readable.sort();
        assert_eq!(listed(c).await, readable, "{name}");
    }

    // Creating for another agency: only the owner's stewards and administrators.
    let viewer_a = &w.clients.iter().find(|(n, _)| *n == "viewer-a").unwrap().1;
    let steward_c = &w.clients.iter().find(|(n, _)| *n == "steward-c").unwrap().1;
    let mut d = ds("shared", &w);
    d["slug"] = json!("tao-thu");
    assert_eq!(viewer_a.post("/api/v1/datasets", d.clone()).await.code(), "forbidden");
    assert_eq!(steward_c.post("/api/v1/datasets", d.clone()).await.code(), "forbidden");
    assert_eq!(w.clients[0].1.post("/api/v1/datasets", d.clone()).await.code(), "authentication_required");
    assert_eq!(admin.post("/api/v1/datasets", d).await.status, StatusCode::CREATED);

    // Reads of non-open data were audited; reads of open data were not.
    let audit = admin.get("/api/v1/audit?action=dataset.read&limit=500").await;
    let entries = audit.body.as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"].as_str().unwrap().contains("viewer-b") && e["outcome"] == "ok"));
    assert!(entries.iter().any(|e| e["actor"].as_str().unwrap().contains("viewer-c") && e["outcome"] == "denied"));
    let open_id = admin.get("/api/v1/datasets/open-admin").await;
    assert_eq!(open_id.status, StatusCode::NOT_FOUND, "deleted above");
    let steward_b = &w.clients.iter().find(|(n, _)| *n == "steward-b").unwrap().1;
    assert_eq!(steward_b.get("/api/v1/audit").await.code(), "forbidden");
    // Listings that showed non-open datasets were recorded too, with the ids shown.
    let lists = admin.get("/api/v1/audit?action=dataset.list&limit=500").await;
    let by_viewer_c =
        lists.body.as_array().unwrap().iter().find(|e| e["actor"].as_str().unwrap().contains("viewer-c")).unwrap();
    let ids: Value = serde_json::from_str(by_viewer_c["detail"].as_str().unwrap()).unwrap();
    assert!(!ids["ids"].as_array().unwrap().is_empty());
    let verify = admin.get("/api/v1/audit/verify").await;
    assert_eq!(verify.body["broken_at"], Value::Null);
    assert!(verify.body["entries_checked"].as_u64().unwrap() > 100);
}

#[tokio::test]
async fn catalog_bad_input_is_named_and_loses_nothing() {
    // A small body limit, so that the oversized request below is sent whole before the server
    // answers (a multi-megabyte one races the early 413 and the connection reset).
    let s = Server::start_with(true, &[("KHO_MAX_BODY_BYTES", "65536")]);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let other = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("benh-vien", "shared")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"1\"");
    let id = r.body["id"].as_str().unwrap().to_string();

    // Invalid Table Schema: which field and why.
    let mut bad = dataset("sai-luoc-do", "shared");
    bad["resources"][0]["schema"]["fields"][1]["type"] = json!("text");
    bad["resources"][0]["schema"]["primaryKey"] = json!("khong_co");
    let r = steward.post("/api/v1/datasets", bad).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_table_schema"));
    let paths: Vec<&str> = r.body["details"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["resources[0].schema.fields[1].type", "resources[0].schema.primaryKey"]);

    // Unknown dictionary term.
    let mut bad = dataset("sai-thuat-ngu", "shared");
    bad["resources"][0]["schema"]["fields"][0]["dictionaryTerm"] = json!("ma_khong_ton_tai");
    let r = steward.post("/api/v1/datasets", bad).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_dictionary_term"));
    assert_eq!(r.body["details"][0]["path"], "resources[0].schema.fields[0].dictionaryTerm");

    // Slug collisions and path separators.
    let r = steward.post("/api/v1/datasets", dataset("benh-vien", "shared")).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "slug_taken"));
    for slug in ["a/b", "../x", "Co-Dau", "x"] {
        let r = steward.post("/api/v1/datasets", dataset(slug, "shared")).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{slug}");
        assert_eq!(r.body["details"][0]["path"], "slug");
    }

    // Unknown administrative code, and an abolished one with its successor named.
    let mut bad = dataset("sai-ma-xa", "shared");
    bad["spatial"] = json!("99999");
    assert_eq!(steward.post("/api/v1/datasets", bad.clone()).await.code(), "unknown_admin_unit");
    bad["spatial"] = json!("00001");
    let r = steward.post("/api/v1/datasets", bad).await;
    assert_eq!(r.code(), "unknown_admin_unit");
    assert!(r.body["message"].as_str().unwrap().contains("00097"), "{}", r.text);

    // Malformed JSON, wrong content type, unknown fields, oversized body.
    let r = steward.send(Method::POST, "/api/v1/datasets", None, &[("content-type", "application/json")]).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_json"));
    let r = steward
        .http
        .post(s.url("/api/v1/datasets"))
        .header("X-CSRF-Token", steward.csrf.clone().unwrap())
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = steward
        .http
        .post(s.url("/api/v1/datasets"))
        .header("X-CSRF-Token", steward.csrf.clone().unwrap())
        .body("slug=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut extra = dataset("thua-truong", "shared");
    extra["unexpected"] = json!(1);
    let r = steward.post("/api/v1/datasets", extra).await;
    assert_eq!(r.code(), "invalid_json");
    assert!(r.body["message"].as_str().unwrap().contains("unexpected"));
    let mut huge = dataset("qua-lon", "shared");
    huge["description"] = json!("x".repeat(100 * 1024));
    let r = steward.post("/api/v1/datasets", huge).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    // Another agency's steward may not edit; a stale revision is refused; nothing changed.
    let mut edit = dataset("benh-vien", "shared");
    edit.as_object_mut().unwrap().remove("resources");
    edit["title"] = json!("Bệnh viện (sửa)");
    let r = other.put("/api/v1/datasets/benh-vien", edit.clone()).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = steward.send(Method::PUT, "/api/v1/datasets/benh-vien", Some(edit.clone()), &[("If-Match", "\"7\"")]).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict"));
    let r = steward.get(&format!("/api/v1/datasets/{id}")).await;
    assert_eq!((r.body["revision"].as_i64(), r.body["title"].as_str()), (Some(1), Some("Bộ dữ liệu benh-vien")));
    assert_eq!(r.body["resources"][0]["schema"]["fields"][0]["dictionaryTerm"], "commune_code");

    // A correct update and a resource change each leave a revision.
    let r = steward.send(Method::PUT, "/api/v1/datasets/benh-vien", Some(edit), &[("If-Match", "\"1\"")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = steward
        .put(
            "/api/v1/datasets/benh-vien/resources/giuong-benh",
            json!({"title": "Giường bệnh", "schema": {"fields": [{"name": "so_giuong", "type": "integer"}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bad_res =
        steward.put("/api/v1/datasets/benh-vien/resources/giuong-benh", json!({"schema": {"fields": "x"}})).await;
    assert_eq!(bad_res.code(), "invalid_table_schema");
    let revs = steward.get("/api/v1/datasets/benh-vien/revisions").await;
    let changes: Vec<&str> = revs.body.as_array().unwrap().iter().map(|r| r["change"].as_str().unwrap()).collect();
    assert_eq!(changes, vec!["resource_create", "update", "create"]);
    assert_eq!(revs.body[2]["snapshot"]["title"], "Bộ dữ liệu benh-vien");

    // The schema is served as JSON, raw or with dictionary terms resolved.
    let raw = steward.get("/api/v1/datasets/benh-vien/resources/bang-chinh/schema").await;
    assert_eq!(raw.body["fields"][0], json!({"name": "ma_xa", "dictionaryTerm": "commune_code"}));
    let resolved = steward.get("/api/v1/datasets/benh-vien/resources/bang-chinh/schema?resolved=true").await;
    assert_eq!(resolved.body["fields"][0]["type"], "string");
    assert_eq!(resolved.body["fields"][0]["constraints"]["pattern"], "^[0-9]{5}$");
    assert_eq!(resolved.body["fields"][0]["dictionaryTerm"], "commune_code@1");

    // Search in the catalog without diacritics.
    let r = steward.get("/api/v1/datasets?q=BENH%20VIEN%20SUA").await;
    assert_eq!(r.body["total"], 1);
    let r = s.client().get("/api/v1/datasets?q=dan%20so").await;
    let slugs: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|d| d["slug"].as_str().unwrap()).collect();
    assert!(slugs.contains(&"dan-so-dien-tich-tinh") && slugs.contains(&"dan-so-dien-tich-xa"), "{slugs:?}");
    let r = s.client().get("/api/v1/datasets?limit=abc").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn dictionary_agencies_and_admin_units() {
    let s = Server::start(true);
    let anon = s.client();
    let terms = anon.get("/api/v1/dictionary/terms").await;
    assert!(terms.body.as_array().unwrap().len() >= 13);
    let found = anon.get("/api/v1/dictionary/terms?q=so%20dien%20thoai").await;
    assert_eq!(found.body[0]["name"], "phone");
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut term = json!({"name": "cccd", "title": "Số định danh cá nhân", "field_type": "string", "constraints": {"pattern": "^[0-9]{12}$", "required": true}});
    assert_eq!(steward.post("/api/v1/dictionary/terms", term.clone()).await.code(), "forbidden");
    let r = admin.post("/api/v1/dictionary/terms", term.clone()).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::CREATED, Some(2)), "{}", r.text);
    assert_eq!(anon.get("/api/v1/dictionary/terms/cccd").await.body.as_array().unwrap().len(), 2);
    term["field_type"] = json!("integer");
    let r = admin.post("/api/v1/dictionary/terms", term).await;
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(r.body["details"][0]["path"], "constraints.pattern");
    assert_eq!(anon.get("/api/v1/dictionary/terms/khong-co").await.status, StatusCode::NOT_FOUND);

    // The agency tree: the province committee, the data center, 75 communes, the demo departments.
    let tree = anon.get("/api/v1/agencies/tree").await;
    let root = &tree.body[0];
    assert_eq!(root["code"], "ubnd-tinh");
    let children = root["children"].as_array().unwrap();
    assert_eq!(children.iter().filter(|c| c["kind"] == "commune_committee").count(), 75);
    assert!(children.iter().any(|c| c["code"] == "so-y-te"));
    let r = admin
        .post(
            "/api/v1/agencies",
            json!({"code": "xa-moi", "name": "UBND xã mới", "kind": "commune_committee", "admin_unit_code": "12345"}),
        )
        .await;
    assert_eq!(r.code(), "unknown_admin_unit");
    let r = admin.post("/api/v1/agencies", json!({"code": "so-y-te", "name": "Trùng", "kind": "department"})).await;
    assert_eq!(r.code(), "slug_taken");

    // Administrative units, with or without diacritics, and the 2025 crosswalk.
    for q in ["ha%20noi", "H%C3%A0%20N%E1%BB%99i", "HA%20NOI"] {
        let r = anon.get(&format!("/api/v1/admin-units?level=province&q={q}")).await;
        assert_eq!(r.body["items"][0]["code"], "01", "{q}");
    }
    let communes = anon.get("/api/v1/admin-units?parent=14&limit=1000").await;
    assert_eq!(communes.body["total"], 75);
    let old = anon.get("/api/v1/admin-units?era=pre2025&level=province").await;
    assert_eq!(old.body["total"], 63);
    let succ = anon.get("/api/v1/admin-units/00001/successors").await;
    assert_eq!(succ.body[0]["new_code"], "00097");
    assert_eq!(anon.get("/api/v1/admin-units/99999").await.status, StatusCode::NOT_FOUND);
}

async fn listed(c: &Client) -> Vec<String> {
    let r = c.get("/api/v1/datasets?limit=1000").await;
    let mut levels: Vec<String> =
        r.body["items"].as_array().unwrap().iter().map(|d| d["access_level"].as_str().unwrap().to_string()).collect();
    levels.sort();
    levels.dedup();
    levels
}
