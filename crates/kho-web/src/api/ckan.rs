//! The CKAN Action API (`/api/3/action/{name}`, read actions), so that CKAN clients (`ckanapi`),
//! CKAN harvesters and the national portal can read the province's open data unchanged.
//!
//! Answers use CKAN's envelope (`help`, `success`, `result`; errors carry `__type`) and CKAN's
//! field names; organizations are kho's agencies (named by their code) and groups are sectors.
//! Callers are anonymous or send an API token (`Authorization: <token>`, with or without
//! `Bearer`, or `X-CKAN-API-Key`); what they find is exactly what kho's own API shows them, and
//! a table they may not read answers exactly like one that does not exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kho_core::model::{Agency, Dataset, ResourceVersion};
use kho_core::{Error, ErrorCode};
use kho_service::Ctx;
use kho_service::query::{Filter, FilterOp, RowsQuery, SortKey as RowSort};
use kho_service::search::{DOWNLOAD_FORMATS, FoundDataset, Latest};
use kho_service::search::{DateField, Facet, Filter as SearchFilter, SearchQuery, SortKey};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::state::AppState;

/// Largest page of `package_search` (CKAN's `ckan.search.rows_max`); larger requests are cut.
const ROWS_MAX: i64 = 1000;
/// Largest page of `datastore_search` (kho's rows API limit).
const DATASTORE_ROWS_MAX: i64 = 10_000;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/3/action/{name}", axum::routing::get(action).post(action))
        .route("/api/action/{name}", axum::routing::get(action).post(action))
}

/// A CKAN error: its `__type`, message, HTTP status, and for validation errors the fields.
struct CkanError {
    kind: &'static str,
    message: String,
    status: StatusCode,
    fields: Option<Map<String, Value>>,
}

impl CkanError {
    fn validation(field: &str, message: impl Into<String>) -> CkanError {
        let message = message.into();
        let mut fields = Map::new();
        fields.insert(field.to_string(), json!([message.clone()]));
        CkanError {
            kind: "Validation Error",
            message: format!("{field}: {message}"),
            status: StatusCode::CONFLICT,
            fields: Some(fields),
        }
    }

    fn search(message: impl Into<String>) -> CkanError {
        CkanError { kind: "Search Query Error", message: message.into(), status: StatusCode::CONFLICT, fields: None }
    }

    fn not_found(message: impl Into<String>) -> CkanError {
        CkanError { kind: "Not Found Error", message: message.into(), status: StatusCode::NOT_FOUND, fields: None }
    }
}

impl From<Error> for CkanError {
    fn from(e: Error) -> Self {
        use ErrorCode::*;
        let (kind, status) = match e.code {
            NotFound => ("Not Found Error", StatusCode::NOT_FOUND),
            Forbidden
            | AuthenticationRequired
            | InvalidToken
            | TokenExpired
            | TokenRevoked
            | InvalidCredentials
            | CsrfFailed => ("Authorization Error", StatusCode::FORBIDDEN),
            PasswordChangeRequired => ("Authorization Error", StatusCode::FORBIDDEN),
            TooManyAttempts | RateLimited => ("Rate Limit Error", StatusCode::TOO_MANY_REQUESTS),
            Internal => ("Internal Server Error", StatusCode::INTERNAL_SERVER_ERROR),
            Unavailable => ("Service Unavailable", StatusCode::SERVICE_UNAVAILABLE),
            // CKAN answers every refused input with a validation error and 409; sizes and media
            // types keep their own statuses, which CKAN's clients report as they are.
            PayloadTooLarge => ("Validation Error", StatusCode::PAYLOAD_TOO_LARGE),
            UnsupportedMediaType => ("Validation Error", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            BadRequest
            | InvalidJson
            | InvalidQuery
            | SqlNotReadOnly
            | QueryLimit
            | InvalidFile
            | ValidationFailed
            | InvalidTableSchema
            | UnknownDictionaryTerm
            | UnknownAdminUnit
            | UnknownAgency
            | PersonalDataInOpenDataset
            | InvalidSlug
            | SlugTaken
            | UsernameTaken
            | TermVersionExists
            | Conflict => ("Validation Error", StatusCode::CONFLICT),
        };
        if status.is_server_error() {
            tracing::error!(code = e.code.as_str(), message = %e.message, "internal error");
            return CkanError { kind, message: "internal error; it has been logged".into(), status, fields: None };
        }
        CkanError { kind, message: e.message, status, fields: None }
    }
}

type Params = Map<String, Value>;

/// The request's parameters: the JSON object of a POST body, or the query string of a GET.
fn params(method: &Method, raw: Option<String>, body: &Bytes) -> Result<Params, CkanError> {
    let mut p = Params::new();
    if let Some(q) = raw {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            p.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    if *method == Method::POST && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => p.extend(m),
            Ok(_) => return Err(CkanError::validation("body", "send a JSON object of the action's parameters")),
            Err(e) => {
                return Err(CkanError {
                    kind: "Validation Error",
                    message: format!("JSON Error: {e} (line {}, column {})", e.line(), e.column()),
                    status: StatusCode::BAD_REQUEST,
                    fields: None,
                });
            }
        }
    }
    Ok(p)
}

fn text(p: &Params, name: &str) -> Option<String> {
    match p.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(p: &Params, name: &str, default: i64) -> Result<i64, CkanError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            n.ok_or_else(|| CkanError::validation(name, "Invalid integer"))
        }
    }
}

fn natural(p: &Params, name: &str, default: i64) -> Result<i64, CkanError> {
    let n = int(p, name, default)?;
    if n < 0 {
        return Err(CkanError::validation(name, "Must be a natural number"));
    }
    Ok(n)
}

fn boolean(p: &Params, name: &str, default: bool) -> Result<bool, CkanError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(CkanError::validation(name, "Must be true or false")),
        },
        Some(_) => Err(CkanError::validation(name, "Must be true or false")),
    }
}

