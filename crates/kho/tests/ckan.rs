//! The CKAN Action API over HTTP: what anonymous callers may and may not see, search following the
//! catalog without a restart, and bad input of every kind. (`scripts/harvest-compat.sh` drives the
//! same API with the real `ckanapi` client.)

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Server, dataset, publish_csv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn action(c: &Client, name: &str, params: Value) -> (StatusCode, Value) {
    let r = c.send(Method::POST, &format!("/api/3/action/{name}"), Some(params), &[]).await;
    assert!(r.body.get("help").is_some_and(Value::is_string), "{name}: {}", r.text);
    assert_eq!(r.body["success"], r.status == StatusCode::OK, "{name}: {}", r.text);
    (r.status, r.body)
}

fn error_type(body: &Value) -> &str {
    body["error"]["__type"].as_str().unwrap_or("")
}

fn names(result: &Value) -> Vec<String> {
    result["results"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn anonymous_callers_see_open_data_only_and_search_follows_the_catalog() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let anon = s.client();

    // A restricted dataset with data in it.
    let r = steward.post("/api/v1/datasets", dataset("so-lieu-mat", "restricted")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&steward, "so-lieu-mat", "bang-chinh", "ma_xa,so_luong\n03646,5\n".into()).await;
    let hidden = steward.get("/api/v1/datasets/so-lieu-mat").await;
    let hidden_id = hidden.body["id"].as_str().unwrap().to_string();
    let hidden_resource = hidden.body["resources"][0]["id"].as_str().unwrap().to_string();

    // Never in anonymous search, lists, facets or reads; it looks exactly like nothing.
    let (_, all) = action(&anon, "package_search", json!({"q": "so lieu mat", "rows": 1000})).await;
    assert_eq!(all["result"]["count"], 0, "{all}");
    let (_, all) = action(&anon, "package_search", json!({"rows": 1000, "facet.field": ["tags"]})).await;
    assert!(!names(&all["result"]).contains(&"so-lieu-mat".to_string()));
    assert!(all["result"]["results"].as_array().unwrap().iter().all(|p| p["private"] == false));
    let (_, list) = action(&anon, "package_list", json!({})).await;
    assert!(!list["result"].as_array().unwrap().contains(&json!("so-lieu-mat")));
    for id in ["so-lieu-mat", hidden_id.as_str()] {
        let (status, body) = action(&anon, "package_show", json!({"id": id})).await;
        assert_eq!((status, error_type(&body)), (StatusCode::NOT_FOUND, "Not Found Error"), "{body}");
    }
    let missing = "01a00000-0000-7000-8000-000000000000";
    let (hidden_status, hidden_body) = action(&anon, "datastore_search", json!({"resource_id": hidden_resource})).await;
    let (missing_status, missing_body) = action(&anon, "datastore_search", json!({"resource_id": missing})).await;
    assert_eq!((hidden_status, missing_status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        hidden_body["error"]["message"].as_str().unwrap().replace(&hidden_resource, "ID"),
        missing_body["error"]["message"].as_str().unwrap().replace(missing, "ID")
    );
    let (status, body) = action(&anon, "resource_show", json!({"id": hidden_resource})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        action(&anon, "datastore_search_sql", json!({"sql": format!("SELECT * FROM \"{hidden_resource}\"")})).await;
    assert_eq!((status, error_type(&body)), (StatusCode::NOT_FOUND, "Not Found Error"), "{body}");

    // Its owner, with an API token sent the way CKAN clients send it, finds and reads it.
    let token = steward.post("/api/v1/tokens", json!({"name": "ckan"})).await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.text);
    let secret = token.body["secret"].as_str().unwrap();
    let r = anon
        .send(Method::GET, "/api/3/action/package_search?q=so%20lieu%20mat", None, &[("authorization", secret)])
        .await;
    assert_eq!(names(&r.body["result"]), vec!["so-lieu-mat"], "{}", r.text);
    let r = anon
        .send(
            Method::POST,
            "/api/3/action/datastore_search",
            Some(json!({"resource_id": hidden_resource, "filters": {"ma_xa": "03646"}})),
            &[("x-ckan-api-key", secret)],
        )
        .await;
    assert_eq!((r.status, &r.body["result"]["total"]), (StatusCode::OK, &json!(1)), "{}", r.text);
    assert_eq!(r.body["result"]["records"][0]["so_luong"], 5);

    // DCAT the same way: not in the anonymous catalog, a plain 404 on its own; the token shows it.
    let catalog = anon.get("/catalog.ttl").await;
    assert_eq!(catalog.status, StatusCode::OK);
    assert!(catalog.text.contains("dcat:Catalog") && !catalog.text.contains(&hidden_id), "{}", catalog.text);
    let hidden_ttl = anon.get(&format!("/dataset/{hidden_id}.ttl")).await;
    let missing_ttl = anon.get(&format!("/dataset/{missing}.ttl")).await;
    assert_eq!((hidden_ttl.status, &hidden_ttl.text), (StatusCode::NOT_FOUND, &missing_ttl.text));
    let bearer = format!("Bearer {secret}");
    let mine = anon.send(Method::GET, "/catalog.ttl?q=so+lieu+mat", None, &[("authorization", &bearer)]).await;
    assert!(mine.text.contains(&format!("/dataset/{hidden_id}>")), "{}", mine.text);
    assert!(mine.text.contains("access-right/RESTRICTED"), "{}", mine.text);
    let mine =
        anon.send(Method::GET, &format!("/dataset/{hidden_id}.jsonld"), None, &[("authorization", &bearer)]).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert!(mine.headers["content-type"].to_str().unwrap().starts_with("application/ld+json"));

    // Search follows the catalog at once: a new open dataset is found once it has data (not
    // while a draft), a deleted one is gone.
    let r = steward.post("/api/v1/datasets", dataset("kiem-tra-tim-kiem", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (_, found) = action(&anon, "package_search", json!({"q": "Bo du lieu kiem tra tim kiem"})).await;
    assert_eq!(found["result"]["count"], 0, "{found}");
    let catalog = anon.get("/catalog.ttl?q=kiem+tra+tim+kiem").await;
    assert!(!catalog.text.contains("kiem-tra-tim-kiem"), "{}", catalog.text);
    publish_csv(&steward, "kiem-tra-tim-kiem", "bang-chinh", "ma_xa,so_luong\n03646,5\n".into()).await;
    let catalog = anon.get("/catalog.ttl?q=kiem+tra+tim+kiem").await;
    assert!(catalog.text.contains("kiem-tra-tim-kiem"), "{}", catalog.text);
    let (_, found) = action(&anon, "package_search", json!({"q": "Bo du lieu kiem tra tim kiem"})).await;
    assert_eq!(names(&found["result"]), vec!["kiem-tra-tim-kiem"], "{found}");
    let r = steward.delete("/api/v1/datasets/kiem-tra-tim-kiem").await;
    assert!(r.status.is_success(), "{}", r.text);
    let (_, found) = action(&anon, "package_search", json!({"q": "kiem tra tim kiem"})).await;
    assert_eq!(found["result"]["count"], 0, "{found}");
}

/// A search result's package dict, next to the one `package_show` builds afresh for the same dataset.
async fn searched_and_shown(c: &Client, q: &str, host: &str) -> (Value, Value) {
    let path = format!("/api/3/action/package_search?q={}", q.replace(' ', "+"));
    let found = c.send(Method::GET, &path, None, &[("host", host)]).await;
    assert_eq!(found.body["result"]["count"], 1, "{}", found.text);
    let package = found.body["result"]["results"][0].clone();
    let path = format!("/api/3/action/package_show?id={}", package["name"].as_str().unwrap());
    let shown = c.send(Method::GET, &path, None, &[("host", host)]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    (package, shown.body["result"].clone())
}

#[tokio::test]
async fn search_results_follow_every_change_to_a_dataset_its_data_and_its_agency() {
    let s = Server::start(true);
    let admin = Client::signed_in(&s.base, "admin", common::ADMIN_PASSWORD).await;
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let anon = s.client();
    let r = steward.post("/api/v1/datasets", dataset("theo-doi-thay-doi", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let host = "127.0.0.1";

    // A draft, with no data yet, is listed for its owner only.
    let path = "/api/3/action/package_search?q=theo+doi+thay+doi";
    assert_eq!(anon.get(path).await.body["result"]["count"], 0);
    let token = steward.post("/api/v1/tokens", json!({"name": "đồng bộ"})).await;
    let own = Client::with_token(&s.base, token.body["secret"].as_str().unwrap());
    let mine = own.get(path).await;
    assert_eq!(mine.body["result"]["count"], 1, "{}", mine.text);
    assert_eq!(mine.body["result"]["results"][0]["resources"][0]["datastore_active"], false);

    // Data is published: everyone finds it. Searched twice (the second answer is the kept
    // one): the same as package_show.
    publish_csv(&steward, "theo-doi-thay-doi", "bang-chinh", "ma_xa,so_luong\n03646,5\n".into()).await;
    for _ in 0..2 {
        let (found, shown) = searched_and_shown(&anon, "theo doi thay doi", host).await;
        assert_eq!(found, shown);
        assert_eq!(found["title"], "Bộ dữ liệu theo-doi-thay-doi");
        assert_eq!(
            (&found["resources"][0]["datastore_active"], &found["resources"][0]["kho_version"]),
            (&json!(true), &json!(1))
        );
    }

    // The description changes.
    let mut edit = dataset("theo-doi-thay-doi", "open");
    edit["title"] = json!("Theo dõi thay đổi: bản đã sửa");
    edit["description"] = json!("Mô tả mới");
    edit.as_object_mut().unwrap().remove("resources");
    let r = steward.put("/api/v1/datasets/theo-doi-thay-doi", edit).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (found, shown) = searched_and_shown(&anon, "theo doi thay doi", host).await;
    assert_eq!(found, shown);
    assert_eq!((&found["title"], &found["notes"]), (&json!("Theo dõi thay đổi: bản đã sửa"), &json!("Mô tả mới")));

    // The owner agency is renamed.
    let agency = admin.get("/api/v1/agencies/so-tai-chinh").await;
    assert_eq!(agency.status, StatusCode::OK, "{}", agency.text);
    let mut renamed = agency.body.clone();
    renamed["name"] = json!("Sở Tài chính (tên mới)");
    let id = agency.body["id"].as_i64().unwrap();
    let r = admin.put(&format!("/api/v1/agencies/{id}"), renamed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (found, shown) = searched_and_shown(&anon, "theo doi thay doi", host).await;
    assert_eq!(found, shown);
    assert_eq!(found["organization"]["title"], "Sở Tài chính (tên mới)");

    // Links name the address the caller used.
    let (found, shown) = searched_and_shown(&anon, "theo doi thay doi", "dulieu.sonla.gov.vn").await;
    assert_eq!(found, shown);
    assert_eq!(found["url"], "http://dulieu.sonla.gov.vn/datasets/theo-doi-thay-doi");
}

#[tokio::test]
async fn bad_input_gets_ckan_errors_that_say_what_is_wrong() {
    let s = Server::start(true);
    let anon = s.client();

    // Too many rows are cut to 1000, as CKAN does; negative starts and unknown fields are refused.
    let (status, body) = action(&anon, "package_search", json!({"rows": 100000})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["results"].as_array().unwrap().len(), body["result"]["count"].as_u64().unwrap() as usize);
    let (status, body) = action(&anon, "package_search", json!({"start": -1})).await;
    assert_eq!((status, error_type(&body)), (StatusCode::CONFLICT, "Validation Error"), "{body}");
    assert!(body["error"]["start"][0].as_str().unwrap().contains("natural number"), "{body}");
    for (params, needle) in [
        (json!({"fq": "mat_khau:1"}), "unknown field \"mat_khau\""),
        (json!({"fq": "tags:\"open"}), "not closed"),
        (json!({"fq": "metadata_modified:[hom qua TO *]"}), "not a date"),
        (json!({"sort": "password desc"}), "cannot sort by 'password'"),
        (json!({"facet.field": "[\"secret\"]"}), "unknown field \"secret\""),
    ] {
        let (status, body) = action(&anon, "package_search", params.clone()).await;
        assert_eq!((status, error_type(&body)), (StatusCode::CONFLICT, "Search Query Error"), "{params}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{params}: {body}");
    }

    // Query syntax of other engines is just words; empty and enormous queries answer.
    for q in ["", "*:*", "title:(dan AND so)^2 OR 1=1; DROP TABLE datasets; --", "\"dân số\"~3 +[* TO *]"] {
        let (status, body) = action(&anon, "package_search", json!({"q": q})).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    let (status, body) = action(&anon, "package_search", json!({"q": "dân số ".repeat(20_000)})).await;
    assert_eq!((status, body["result"]["count"].as_u64().map(|n| n > 0)), (StatusCode::OK, Some(true)), "{body}");

    // Malformed bodies and unknown actions.
    let r = anon
        .send_request(Method::POST, "/api/3/action/package_search", &[], |req| {
            req.header("content-type", "application/json").body("{\"q\": ")
        })
        .await;
    assert_eq!((r.status, error_type(&r.body)), (StatusCode::BAD_REQUEST, "Validation Error"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("JSON Error"), "{}", r.text);
    let r = anon.get("/api/3/action/package_delete").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("package_delete"), "{}", r.text);

    // The DataStore: writing SQL is refused before it runs; filters must name real fields.
    let (_, pkg) = action(&anon, "package_show", json!({"id": "dan-so-dien-tich-tinh"})).await;
    let resource = pkg["result"]["resources"][0]["id"].as_str().unwrap().to_string();
    for sql in [format!("DELETE FROM \"{resource}\""), format!("DROP TABLE \"{resource}\"")] {
        let (status, body) = action(&anon, "datastore_search_sql", json!({"sql": sql})).await;
        assert_eq!((status, error_type(&body)), (StatusCode::CONFLICT, "Validation Error"), "{sql}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("read-only"), "{body}");
    }
    let (status, body) =
        action(&anon, "datastore_search_sql", json!({"sql": format!("SELECT count(*) AS n FROM \"{resource}\"")}))
            .await;
    assert_eq!((status, &body["result"]["records"][0]["n"]), (StatusCode::OK, &json!(34)), "{body}");
    let (status, body) =
        action(&anon, "datastore_search", json!({"resource_id": resource, "filters": {"khong_co": "1"}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("khong_co"), "{body}");
    let (status, body) = action(&anon, "datastore_search", json!({"resource_id": resource, "limit": -5})).await;
    assert_eq!((status, error_type(&body)), (StatusCode::CONFLICT, "Validation Error"), "{body}");

    // The formats CKAN clients ask for.
    let (_, lists) = action(
        &anon,
        "datastore_search",
        json!({"resource_id": resource, "records_format": "lists", "fields": "ma_tinh", "sort": "ma_tinh desc", "limit": 2}),
    )
    .await;
    let rows = lists["result"]["records"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{lists}");
    assert!(rows[0][0].as_str().unwrap() > rows[1][0].as_str().unwrap(), "{lists}");
    let (_, csv) = action(
        &anon,
        "datastore_search",
        json!({"resource_id": resource, "records_format": "csv", "fields": ["ma_tinh"], "filters": {"ma_tinh": "01"}}),
    )
    .await;
    assert_eq!(csv["result"]["records"], "01\n", "{csv}");
}

#[tokio::test]
async fn anonymous_api_use_is_limited_per_address_and_a_token_lifts_the_limit() {
    let s = Server::start_with(true, &[("KHO_ANONYMOUS_API_PER_MINUTE", "5")]);
    let anon = s.client();
    for _ in 0..5 {
        assert_eq!(anon.get("/api/3/action/package_list").await.status, StatusCode::OK);
    }
    // The sixth call in the minute: 429, how long to wait, and how to avoid it.
    for path in ["/api/3/action/package_list", "/api/v1/datasets", "/catalog.ttl"] {
        let r = anon.get(path).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}: {}", r.text);
        assert_eq!(r.body["code"], "rate_limited");
        assert!(r.body["message"].as_str().unwrap().contains("API key"), "{}", r.text);
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // Pages are not API calls; a made-up key does not lift the limit.
    assert_eq!(anon.get("/datasets").await.status, StatusCode::OK);
    let r = anon.send(Method::GET, "/api/v1/datasets", None, &[("authorization", "Bearer kho_made_up")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // A real key does, however it is sent.
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    assert_eq!(steward.get("/api/v1/datasets").await.status, StatusCode::OK, "a session is not limited");
    let token = steward.post("/api/v1/tokens", json!({"name": "harvester"})).await;
    let secret = token.body["secret"].as_str().unwrap();
    let bearer = format!("Bearer {secret}");
    for _ in 0..10 {
        let r = anon.send(Method::GET, "/api/v1/datasets", None, &[("authorization", &bearer)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = anon.send(Method::GET, "/api/3/action/package_list", None, &[("x-ckan-api-key", secret)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

#[tokio::test]
async fn open_data_status_counts_agencies_and_fresh_open_datasets_live() {
    let s = Server::start(true);
    let anon = s.client();
    let before = anon.get("/api/v1/open-data/status").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let (_, found) = action(&anon, "package_search", json!({"rows": 0, "facet.field": ["organization"]})).await;
    let result = &found["result"];
    assert_eq!(before.body["open_datasets"], result["count"]);
    let publishers = result["search_facets"]["organization"]["items"].as_array().unwrap().len();
    assert_eq!(before.body["agencies_with_open_data"], publishers);
    let health =
        |b: &Value| b["by_agency"].as_array().unwrap().iter().find(|a| a["code"] == "so-y-te").cloned().unwrap();
    assert_eq!(health(&before.body)["open_datasets"], 0);

    // The Department of Health publishes its first open dataset, with data.
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("tram-y-te-mo", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&steward, "tram-y-te-mo", "bang-chinh", "ma_xa,so_luong\n03646,5\n".into()).await;
    // A restricted one counts for nothing.
    let r = steward.post("/api/v1/datasets", dataset("ho-so-benh-an", "restricted")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let after = anon.get("/api/v1/open-data/status").await.body;
    let n = |b: &Value, k: &str| b[k].as_u64().unwrap();
    assert_eq!(n(&after, "agencies_with_open_data"), n(&before.body, "agencies_with_open_data") + 1);
    assert_eq!(n(&after, "open_datasets"), n(&before.body, "open_datasets") + 1);
    assert_eq!(
        n(&after, "open_datasets_updated_within_six_months"),
        n(&before.body, "open_datasets_updated_within_six_months") + 1
    );
    let mine = health(&after);
    assert_eq!((mine["open_datasets"].as_u64(), mine["updated_within_six_months"].as_u64()), (Some(1), Some(1)));
    let expected = (n(&after, "agencies_with_open_data") as f64 * 1000.0 / n(&after, "agencies") as f64).round() / 10.0;
    assert_eq!(after["agencies_with_open_data_percent"].as_f64(), Some(expected));

    // The agency's public page lists its open dataset and not the restricted one; the status page shows the share.
    let page = anon.get("/agencies/so-y-te").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Bộ dữ liệu tram-y-te-mo") && !page.text.contains("ho-so-benh-an"), "{}", page.text);
    let page = anon.get("/open-data").await;
    assert!(page.text.contains(&format!("{expected}%")), "{}", page.text);
    assert_eq!(anon.get("/agencies/khong-co").await.status, StatusCode::NOT_FOUND);
}
