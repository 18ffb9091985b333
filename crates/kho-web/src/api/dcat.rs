//! DCAT-AP 3 for harvesters, at the addresses ckanext-dcat uses: `/catalog.{ttl,jsonld,rdf}`
//! (paged, 100 datasets a page, with `q` and `modified_since`) and
//! `/dataset/{id}.{ttl,jsonld,rdf}`. `/catalog` alone picks the format from `Accept`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kho_core::{Detail, Error};
use kho_service::dcat::CatalogRequest;
use kho_service::dcat::Format;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::extract::{Caller, site_url};
use crate::state::AppState;

fn document(format: Format, body: Vec<u8>) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

fn negotiated(headers: &HeaderMap) -> Format {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/ld+json") {
        Format::JsonLd
    } else if accept.contains("application/rdf+xml") {
        Format::RdfXml
    } else {
        Format::Turtle
    }
}

fn parse_since(v: &str) -> Result<OffsetDateTime, Error> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, &date_format).map(|d| d.midnight().assume_utc()).map_err(|_| {
        Error::validation(vec![Detail::new(
            "modified_since",
            format!("\"{v}\" is not a date (2026-01-31) or a date and time (2026-01-31T08:00:00Z)"),
        )])
    })
}

async fn catalog_in(
    s: AppState,
    caller: Caller,
    headers: HeaderMap,
    query: Option<String>,
    format: Format,
    path: &str,
) -> Result<Response, ApiError> {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let mut req = CatalogRequest { page: 1, ..Default::default() };
    let mut kept = Vec::new();
    for (k, v) in &params {
        match k.as_str() {
            "page" => {
                req.page = v.parse::<usize>().ok().filter(|p| *p >= 1 && *p <= 1_000_000).ok_or_else(|| {
                    Error::validation(vec![Detail::new("page", format!("\"{v}\" is not a page number (1, 2, …)"))])
                })?;
                continue;
            }
            "q" => req.text = v.chars().take(500).collect(),
            "modified_since" => req.modified_since = Some(parse_since(v)?),
            // Other parameters (a harvester's own, `profiles`) are ignored, as ckanext-dcat does.
            _ => continue,
        }
        kept.push((k.clone(), v.clone()));
    }
    let site = site_url(&s, &headers);
    let mut url = format!("{site}{path}");
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish());
    }
    req.url = url;
    let body = s.kho.dcat_catalog(&caller.ctx, &site, &req, format).await?;
    Ok(document(format, body))
}

pub async fn catalog(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let format = negotiated(&headers);
    catalog_in(s, caller, headers, q, format, "/catalog").await
}

macro_rules! catalog_as {
    ($name:ident, $format:expr, $path:literal) => {
        pub async fn $name(
            State(s): State<AppState>,
            caller: Caller,
            headers: HeaderMap,
            RawQuery(q): RawQuery,
        ) -> Result<Response, ApiError> {
            catalog_in(s, caller, headers, q, $format, $path).await
        }
    };
}

catalog_as!(catalog_ttl, Format::Turtle, "/catalog.ttl");
catalog_as!(catalog_jsonld, Format::JsonLd, "/catalog.jsonld");
catalog_as!(catalog_rdf, Format::RdfXml, "/catalog.rdf");
catalog_as!(catalog_xml, Format::RdfXml, "/catalog.xml");

/// `/dataset/{id}.ttl` (or `.jsonld`, `.rdf`, `.xml`); without an extension, by `Accept`.
pub async fn dataset(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let (id, format) = match file.rsplit_once('.') {
        Some((id, ext)) => (
            id,
            Format::from_extension(ext).ok_or_else(|| {
                Error::not_found("dataset").with_details(vec![Detail::new(
                    "format",
                    format!("\".{ext}\" is not offered; use .ttl, .jsonld or .rdf"),
                )])
            })?,
        ),
        None => (file.as_str(), negotiated(&headers)),
    };
    let site = site_url(&s, &headers);
    let body = s.kho.dcat_dataset(&caller.ctx, &site, id, format).await?;
    Ok(document(format, body))
}

pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/catalog", get(catalog))
        .route("/catalog.ttl", get(catalog_ttl))
        .route("/catalog.jsonld", get(catalog_jsonld))
        .route("/catalog.rdf", get(catalog_rdf))
        .route("/catalog.xml", get(catalog_xml))
        .route("/dataset/{file}", get(dataset))
}