/// A list parameter: a JSON list, a JSON list written as text, or comma-separated text.
fn list(p: &Params, name: &str) -> Result<Option<Vec<String>>, CkanError> {
    let items = |v: &Vec<Value>| -> Result<Vec<String>, CkanError> {
        v.iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| CkanError::validation(name, "Must be a list of text"))
            })
            .collect()
    };
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => items(a).map(Some),
        Some(Value::String(s)) if s.trim_start().starts_with('[') => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => items(&a).map(Some),
            _ => Err(CkanError::validation(name, "Must be a JSON list")),
        },
        Some(Value::String(s)) => {
            Ok(Some(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()))
        }
        Some(_) => Err(CkanError::validation(name, "Must be a list")),
    }
}

fn required(p: &Params, name: &str) -> Result<String, CkanError> {
    text(p, name).filter(|s| !s.trim().is_empty()).ok_or_else(|| CkanError::validation(name, "Missing value"))
}

/// The caller: an API token (CKAN clients send it bare in `Authorization`, or in
/// `X-CKAN-API-Key`), or anonymous.
async fn caller(s: &AppState, headers: &HeaderMap, ip: Option<String>) -> Result<Ctx, CkanError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-ckan-api-key"))
        .map(|v| {
            v.to_str().map_err(|_| CkanError::from(Error::new(ErrorCode::InvalidToken, "the token is not valid text")))
        })
        .transpose()?;
    match token.map(|t| t.trim().trim_start_matches("Bearer ").trim()).filter(|t| !t.is_empty()) {
        Some(t) => Ok(Ctx { principal: s.kho.token_principal(t).await?, ip, purpose: None }),
        None => Ok(Ctx::anonymous(ip)),
    }
}

/// The address the caller reached us at, for links in answers.
async fn action(
    State(s): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Response {
    let site = crate::extract::site_url(&s, &headers);
    let help = format!(
        "{site}/api/3/action/help_show?name={}",
        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    let ip = crate::extract::client_ip_of(&headers, Some(&req), &s.config);
    let answer = async {
        let p = params(&method, raw, &body)?;
        let ctx = caller(&s, &headers, ip).await?;
        run(&s, &ctx, &site, &name, &p).await
    }
    .await;
    match answer {
        Ok(result) => {
            let help = Value::String(help).to_string();
            let body = object_text([("help", help.as_str()), ("result", &result), ("success", "true")]);
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            let mut error = e.fields.unwrap_or_default();
            error.insert("__type".into(), Value::String(e.kind.into()));
            error.insert("message".into(), Value::String(e.message));
            (e.status, axum::Json(json!({"help": help, "success": false, "error": error}))).into_response()
        }
    }
}

/// A JSON object written from values that are JSON text already (kept package dicts, the query
/// engine's records), so that they are not parsed and written again. Keys in the order given.
fn object_text<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (n, (key, value)) in entries.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.to_string()).to_string());
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

/// An action's result as JSON text.
async fn run(s: &AppState, ctx: &Ctx, site: &str, name: &str, p: &Params) -> Result<String, CkanError> {
    let value = match name {
        "package_search" => return package_search(s, ctx, site, p).await,
        "status_show" => status_show(s, site).await,
        "package_list" => package_list(s, ctx, p),
        "package_show" => package_show(s, ctx, site, p).await,
        "organization_list" => organization_list(s, ctx, p).await,
        "organization_show" => organization_show(s, ctx, site, p).await,
        "group_list" => group_list(s, ctx, p),
        "group_show" => group_show(s, ctx, site, p).await,
        "tag_list" => tag_list(s, ctx, p),
        "license_list" => Ok(license_list()),
        "resource_show" => resource_show(s, ctx, site, p).await,
        "datastore_search" => return datastore_search(s, ctx, p).await,
        "datastore_search_sql" => datastore_search_sql(s, ctx, p).await,
        "help_show" => help_show(p),
        other => Err(CkanError {
            kind: "Not Found Error",
            message: format!("Action name not known: {other}"),
            status: StatusCode::BAD_REQUEST,
            fields: None,
        }),
    };
    value.map(|v| v.to_string())
}

const ACTIONS: &[(&str, &str)] = &[
    ("status_show", "Site title, URL, default language and the CKAN API version this follows."),
    ("package_list", "Names of the datasets you can see (limit, offset)."),
    ("package_search", "Search datasets: q, fq, sort, rows (≤1000), start, facet.field, facet.limit."),
    ("package_show", "One dataset by id or name."),
    ("organization_list", "Agencies (all_fields, sort, limit, offset)."),
    ("organization_show", "One agency by code, with its datasets (include_datasets)."),
    ("group_list", "Sectors of the datasets you can see."),
    ("group_show", "One sector, with its datasets."),
    ("tag_list", "Tags of the datasets you can see (query)."),
    ("license_list", "Licences datasets may carry."),
    ("resource_show", "One table (resource) by id."),
    (
        "datastore_search",
        "Rows of a table: filters, q, fields, sort, limit, offset, include_total, records_format (csv and tsv text cells are neutralised against spreadsheet formulas unless raw=true).",
    ),
    ("datastore_search_sql", "One read-only SQL statement; tables named by resource id or \"dataset\".\"table\"."),
    ("help_show", "What an action does."),
];

fn help_show(p: &Params) -> Result<Value, CkanError> {
    let name = required(p, "name")?;
    ACTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| Value::String(d.to_string()))
        .ok_or_else(|| CkanError::not_found(format!("Action name not known: {name}")))
}

async fn status_show(s: &AppState, site: &str) -> Result<Value, CkanError> {
    let province = s
        .kho
        .get_admin_unit(kho_core::model::AdminEra::Current, &s.kho.config().province_code)
        .await
        .map(|u| u.full_name)
        .unwrap_or_default();
    Ok(json!({
        "site_title": format!("Cổng dữ liệu mở — {province}").trim_end_matches(" — ").to_string(),
        "site_description": "Dữ liệu mở của tỉnh: tìm, xem trước, tải về và truy vấn qua API.",
        "site_url": site,
        "error_emails_to": null,
        "locale_default": "vi",
        "extensions": ["datastore", "kho"],
        // The version of CKAN's Action API whose answers these follow.
        "ckan_version": "2.10.4",
        "kho_version": env!("CARGO_PKG_VERSION"),
    }))
}

