//! Visitors talk back over HTTP: problem reports reach the owning agency and its answer is
//! published; data requests are routed, answered and fulfilled; who sees what; spam defences
//! (per-address limit, honeypot, link cap); and bad input of every kind.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Server, csrf_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OPEN: &str = "dan-so-dien-tich-tinh"; // open, owned by Sở Tài chính
const SHARED: &str = "co-so-y-te"; // shared, owned by Sở Y tế
const RESTRICTED: &str = "ho-kinh-doanh-ca-the";

fn ids(items: &Value) -> Vec<i64> {
    items.as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_problem_report_reaches_the_owner_whose_answer_is_published() {
    let s = Server::start(true);
    let anon = s.client();
    let owner = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let other = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let viewer = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;

    let report = json!({
        "category": "wrong_values",
        "description": "Dân số Sơn La năm 2024 ghi 1.300 người, thiếu ba chữ số.",
        "contact": "lan.nguyen@example.vn"
    });
    let r = anon.post(&format!("/api/v1/datasets/{OPEN}/reports"), report).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!((r.body["kind"].as_str(), r.body["status"].as_str()), (Some("problem"), Some("open")));
    assert!(r.body.get("contact").is_none(), "the sender does not get their contact echoed to the public view");

    // The public sees the report without the contact; the owner sees the contact too.
    let public = anon.get(&format!("/api/v1/datasets/{OPEN}/feedback")).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert_eq!(ids(&public.body["reports"]), vec![id]);
    assert!(public.body["reports"][0].get("contact").is_none());
    let inbox = owner.get("/api/v1/feedback?status=open").await;
    assert_eq!(ids(&inbox.body["items"]), vec![id], "{}", inbox.text);
    assert_eq!(inbox.body["items"][0]["contact"], "lan.nguyen@example.vn");
    assert_eq!(other.get("/api/v1/feedback").await.body["total"], 0, "another agency's inbox stays empty");
    assert_eq!(anon.get("/api/v1/feedback").await.status, StatusCode::UNAUTHORIZED);

    // Only the owning agency's stewards answer.
    let answer = json!({"status": "resolved", "answer": "Đã sửa ở phiên bản 2, cảm ơn bạn."});
    let path = format!("/api/v1/feedback/{id}/answer");
    assert_eq!(other.post(&path, answer.clone()).await.code(), "forbidden");
    assert_eq!(viewer.post(&path, answer.clone()).await.code(), "forbidden");
    assert_eq!(anon.post(&path, answer.clone()).await.code(), "authentication_required");
    let empty = owner.post(&path, json!({"status": "answered"})).await;
    assert_eq!(
        (empty.status, empty.body["details"][0]["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("answer"))
    );
    let rerouted = owner.post(&path, json!({"status": "answered", "answer": "x", "agency": "so-y-te"})).await;
    assert_eq!(rerouted.body["details"][0]["path"], "agency", "a report stays with the dataset's owner");
    let done = owner.post(&path, answer).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(
        (done.body["status"].as_str(), done.body["answered_by"].as_str()),
        (Some("resolved"), Some("taichinh.canbo"))
    );

    // The answer is public, who typed it is not; the log holds both the report and the answer.
    let public = anon.get(&format!("/api/v1/feedback/{id}")).await;
    assert_eq!(public.body["answer"], "Đã sửa ở phiên bản 2, cảm ơn bạn.");
    assert!(public.body.get("answered_by").is_none() && public.body.get("contact").is_none());
    let admin = Client::signed_in(&s.base, "admin", common::ADMIN_PASSWORD).await;
    let log = admin.get(&format!("/api/v1/audit?object_id={id}")).await;
    let actions: Vec<&str> = log.body.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"feedback.create") && actions.contains(&"feedback.answer"), "{}", log.text);
    let denied = log.body.as_array().unwrap().iter().filter(|e| e["outcome"] == "denied").count();
    assert_eq!(denied, 2, "the two signed-in refusals are logged: {}", log.text);

    // The dataset page shows the report and the answer, in the visitor's language.
    let (status, html) = anon.page(&format!("/datasets/{OPEN}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Số liệu sai") && html.contains("Đã sửa ở phiên bản 2"), "report and answer on the page");
    assert!(!html.contains("lan.nguyen@example.vn"));
}

#[tokio::test]
async fn a_data_request_is_routed_answered_and_fulfilled() {
    let s = Server::start(true);
    let anon = s.client();
    let admin = Client::signed_in(&s.base, "admin", common::ADMIN_PASSWORD).await;
    let owner = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;

    let unknown = anon
        .post(
            "/api/v1/requests",
            json!({"title": "Giá đất", "description": "Bảng giá đất năm 2026", "agency": "so-khong-co"}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["details"][0]["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("agency"))
    );
    let r = anon
        .post(
            "/api/v1/requests",
            json!({"title": "Dân số theo xã", "description": "Cần dân số từng xã, phường để lập kế hoạch trường học."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["agency_id"], Value::Null, "no agency named: the data center routes it");

    // Unrouted: in the public list, in the administrator's inbox, in no department's.
    assert_eq!(ids(&anon.get("/api/v1/requests").await.body["items"]), vec![id]);
    assert_eq!(owner.get("/api/v1/feedback").await.body["total"], 0);
    assert_eq!(ids(&admin.get("/api/v1/feedback?kind=request").await.body["items"]), vec![id]);
    let path = format!("/api/v1/feedback/{id}/answer");
    assert_eq!(owner.post(&path, json!({"status": "answered", "answer": "x"})).await.code(), "forbidden");

    // The administrator passes it to Sở Tài chính, which answers and then fulfils it.
    let routed = admin
        .post(&path, json!({"status": "answered", "answer": "Đã chuyển Sở Tài chính.", "agency": "so-tai-chinh"}))
        .await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.text);
    assert_eq!(ids(&owner.get("/api/v1/feedback?kind=request").await.body["items"]), vec![id]);
    let bad = owner.post(&path, json!({"status": "resolved", "answer": "Đã công bố", "dataset": "khong-co"})).await;
    assert_eq!(bad.body["details"][0]["path"], "dataset");
    let done = owner.post(&path, json!({"status": "resolved", "answer": "Đã công bố.", "dataset": OPEN})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);

    let list = anon.get("/api/v1/requests?status=resolved").await;
    assert_eq!(ids(&list.body["items"]), vec![id]);
    let item = &list.body["items"][0];
    assert_eq!((item["answer"].as_str(), item["agency_id"].is_i64()), (Some("Đã công bố."), true));
    assert!(item["dataset_id"].is_string());
    assert_eq!(anon.get("/api/v1/requests?status=open").await.body["total"], 0);
    let (status, html) = anon.page(&format!("/requests/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Dân số theo xã") && html.contains("Đã công bố.") && html.contains(&format!("/datasets/{OPEN}"))
    );
    assert!(!html.contains("answer-form"), "visitors get no answer form");
    let (_, html) = owner.page(&format!("/requests/{id}")).await;
    assert!(html.contains("answer-form"), "the agency answers on the same page");
    assert_eq!(anon.page(&format!("/reports/{id}")).await.0, StatusCode::NOT_FOUND, "a request is not a report");

    // Spam taken down disappears from the public list and page, and stays in the inbox.
    let spam = anon
        .post(
            "/api/v1/requests",
            json!({"title": "Mua ngay hôm nay", "description": "Giảm giá mạnh, liên hệ ngay nhé"}),
        )
        .await;
    let spam_id = spam.body["id"].as_i64().unwrap();
    let hidden = admin.post(&format!("/api/v1/feedback/{spam_id}/answer"), json!({"status": "hidden"})).await;
    assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.text);
    assert_eq!(ids(&anon.get("/api/v1/requests").await.body["items"]), vec![id]);
    assert_eq!(anon.get(&format!("/api/v1/feedback/{spam_id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(anon.get("/api/v1/requests?status=hidden").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(admin.get("/api/v1/feedback?status=hidden").await.body["total"], 1);
}

#[tokio::test]
async fn feedback_on_data_a_caller_may_not_read_looks_like_nothing() {
    let s = Server::start(true);
    let anon = s.client();
    let member = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let body = json!({"category": "outdated", "description": "Chưa cập nhật từ năm ngoái."});

    for slug in [RESTRICTED, SHARED, "khong-co-bo-nay"] {
        let r = anon.post(&format!("/api/v1/datasets/{slug}/reports"), body.clone()).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"), "{slug}: {}", r.text);
        assert_eq!(r.body["message"], "dataset not found");
        let r = anon.post(&format!("/api/v1/datasets/{slug}/ratings"), json!({"stars": 5})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(anon.get(&format!("/api/v1/datasets/{slug}/feedback")).await.status, StatusCode::NOT_FOUND);
    }
    // A government user may report on shared data; the public cannot see that report.
    let r = member.post(&format!("/api/v1/datasets/{SHARED}/reports"), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(anon.get(&format!("/api/v1/feedback/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(anon.page(&format!("/reports/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(member.get(&format!("/api/v1/feedback/{id}")).await.status, StatusCode::OK);
    assert_eq!(anon.get("/api/v1/feedback/999999").await.status, StatusCode::NOT_FOUND);

    // A request fulfilled by restricted data: the public sees the answer, not which dataset.
    let admin = Client::signed_in(&s.base, "admin", common::ADMIN_PASSWORD).await;
    let r = anon
        .post("/api/v1/requests", json!({"title": "Hộ kinh doanh", "description": "Danh sách hộ kinh doanh"}))
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/feedback/{id}/answer");
    let done =
        admin.post(&path, json!({"status": "resolved", "answer": "Chỉ chia sẻ nội bộ.", "dataset": RESTRICTED})).await;
    assert!(done.body["dataset_id"].is_string(), "{}", done.text);
    let public = anon.get(&format!("/api/v1/feedback/{id}")).await;
    assert_eq!(
        (public.body["answer"].as_str(), &public.body["dataset_id"]),
        (Some("Chỉ chia sẻ nội bộ."), &Value::Null)
    );
    assert_eq!(anon.get("/api/v1/requests").await.body["items"][0]["dataset_id"], Value::Null);
    let (_, html) = anon.page(&format!("/requests/{id}")).await;
    assert!(html.contains("Chỉ chia sẻ nội bộ.") && !html.contains(RESTRICTED), "{html}");
    assert!(admin.get(&format!("/api/v1/feedback/{id}")).await.body["dataset_id"].is_string());
}

#[tokio::test]
async fn ratings_and_spam_defences() {
    let s = Server::start_with(true, &[("KHO_FEEDBACK_PER_HOUR", "0")]);
    let anon = s.client();
    let path = format!("/api/v1/datasets/{OPEN}/ratings");

    // Bad input, each with what and where; none of it is stored.
    let cases: [(Value, &str, &str); 5] = [
        (json!({"stars": 0}), "stars", "must be 1 to 5, not 0"),
        (json!({"stars": 6}), "stars", "must be 1 to 5, not 6"),
        (
            json!({"title": "Quảng cáo", "description": "http://a.example https://b.example www.c.example"}),
            "description",
            "holds 3 links, at most 2",
        ),
        (
            json!({"title": "Dữ liệu", "description": "Cần dữ liệu trường học", "contact": "gọi tôi"}),
            "contact",
            "is neither",
        ),
        (json!({"title": "ab", "description": "ngắn"}), "title", "is too short"),
    ];
    for (body, field, message) in cases {
        let target = if body.get("stars").is_some() { path.as_str() } else { "/api/v1/requests" };
        let r = anon.post(target, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["details"][0]["path"], field, "{}", r.text);
        assert!(r.body["details"][0]["message"].as_str().unwrap().starts_with(message), "{}", r.text);
    }
    let raw = anon
        .send_request(Method::POST, "/api/v1/requests", &[("content-type", "application/json")], |r| {
            r.body("{\"title\":")
        })
        .await;
    assert_eq!(raw.code(), "invalid_json");
    let unknown =
        anon.post("/api/v1/requests", json!({"title": "Dữ liệu", "description": "Cần dữ liệu", "x": 1})).await;
    assert_eq!(unknown.status.as_u16() / 100, 4, "unknown fields are refused: {}", unknown.text);
    let huge = anon.post("/api/v1/requests", json!({"title": "Dữ liệu", "description": "a".repeat(4001)})).await;
    assert_eq!(huge.body["details"][0]["message"], "is too long: 4001 characters, at most 4000");
    assert_eq!(anon.get("/api/v1/requests").await.body["total"], 0, "nothing bad was stored");

    // The per-address limit counts every submission, accepted or not: 4 an hour here.
    let s = Server::start_with(true, &[("KHO_FEEDBACK_PER_HOUR", "4")]);
    let anon = s.client();
    for stars in [5, 4, 4] {
        let r = anon.post(&path, json!({"stars": stars})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let last = anon.post(&path, json!({"stars": 1})).await;
    assert_eq!((last.body["count"].as_i64(), last.body["average"].as_f64()), (Some(4), Some(3.5)));
    let over = anon.post(&path, json!({"stars": 5})).await;
    assert_eq!((over.status, over.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    let wait: u64 = over.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    let over =
        anon.post("/api/v1/requests", json!({"title": "Dữ liệu", "description": "Cần dữ liệu trường học"})).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "the limit covers every kind of feedback");
    let member = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let r = member.post(&path, json!({"stars": 5})).await;
    assert_eq!(r.status, StatusCode::CREATED, "signed-in members are not limited: {}", r.text);
    let feedback = anon.get(&format!("/api/v1/datasets/{OPEN}/feedback")).await;
    assert_eq!(feedback.body["ratings"]["stars"], json!([1, 0, 0, 2, 2]));

    // The honeypot: a form with the hidden field filled is thanked and dropped.
    let s = Server::start(true);
    let browser = s.client();
    let (_, html) = browser.page(&format!("/datasets/{OPEN}")).await;
    let csrf = csrf_of(&html);
    let fields = |website: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("website", website.to_string()),
            ("category", "missing_data".to_string()),
            ("description", "Thiếu số liệu của xã Mường Bú.".to_string()),
        ]
    };
    let sent = browser
        .http
        .post(s.url(&format!("/datasets/{OPEN}/report")))
        .form(&fields("http://spam.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let thanks = sent.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(browser.get(&format!("/api/v1/datasets/{OPEN}/feedback")).await.body["reports"], json!([]));
    let real = browser.http.post(s.url(&format!("/datasets/{OPEN}/report"))).form(&fields("")).send().await.unwrap();
    assert_eq!((real.status(), real.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, thanks.as_str()));
    let reports = browser.get(&format!("/api/v1/datasets/{OPEN}/feedback")).await.body["reports"].clone();
    assert_eq!(reports.as_array().unwrap().len(), 1);
    let (_, html) = browser.page(&thanks).await;
    assert!(html.contains("Cảm ơn bạn. Báo cáo đã được gửi"));

    // A form with a mistake comes back with the visitor's words and what is wrong (422).
    let short = [("_csrf", csrf.as_str()), ("category", "other"), ("description", "sai"), ("contact", "0912")];
    let r = browser.http.post(s.url(&format!("/datasets/{OPEN}/report"))).form(&short).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    // Said in Vietnamese, each field by its label.
    assert!(
        html.contains("quá ngắn: 3 ký tự, cần ít nhất 10") && html.contains("không phải thư điện tử hay số điện thoại"),
        "{html}"
    );
    assert!(!html.contains("is too short") && !html.contains("<code>description</code>"), "{html}");
    assert!(html.contains(">sai</textarea>") && html.contains("value=\"0912\""));
    // Without the page's anti-forgery token, nothing is accepted.
    let forged = [("category", "other"), ("description", "Thiếu số liệu của xã Mường Bú.")];
    let r = browser.http.post(s.url(&format!("/datasets/{OPEN}/report"))).form(&forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
