//! The JSON API under `/api/v1`, described by OpenAPI 3.1 generated from these handlers.

pub mod agencies;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod ckan;
pub mod dcat;
pub mod dictionary;
pub mod feedback;
pub mod iceberg;
pub mod ingest;
pub mod quality;
pub mod query;
pub mod users;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kho API",
        description = "**Giao diện lập trình (API) của kho** — nền tảng dữ liệu của tỉnh: danh mục bộ dữ liệu, từ điển dữ liệu, \
cơ quan, người dùng và khóa API, đọc và tải dữ liệu, chất lượng dữ liệu, phản ánh của người dân, nhật ký.\n\n\
- Dữ liệu mở đọc được không cần khóa. Với dữ liệu dùng chung hoặc hạn chế, gửi `Authorization: Bearer <khóa>` \
(tạo khóa ở trang Tài khoản hoặc bằng lệnh `kho token create`). Nút **Authorize** bên dưới nhận khóa để thử các lệnh ngay trên trang này.\n\
- Mỗi lỗi trả về `{code, message, details}`; `code` không đổi giữa các phiên bản, `details[].message_vi` là lời giải thích bằng tiếng Việt khi có.\n\
- Bộ lọc viết `filter=trường:phép:giá trị` (eq, ne, gt, gte, lt, lte, in, null, contains); số và ngày viết như bảng hiển thị: `2.000.000`, `3,5`, `15/03/2026`.\n\n\
Ví dụ (dữ liệu mẫu):\n\n\
```sh\n\
B=http://127.0.0.1:8080/api/v1/datasets/dan-so-dien-tich-tinh/resources/tinh-thanh\n\
curl \"$B/rows?q=ha%20noi\"                                      # tìm không dấu\n\
curl \"$B/rows?filter=dan_so:gte:2.000.000&sort=-dan_so&limit=5\" # lọc, sắp xếp\n\
curl \"$B/rows?limit=10&after=<next của trang trước>\"            # phân trang theo khóa\n\
curl \"$B/aggregate?group_by=ten_tinh&measure=sum:dan_so\"       # tổng theo nhóm\n\
curl -o loc.csv \"$B/versions/latest/data?format=csv&bom=true&filter=dan_so:gte:2000000\" # tải đúng các dòng đã lọc\n\
curl http://127.0.0.1:8080/api/3/action/package_search?q=dan%20so  # API tương thích CKAN\n\
```\n\n\
---\n\n\
**The kho API** — the provincial data platform: catalog, data dictionary, agencies, users and tokens, reading and downloading data, \
quality, public feedback, audit. Open data needs no token; otherwise send `Authorization: Bearer <token>` (create tokens in the web pages \
or with `kho token create`). Browser sessions may call the API too; requests that change data must then send the session's `X-CSRF-Token`. \
Every error has the body `{code, message, details}`; `code` is stable.",
        license(name = "MIT", identifier = "MIT")
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Sign-in and the current user"),
        (name = "agencies", description = "The province's agencies and the administrative units"),
        (name = "users", description = "User accounts and API tokens"),
        (name = "catalog", description = "Datasets, resources and Table Schemas"),
        (name = "dictionary", description = "The shared data dictionary"),
        (name = "ingest", description = "Checking and loading data files"),
        (name = "query", description = "Reading published data: rows, aggregates and read-only SQL"),
        (name = "quality", description = "Quality scores: đúng, đủ, sạch, sống"),
        (name = "feedback", description = "Ratings, problem reports and data requests from the public, and the agencies' answers"),
        (name = "audit", description = "The tamper-evident audit log")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("kho_session"))));
    }
}

/// Describe the error responses every endpoint can give, with the shared error body, so that
/// clients see them without each handler repeating them.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::PartialSchema;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert("ErrorBody".into(), crate::error::ErrorBody::schema());
        components.schemas.insert("Detail".into(), kho_core::Detail::schema());
        let codes: Vec<String> = kho_core::ErrorCode::ALL
            .iter()
            .map(|c| format!("`{}` ({}): {}", c.as_str(), crate::error::status_of(*c).as_u16(), c.describe()))
            .collect();
        let body = || {
            ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build()
        };
        let standard = [
            ("400", "Malformed request (bad_request, invalid_json, invalid_query, sql_not_read_only)"),
            ("401", "Not signed in, or the token is invalid, expired or revoked"),
            ("403", "Signed in but not allowed (forbidden, csrf_failed)"),
            ("404", "Not found, or not visible to you"),
            ("413", "Body larger than the server accepts"),
            ("415", "Body is not JSON"),
            ("422", "Input failed validation (`details` names each field), or a query past its limits (query_limit)"),
            ("429", "Too many attempts; see Retry-After"),
            ("500", "Unexpected server error"),
        ];
        for item in openapi.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                for (status, desc) in standard {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        RefOr::T(ResponseBuilder::new().description(desc).content("application/json", body()).build())
                    });
                }
            }
        }
        let info = &mut openapi.info;
        let mut d = info.description.clone().unwrap_or_default();
        d.push_str("\n\n### Error codes\n\n");
        d.push_str(&codes.join("\n\n"));
        info.description = Some(d);
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(agencies::router())
        .merge(users::router())
        .merge(catalog::router())
        .merge(dictionary::router())
        .merge(ingest::router())
        .merge(quality::router())
        .merge(query::router())
        .merge(feedback::router())
        .merge(audit::router())
}