fn ckan_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Visible datasets, searched (anonymous callers: open ones only).
fn search(s: &AppState, ctx: &Ctx, q: SearchQuery) -> Result<kho_service::search::SearchResult, CkanError> {
    Ok(s.kho.search_datasets(ctx, q)?)
}

fn package_list(s: &AppState, ctx: &Ctx, p: &Params) -> Result<Value, CkanError> {
    let limit = natural(p, "limit", i64::MAX)? as usize;
    let offset = natural(p, "offset", 0)? as usize;
    let found =
        search(s, ctx, SearchQuery { sort: vec![(SortKey::Name, false)], offset, limit, ..Default::default() })?;
    Ok(Value::Array(found.hits.iter().map(|d| Value::String(d.name.clone())).collect()))
}

fn facet_of(field: &str) -> Option<Facet> {
    Some(match field {
        "organization" | "owner_org" => Facet::Agency,
        "groups" => Facet::Sector,
        "tags" => Facet::Tag,
        "res_format" => Facet::Format,
        "license_id" => Facet::License,
        "frequency" | "extras_frequency" => Facet::Frequency,
        "spatial" | "extras_spatial" => Facet::Spatial,
        _ => return None,
    })
}

const FQ_FIELDS: &str = "organization, owner_org, groups, tags, res_format, license_id, frequency, spatial, name, id, \
metadata_modified, metadata_created, dataset_type, type, state";

/// Split an `fq` into clauses: `field:value`, `field:"quoted value"`, `field:[A TO B]`, each
/// optionally after `+` or `-`.
fn fq_clauses(fq: &str) -> Result<Vec<(bool, String, String)>, CkanError> {
    let mut out = Vec::new();
    let mut chars = fq.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let negated = first == '-';
        if first == '-' || first == '+' {
            chars.next();
        }
        let mut field = String::new();
        while let Some(&c) = chars.peek() {
            if c == ':' || c.is_whitespace() {
                break;
            }
            field.push(c);
            chars.next();
        }
        if chars.next() != Some(':') || field.is_empty() {
            return Err(CkanError::search(format!(
                "fq: write clauses as field:value (near \"{field}\"); fields: {FQ_FIELDS}"
            )));
        }
        let mut value = String::new();
        match chars.peek() {
            Some('"') => {
                chars.next();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    value.push(c);
                }
                if !closed {
                    return Err(CkanError::search(format!("fq: the quote after {field}: is not closed")));
                }
            }
            Some('[') | Some('{') => {
                let mut closed = false;
                for c in chars.by_ref() {
                    value.push(c);
                    if c == ']' || c == '}' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(CkanError::search(format!("fq: the range after {field}: is not closed with ]")));
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((negated, field, value));
    }
    Ok(out)
}

/// A Solr date: `*`, `NOW`, or an ISO date-time (`Z` or not, fractions or not), or a date.
fn solr_date(field: &str, v: &str) -> Result<Option<OffsetDateTime>, CkanError> {
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    if v.eq_ignore_ascii_case("NOW") {
        return Ok(Some(OffsetDateTime::now_utc()));
    }
    let iso = v.trim_end_matches('Z');
    let parsed = time::PrimitiveDateTime::parse(iso, &time::format_description::well_known::Iso8601::DEFAULT)
        .map(|t| t.assume_utc())
        .or_else(|_| {
            time::Date::parse(iso, &time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        });
    parsed.map(Some).map_err(|_| {
        CkanError::search(format!("fq: {field}: '{v}' is not a date (write 2025-01-31T00:00:00Z, a date, NOW or *)"))
    })
}

fn fq_filters(fq: &str) -> Result<Vec<SearchFilter>, CkanError> {
    let mut out = Vec::new();
    for (negated, field, value) in fq_clauses(fq)? {
        let value = value.trim().to_string();
        if let Some(facet) = facet_of(&field) {
            out.push(if negated { SearchFilter::IsNot(facet, value) } else { SearchFilter::Is(facet, value) });
            continue;
        }
        match field.as_str() {
            "metadata_modified" | "metadata_created" => {
                let inner = value.trim_start_matches(['[', '{']).trim_end_matches([']', '}']);
                let (from, to) = inner.split_once(" TO ").ok_or_else(|| {
                    CkanError::search(format!("fq: {field} takes a range, e.g. {field}:[2025-01-01T00:00:00Z TO *]"))
                })?;
                let which = if field == "metadata_modified" { DateField::Modified } else { DateField::Created };
                if negated {
                    return Err(CkanError::search(format!("fq: -{field} is not supported; give the range wanted")));
                }
                out.push(SearchFilter::Between(which, solr_date(&field, from)?, solr_date(&field, to)?));
            }
            "name" | "id" if negated => {
                return Err(CkanError::search(format!("fq: -{field} is not supported; name the datasets wanted")));
            }
            "name" | "id" => out.push(SearchFilter::Dataset(value)),
            // Every dataset here is an active dataset: these select all or nothing.
            "dataset_type" | "type" | "state" => {
                let all = matches!(value.as_str(), "dataset" | "active" | "*");
                if all == negated {
                    out.push(SearchFilter::Dataset(String::new()));
                }
            }
            other => return Err(CkanError::search(format!("fq: unknown field \"{other}\"; fields: {FQ_FIELDS}"))),
        }
    }
    Ok(out)
}

fn sort_keys(sort: &str) -> Result<Vec<(SortKey, bool)>, CkanError> {
    let mut out = Vec::new();
    for part in sort.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => return Err(CkanError::search(format!("sort: '{o}' after {field}: write asc or desc"))),
        };
        let key = match field {
            "score" => SortKey::Relevance,
            "metadata_modified" => SortKey::Modified,
            "metadata_created" => SortKey::Created,
            "name" => SortKey::Name,
            "title" | "title_string" => SortKey::Title,
            "id" => SortKey::Id,
            "views_total" | "views_recent" | "downloads" => SortKey::Downloads,
            other => {
                return Err(CkanError::search(format!(
                    "sort: cannot sort by '{other}' (score, metadata_modified, metadata_created, name, title_string, id, downloads)"
                )));
            }
        };
        out.push((key, desc));
    }
    if out.is_empty() {
        out = vec![(SortKey::Relevance, true), (SortKey::Modified, true)];
    }
    Ok(out)
}

/// The answer as JSON text: the package dicts are spliced in as kept (see [`PackageCache`]).
async fn package_search(s: &AppState, ctx: &Ctx, site: &str, p: &Params) -> Result<String, CkanError> {
    let rows = natural(p, "rows", 10)?.min(ROWS_MAX) as usize;
    let start = natural(p, "start", 0)? as usize;
    let mut q = text(p, "q").unwrap_or_default();
    if q.trim() == "*:*" || q.trim() == "*" {
        q.clear();
    }
    let mut filters = Vec::new();
    if let Some(fq) = text(p, "fq") {
        filters.extend(fq_filters(&fq)?);
    }
    for fq in list(p, "fq_list")?.unwrap_or_default() {
        filters.extend(fq_filters(&fq)?);
    }
    let sort_text = text(p, "sort").unwrap_or_default();
    let sort = sort_keys(&sort_text)?;
    let facet_fields = list(p, "facet.field")?.unwrap_or_default();
    let mut facets = Vec::new();
    for f in &facet_fields {
        let facet = facet_of(f).ok_or_else(|| {
            CkanError::search(format!(
                "facet.field: unknown field \"{f}\" (organization, groups, tags, res_format, license_id, frequency, spatial)"
            ))
        })?;
        facets.push(facet);
    }
    let facet_limit = int(p, "facet.limit", 50)?;
    let found = search(
        s,
        ctx,
        SearchQuery {
            text: q,
            filters,
            sort,
            offset: start,
            limit: rows,
            facets,
            facet_limit: usize::try_from(facet_limit).ok(),
            ..Default::default()
        },
    )?;
    let agencies = s.kho.shared_agencies().await?;
    let results = package_texts(s, site, &found, &agencies).await?;
    let names: HashMap<&str, &str> = agencies.iter().map(|a| (a.code.as_str(), a.name.as_str())).collect();
    let mut search_facets = Map::new();
    let mut old_facets = Map::new();
    for f in &facet_fields {
        let Some(facet) = facet_of(f) else { continue };
        let counts = found.facets.get(&facet).cloned().unwrap_or_default();
        let items: Vec<Value> = counts
            .iter()
            .map(|(name, count)| {
                let display = display_name(facet, name, &names);
                json!({"name": name, "display_name": display, "count": count})
            })
            .collect();
        old_facets.insert(f.clone(), Value::Object(counts.iter().map(|(n, c)| (n.clone(), json!(c))).collect()));
        search_facets.insert(f.clone(), json!({"title": f, "items": items}));
    }
    let sort = if sort_text.is_empty() { "score desc, metadata_modified desc".to_string() } else { sort_text };
    let results = format!("[{}]", results.iter().map(|r| &**r).collect::<Vec<&str>>().join(","));
    let (count, facets) = (found.total.to_string(), Value::Object(old_facets).to_string());
    let (search_facets, sort) = (Value::Object(search_facets).to_string(), Value::String(sort).to_string());
    // The keys in the order serde_json gives an object's.
    Ok(object_text([
        ("count", count.as_str()),
        ("facets", &facets),
        ("results", &results),
        ("search_facets", &search_facets),
        ("sort", &sort),
    ]))
}

fn display_name(facet: Facet, name: &str, agencies: &HashMap<&str, &str>) -> String {
    match facet {
        Facet::Agency => agencies.get(name).map_or_else(|| name.to_string(), |n| n.to_string()),
        Facet::License => kho_core::license::license(name).map(|l| l.title.to_string()).unwrap_or_else(|| name.into()),
        _ => name.to_string(),
    }
}

/// Package dicts as JSON text, kept per dataset. A page of search results is mostly package
/// dicts, and building them afresh for every search costs more than the search itself (CKAN
/// keeps each package's `data_dict` in its Solr index for the same reason). A kept one is used
/// while it was built from the dataset's current state (the shared copy kho keeps beside its
/// index, replaced at every change), the current agencies and the same site address; anything
/// else builds it again.
#[derive(Default)]
pub struct PackageCache {
    kept: std::sync::RwLock<HashMap<String, KeptPackage>>,
}

struct KeptPackage {
    /// Weak, so that a kept dict holds on to no old state; the pointers only say "the same".
    source: Weak<(Dataset, Latest)>,
    agencies: Weak<Vec<Agency>>,
    site: String,
    json: Arc<str>,
}

/// Kept dicts past which the ones of datasets gone from the index are dropped.
const KEPT_PACKAGES_MAX: usize = 50_000;

impl PackageCache {
    fn get(&self, found: &FoundDataset, agencies: &Arc<Vec<Agency>>, site: &str) -> Option<Arc<str>> {
        let kept = self.kept.read().ok()?;
        let k = kept.get(&found.0.id)?;
        (std::ptr::eq(k.source.as_ptr(), Arc::as_ptr(found))
            && std::ptr::eq(k.agencies.as_ptr(), Arc::as_ptr(agencies))
            && k.site == site)
            .then(|| k.json.clone())
    }

    fn put(&self, found: &FoundDataset, agencies: &Arc<Vec<Agency>>, site: &str, json: Arc<str>) {
        let Ok(mut kept) = self.kept.write() else { return };
        if kept.len() >= KEPT_PACKAGES_MAX {
            kept.retain(|_, k| k.source.strong_count() > 0);
            if kept.len() >= KEPT_PACKAGES_MAX {
                kept.clear();
            }
        }
        let entry = KeptPackage {
            source: Arc::downgrade(found),
            agencies: Arc::downgrade(agencies),
            site: site.to_string(),
            json,
        };
        kept.insert(found.0.id.clone(), entry);
    }
}

/// The package dicts of what a search found, in its order, as JSON text.
async fn package_texts(
    s: &AppState,
    site: &str,
    found: &kho_service::search::SearchResult,
    agencies: &Arc<Vec<Agency>>,
) -> Result<Vec<Arc<str>>, CkanError> {
    let datasets = s.kho.found_datasets(found).await?;
    let mut by_id: Option<BTreeMap<i64, Agency>> = None;
    let mut out = Vec::with_capacity(datasets.len());
    for f in &datasets {
        if let Some(json) = s.ckan_packages.get(f, agencies, site) {
            out.push(json);
            continue;
        }
        let by_id = by_id.get_or_insert_with(|| agencies.iter().map(|a| (a.id, a.clone())).collect());
        let json: Arc<str> = package(site, &f.0, &f.1, by_id).to_string().into();
        s.ckan_packages.put(f, agencies, site, json.clone());
        out.push(json);
    }
    Ok(out)
}

/// The package dicts of what a search found, in its order.
async fn packages(s: &AppState, site: &str, found: &kho_service::search::SearchResult) -> Result<Value, CkanError> {
    let agencies = s.kho.shared_agencies().await?;
    let texts = package_texts(s, site, found, &agencies).await?;
    let mut list = Vec::with_capacity(texts.len());
    for t in texts {
        list.push(serde_json::from_str(&t).map_err(|e| Error::internal(format!("kept package: {e}")))?);
    }
    Ok(Value::Array(list))
}

async fn agencies(s: &AppState) -> Result<BTreeMap<i64, Agency>, CkanError> {
    Ok(s.kho.shared_agencies().await?.iter().map(|a| (a.id, a.clone())).collect())
}

fn organization(a: &Agency) -> Value {
    json!({
        "id": a.code,
        "name": a.code,
        "title": a.name,
        "display_name": a.name,
        "description": a.name_en.clone().unwrap_or_default(),
        "type": "organization",
        "is_organization": true,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "image_display_url": "",
        "created": ckan_time(a.created_at),
    })
}

fn group(name: &str) -> Value {
    json!({
        "id": name,
        "name": name,
        "title": name,
        "display_name": name,
        "description": "",
        "type": "group",
        "is_organization": false,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "image_display_url": "",
    })
}

fn download_url(site: &str, d: &Dataset, table: &str, format: &str) -> String {
    format!("{site}/api/v1/datasets/{}/resources/{table}/versions/latest/data?format={format}", d.input.slug)
}

fn resource(site: &str, d: &Dataset, position: usize, latest: Option<&ResourceVersion>) -> Value {
    let r = &d.resources[position];
    json!({
        "id": r.id,
        "package_id": d.id,
        "name": r.input.title.clone().unwrap_or_else(|| r.input.name.clone()),
        "description": r.input.description.clone().unwrap_or_default(),
        "url": download_url(site, d, &r.input.name, "csv"),
        "url_type": null,
        "format": "CSV",
        "mimetype": "text/csv",
        "mimetype_inner": null,
        "size": null,
        "hash": "",
        "last_modified": latest.map(|v| ckan_time(v.published_at)),
        "created": ckan_time(r.created_at),
        "metadata_modified": ckan_time(latest.map_or(r.modified_at, |v| v.published_at.max(r.modified_at))),
        "position": position,
        "state": "active",
        "resource_type": null,
        "cache_url": null,
        "cache_last_updated": null,
        "datastore_active": latest.is_some(),
        // kho's own: the table's name, its latest version, row count and other formats.
        "kho_table": r.input.name,
        "kho_version": latest.map(|v| v.version),
        "kho_rows": latest.map(|v| v.rows),
        "kho_downloads": latest.map(|_| DOWNLOAD_FORMATS.iter().map(|f| {
            let url = match *f {
                "Data Package" => format!("{site}/api/v1/datasets/{}/datapackage", d.input.slug),
                f => download_url(site, d, &r.input.name, &f.to_ascii_lowercase()),
            };
            (f.to_string(), Value::String(url))
        }).collect::<Map<String, Value>>()),
    })
}

fn package(site: &str, d: &Dataset, latest: &Latest, agencies: &BTreeMap<i64, Agency>) -> Value {
    let i = &d.input;
    let license = i.license.as_deref().and_then(kho_core::license::license);
    let org = i.owner_agency_id.and_then(|id| agencies.get(&id));
    let modified = latest.values().map(|v| v.published_at).fold(d.modified_at, OffsetDateTime::max);
    let resources: Vec<Value> =
        (0..d.resources.len()).map(|n| resource(site, d, n, latest.get(&d.resources[n].id))).collect();
    let mut extras = vec![json!({"key": "frequency", "value": i.frequency.as_str()})];
    extras.push(json!({"key": "access_level", "value": i.access_level.as_str()}));
    if let Some(sp) = &i.spatial {
        extras.push(json!({"key": "spatial", "value": sp}));
    }
    if let Some(t) = i.temporal_start {
        extras.push(json!({"key": "temporal_start", "value": t.to_string()}));
    }
    if let Some(t) = i.temporal_end {
        extras.push(json!({"key": "temporal_end", "value": t.to_string()}));
    }
    json!({
        "id": d.id,
        "name": i.slug,
        "title": i.title,
        "notes": i.description,
        "type": "dataset",
        "state": "active",
        "private": i.access_level != kho_core::model::AccessLevel::Open,
        "license_id": i.license,
        "license_title": license.map(|l| l.title).or(i.license.as_deref()),
        "license_url": license.map(|l| l.url),
        "isopen": license.is_some_and(|l| l.open),
        "author": null,
        "author_email": null,
        "maintainer": i.contact_name,
        "maintainer_email": i.contact_email,
        "url": format!("{site}/datasets/{}", i.slug),
        "version": null,
        "owner_org": org.map(|a| a.code.clone()),
        "organization": org.map(organization),
        "groups": i.sector.iter().map(|s| group(s)).collect::<Vec<_>>(),
        "tags": i.tags.iter().map(|t| json!({"name": t, "display_name": t, "state": "active", "vocabulary_id": null})).collect::<Vec<_>>(),
        "extras": extras,
        "frequency": i.frequency.as_str(),
        "spatial": i.spatial,
        "resources": resources,
        "num_resources": d.resources.len(),
        "num_tags": i.tags.len(),
        "metadata_created": ckan_time(d.created_at),
        "metadata_modified": ckan_time(modified),
        "creator_user_id": null,
        "relationships_as_object": [],
        "relationships_as_subject": [],
    })
}

/// A dataset the caller may read; any other answers exactly like one that does not exist.
async fn visible_dataset(s: &AppState, ctx: &Ctx, id: &str) -> Result<Dataset, CkanError> {
    match s.kho.get_dataset(ctx, id).await {
        Ok(d) => Ok(d),
        Err(e) if matches!(e.code, ErrorCode::NotFound | ErrorCode::Forbidden) => {
            Err(CkanError::not_found("Dataset not found"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn package_show(s: &AppState, ctx: &Ctx, site: &str, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let d = visible_dataset(s, ctx, &id).await?;
    let latest = s.kho.latest_versions(&d).await?;
    Ok(package(site, &d, &latest, &agencies(s).await?))
}

async fn organization_list(s: &AppState, ctx: &Ctx, p: &Params) -> Result<Value, CkanError> {
    let all_fields = boolean(p, "all_fields", false)?;
    let limit = natural(p, "limit", 1000)? as usize;
    let offset = natural(p, "offset", 0)? as usize;
    let sort = text(p, "sort").unwrap_or_else(|| "title asc".into());
    let counts =
        search(s, ctx, SearchQuery { limit: 0, facets: vec![Facet::Agency], facet_limit: None, ..Default::default() })?
            .facets
            .remove(&Facet::Agency)
            .unwrap_or_default();
    let count_of = |code: &str| counts.iter().find(|(c, _)| c == code).map_or(0, |(_, n)| *n);
    let mut orgs: Vec<Agency> = s.kho.list_agencies().await?;
    let mut words = sort.split_whitespace();
    let (field, direction) = (words.next().unwrap_or("title"), words.next().unwrap_or("asc"));
    match field {
        "name" => orgs.sort_by(|a, b| a.code.cmp(&b.code)),
        "title" => orgs.sort_by_key(|a| kho_core::text::fold(&a.name)),
        "package_count" => orgs.sort_by_key(|a| count_of(&a.code)),
        _ => return Err(CkanError::validation("sort", "sort by name, title or package_count, then asc or desc")),
    }
    match direction.to_ascii_lowercase().as_str() {
        "asc" => {}
        "desc" => orgs.reverse(),
        _ => return Err(CkanError::validation("sort", "sort by name, title or package_count, then asc or desc")),
    }
    let page = orgs.iter().skip(offset).take(limit);
    Ok(Value::Array(if all_fields {
        page.map(|a| {
            let mut o = organization(a);
            o["package_count"] = json!(count_of(&a.code));
            o
        })
        .collect()
    } else {
        page.map(|a| Value::String(a.code.clone())).collect()
    }))
}

async fn organization_show(s: &AppState, ctx: &Ctx, site: &str, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let a = s.kho.get_agency(&id).await.map_err(|_| CkanError::not_found("Organization not found"))?;
    let include = boolean(p, "include_datasets", false)?;
    let found = search(
        s,
        ctx,
        SearchQuery {
            filters: vec![SearchFilter::Is(Facet::Agency, a.code.clone())],
            sort: vec![(SortKey::Name, false)],
            limit: if include { 1000 } else { 0 },
            ..Default::default()
        },
    )?;
    let mut o = organization(&a);
    o["package_count"] = json!(found.total);
    if include {
        o["packages"] = packages(s, site, &found).await?;
    }
    Ok(o)
}

fn sector_counts(s: &AppState, ctx: &Ctx) -> Result<Vec<(String, usize)>, CkanError> {
    Ok(search(s, ctx, SearchQuery { limit: 0, facets: vec![Facet::Sector], facet_limit: None, ..Default::default() })?
        .facets
        .remove(&Facet::Sector)
        .unwrap_or_default())
}

fn group_list(s: &AppState, ctx: &Ctx, p: &Params) -> Result<Value, CkanError> {
    let all_fields = boolean(p, "all_fields", false)?;
    let mut sectors = sector_counts(s, ctx)?;
    sectors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(
        sectors
            .into_iter()
            .map(|(name, n)| {
                if all_fields {
                    let mut g = group(&name);
                    g["package_count"] = json!(n);
                    g
                } else {
                    Value::String(name)
                }
            })
            .collect(),
    ))
}

async fn group_show(s: &AppState, ctx: &Ctx, site: &str, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let include = boolean(p, "include_datasets", false)?;
    let found = search(
        s,
        ctx,
        SearchQuery {
            filters: vec![SearchFilter::Is(Facet::Sector, id.clone())],
            sort: vec![(SortKey::Name, false)],
            limit: if include { 1000 } else { 0 },
            ..Default::default()
        },
    )?;
    if found.total == 0 {
        return Err(CkanError::not_found("Group not found"));
    }
    let mut g = group(&id);
    g["package_count"] = json!(found.total);
    if include {
        g["packages"] = packages(s, site, &found).await?;
    }
    Ok(g)
}

fn tag_list(s: &AppState, ctx: &Ctx, p: &Params) -> Result<Value, CkanError> {
    let query = text(p, "query").map(|q| kho_core::text::fold(&q));
    let all_fields = boolean(p, "all_fields", false)?;
    let mut tags =
        search(s, ctx, SearchQuery { limit: 0, facets: vec![Facet::Tag], facet_limit: None, ..Default::default() })?
            .facets
            .remove(&Facet::Tag)
            .unwrap_or_default();
    tags.retain(|(t, _)| query.as_ref().is_none_or(|q| kho_core::text::fold(t).contains(q.as_str())));
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(
        tags.into_iter()
            .map(|(t, _)| {
                if all_fields { json!({"name": t, "display_name": t, "vocabulary_id": null}) } else { Value::String(t) }
            })
            .collect(),
    ))
}

fn license_list() -> Value {
    Value::Array(
        kho_core::license::LICENSES
            .iter()
            .map(|l| {
                json!({
                    "id": l.id, "title": l.title, "url": l.url, "status": "active",
                    "od_conformance": if l.open { "approved" } else { "not reviewed" },
                    "osd_conformance": "not reviewed", "domain_data": true, "domain_content": l.open, "domain_software": false,
                })
            })
            .collect(),
    )
}

/// A table the caller may read, by resource id; any other answers like one that does not exist.
async fn visible_resource(s: &AppState, ctx: &Ctx, id: &str) -> Result<(Dataset, usize), CkanError> {
    let not_found = || CkanError::not_found(format!("Resource \"{id}\" was not found."));
    let (d, r) = s.kho.resource_by_id(ctx, id).await.map_err(|e| match e.code {
        ErrorCode::NotFound | ErrorCode::Forbidden => not_found(),
        _ => e.into(),
    })?;
    let position = d.resources.iter().position(|x| x.id == r.id).ok_or_else(not_found)?;
    Ok((d, position))
}

async fn resource_show(s: &AppState, ctx: &Ctx, site: &str, p: &Params) -> Result<Value, CkanError> {
    let id = required(p, "id")?;
    let (d, position) = visible_resource(s, ctx, &id).await?;
    let latest = s.kho.latest_versions(&d).await?;
    Ok(resource(site, &d, position, latest.get(&id)))
}

/// CKAN's DataStore type names for Table Schema types.
fn datastore_type(t: &str) -> &'static str {
    match t {
        "integer" => "int",
        "number" => "numeric",
        "boolean" => "bool",
        "date" => "date",
        "datetime" => "timestamp",
        "time" => "time",
        _ => "text",
    }
}

fn filter_values(field: &str, v: &Value) -> Result<Vec<String>, CkanError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(CkanError::validation("filters", format!("{field}: give a value or a list of values"))),
    };
    match v {
        Value::Array(a) if a.is_empty() => Err(CkanError::validation("filters", format!("{field}: the list is empty"))),
        Value::Array(a) => a.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

/// The answer as JSON text: records as objects are spliced in as the query engine wrote them.
async fn datastore_search(s: &AppState, ctx: &Ctx, p: &Params) -> Result<String, CkanError> {
    let id = text(p, "resource_id").or_else(|| text(p, "id")).filter(|x| !x.trim().is_empty());
    let id = id.ok_or_else(|| CkanError::validation("resource_id", "Missing value"))?;
    let mut query = RowsQuery {
        limit: natural(p, "limit", 100)?.min(DATASTORE_ROWS_MAX) as usize,
        offset: natural(p, "offset", 0)? as usize,
        total: boolean(p, "include_total", true)?,
        ..Default::default()
    };
    let filters = match p.get("filters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(t)) if t.trim().is_empty() => Map::new(),
        Some(Value::String(t)) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => m,
            _ => return Err(CkanError::validation("filters", "Must be a JSON object of field: value")),
        },
        Some(_) => return Err(CkanError::validation("filters", "Must be a JSON object of field: value")),
    };
    for (field, v) in &filters {
        let values = filter_values(field, v)?;
        let op = if values.len() == 1 { FilterOp::Eq } else { FilterOp::In };
        query.filters.push(Filter { field: field.clone(), op, values });
    }
    match p.get("q") {
        None | Some(Value::Null) => {}
        Some(Value::String(q)) if q.trim().is_empty() => {}
        Some(Value::String(q)) if q.trim_start().starts_with('{') => match serde_json::from_str::<Value>(q) {
            Ok(Value::Object(m)) => {
                for (field, v) in m {
                    let v = filter_values(&field, &v)?.join(" ");
                    query.filters.push(Filter { field, op: FilterOp::Contains, values: vec![v] });
                }
            }
            _ => return Err(CkanError::validation("q", "Must be text or a JSON object of field: text")),
        },
        Some(Value::String(q)) => query.q = Some(q.clone()),
        Some(Value::Object(m)) => {
            for (field, v) in m {
                let v = filter_values(field, v)?.join(" ");
                query.filters.push(Filter { field: field.clone(), op: FilterOp::Contains, values: vec![v] });
            }
        }
        Some(_) => return Err(CkanError::validation("q", "Must be text or a JSON object of field: text")),
    }
    query.fields = list(p, "fields")?;
    if let Some(sort) = text(p, "sort") {
        let mut keys = Vec::new();
        for part in sort.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or_default().trim_matches('"');
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(o) => {
                    return Err(CkanError::validation("sort", format!("'{o}' after {field}: write asc or desc")));
                }
            };
            keys.push(if desc { format!("-{field}") } else { field.to_string() });
        }
        query.sort = RowSort::parse_list(&keys.join(","))?;
    }
    let format = text(p, "records_format").unwrap_or_else(|| "objects".into());
    if !matches!(format.as_str(), "objects" | "lists" | "csv" | "tsv") {
        return Err(CkanError::validation("records_format", "Must be objects, lists, csv or tsv"));
    }
    let (d, position) = visible_resource(s, ctx, &id).await?;
    let table = d.resources[position].input.name.clone();
    let (v, page) = s.kho.rows_in(ctx, &d, &table, None, &query).await.map_err(|e| match e.code {
        ErrorCode::NotFound if e.message.contains("version") => {
            CkanError::not_found(format!("Resource \"{id}\" has no data in the DataStore yet."))
        }
        _ => e.into(),
    })?;
    let fields: Vec<Value> =
        page.fields.iter().map(|f| json!({"id": f.name, "type": datastore_type(f.kind)})).collect();
    let names: Vec<String> = page.fields.iter().map(|f| f.name.clone()).collect();
    // CSV and TSV records are text cells: neutralised against formulas unless `raw` is asked
    // (see the data download), as CKAN's own front end offers them to people to open.
    let raw = boolean(p, "raw", false)?;
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) if raw => s.clone(),
        Value::String(s) => kho_core::text::csv_escape(s).into_owned(),
        v => v.to_string(),
    };
    // Objects are passed on as the engine wrote them; the other shapes are made from them.
    let records = match format.as_str() {
        "objects" => std::str::from_utf8(page.records.as_bytes())
            .map_err(|e| CkanError::from(Error::internal(format!("records: {e}"))))?
            .to_string(),
        "lists" => Value::Array(
            page.records
                .values()?
                .iter()
                .map(|r| Value::Array(names.iter().map(|n| r.get(n).cloned().unwrap_or(Value::Null)).collect()))
                .collect(),
        )
        .to_string(),
        sep => {
            let delimiter = if sep == "csv" { b',' } else { b'\t' };
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
            for r in &page.records.values()? {
                w.write_record(names.iter().map(|n| cell(r.get(n).unwrap_or(&Value::Null))))
                    .map_err(|e| CkanError::from(Error::internal(format!("csv: {e}"))))?;
            }
            let bytes = w.into_inner().map_err(|e| CkanError::from(Error::internal(format!("csv: {e}"))))?;
            Value::String(String::from_utf8_lossy(&bytes).into_owned()).to_string()
        }
    };
    let mut next = format!("/api/3/action/datastore_search?resource_id={id}&offset={}", query.offset + query.limit);
    if query.limit != 100 {
        next.push_str(&format!("&limit={}", query.limit));
    }
    let mut out = json!({
        "resource_id": id,
        "fields": fields,
        "records_format": format,
        "limit": query.limit,
        "offset": query.offset,
        "filters": filters,
        "include_total": query.total,
        "total_was_estimated": false,
        "_links": {"start": format!("/api/3/action/datastore_search?resource_id={id}"), "next": next},
        "kho_version": v.version,
    });
    if let Some(total) = page.total {
        out["total"] = json!(total);
    }
    if let Some(q) = &query.q {
        out["q"] = json!(q);
    }
    // The records beside the other keys, all in the order serde_json gives them.
    let mut entries: BTreeMap<&str, String> =
        out.as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v.to_string())).collect();
    entries.insert("records", records);
    Ok(object_text(entries.iter().map(|(k, v)| (*k, v.as_str()))))
}

async fn datastore_search_sql(s: &AppState, ctx: &Ctx, p: &Params) -> Result<Value, CkanError> {
    let sql = required(p, "sql")?;
    let answer = s.kho.sql(ctx, &sql).await.map_err(|e| match e.code {
        ErrorCode::NotFound => CkanError::not_found(e.message),
        _ => CkanError::from(e),
    })?;
    let records: Value = serde_json::from_slice(answer.records.as_bytes())
        .map_err(|e| CkanError::from(Error::internal(format!("records: {e}"))))?;
    let fields: Vec<Value> =
        answer.fields.iter().map(|f| json!({"id": f.name, "type": datastore_type(f.kind)})).collect();
    let mut out = json!({"sql": sql, "fields": fields, "records": records});
    if answer.truncated {
        out["records_truncated"] = json!(true);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_packages_serve_only_the_same_dataset_state_agencies_and_site() {
        let d: Dataset = serde_json::from_value(json!({
            "id": "d1", "slug": "a", "title": "A", "access_level": "open", "frequency": "annual",
            "revision": 1, "created_at": "2026-01-01T00:00:00Z", "modified_at": "2026-01-01T00:00:00Z",
            "resources": []
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let found: FoundDataset = Arc::new((d.clone(), Latest::new()));
        let agencies = Arc::new(Vec::new());
        let cache = PackageCache::default();
        assert_eq!(cache.get(&found, &agencies, "http://a"), None);
        cache.put(&found, &agencies, "http://a", "{\"kept\":1}".into());
        assert_eq!(cache.get(&found, &agencies, "http://a").as_deref(), Some("{\"kept\":1}"));
        assert_eq!(cache.get(&found, &agencies, "http://b"), None, "another address");
        assert_eq!(cache.get(&found, &Arc::new(Vec::new()), "http://a"), None, "agencies read again");
        let changed: FoundDataset = Arc::new((d, Latest::new()));
        assert_eq!(cache.get(&changed, &agencies, "http://a"), None, "a new state of the dataset");
    }

    #[test]
    fn fq_clauses_and_dates() {
        let f = fq_filters(
            r#"+organization:so-y-te tags:"dân số" -res_format:XLSX metadata_modified:[2025-01-01T00:00:00Z TO *]"#,
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], SearchFilter::Is(Facet::Agency, "so-y-te".into()));
        assert_eq!(f[1], SearchFilter::Is(Facet::Tag, "dân số".into()));
        assert_eq!(f[2], SearchFilter::IsNot(Facet::Format, "XLSX".into()));
        assert!(matches!(f[3], SearchFilter::Between(DateField::Modified, Some(_), None)));
        assert!(fq_filters("dataset_type:dataset").unwrap_or_default_for_test().is_empty());
        for bad in
            ["nope:1", "tags:\"open", "metadata_modified:[2025 TO", "metadata_modified:[yesterday TO *]", "justtext"]
        {
            let e = fq_filters(bad).err().map(|e| e.kind);
            assert_eq!(e, Some("Search Query Error"), "{bad}");
        }
        assert_eq!(sort_keys("id asc").ok(), Some(vec![(SortKey::Id, false)]));
        assert!(sort_keys("id sideways").is_err());
        assert!(sort_keys("password desc").is_err());
    }

    trait OrEmpty {
        fn unwrap_or_default_for_test(self) -> Vec<SearchFilter>;
    }

    impl OrEmpty for Result<Vec<SearchFilter>, CkanError> {
        fn unwrap_or_default_for_test(self) -> Vec<SearchFilter> {
            self.unwrap_or_else(|e| panic!("{}", e.message))
        }
    }
}
