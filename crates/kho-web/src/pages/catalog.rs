//! Catalog pages: the steward's home, dataset list, dataset and schema forms, dataset view.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use kho_core::model::{AccessLevel, CatalogKind, Dataset, DatasetInput, Frequency, ResourceInput, Role};
use kho_core::table_schema::{FIELD_TYPES, TERM_PROPERTY};
use kho_core::text::slugify;
use kho_core::{Detail, Error, ErrorCode};
use serde_json::{Map, Value, json};

use super::{Base, FormData, Page, PageResult};
use crate::state::AppState;

const BLANK_ROWS: usize = 3;

pub struct DatasetRow {
    pub slug: String,
    pub title: String,
    pub owner: String,
    pub access: &'static str,
    pub access_label: &'static str,
    pub modified: String,
    pub revision: i64,
    pub resources: usize,
}

pub fn date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!("{:02}/{:02}/{} {:02}:{:02}", t.day(), u8::from(t.month()), t.year(), t.hour(), t.minute())
}

pub async fn rows(s: &AppState, tr: crate::i18n::Tr, list: Vec<Dataset>) -> Vec<DatasetRow> {
    let agencies = s.kho.list_agencies().await.unwrap_or_default();
    list.into_iter()
        .map(|d| DatasetRow {
            owner: agencies.iter().find(|a| a.id == d.owner_agency_id()).map(|a| a.name.clone()).unwrap_or_default(),
            slug: d.input.slug,
            title: d.input.title,
            access: d.input.access_level.as_str(),
            access_label: tr.t(&format!("access.{}", d.input.access_level.as_str())),
            modified: date(d.modified_at),
            revision: d.revision,
            resources: d.resources.len(),
        })
        .collect()
}

/// One row of the schema editor.
#[derive(Debug, Clone, Default)]
pub struct FieldRow {
    pub name: String,
    pub title: String,
    pub ty: String,
    pub term: String,
    pub required: bool,
}

/// The values of the dataset form, as typed (so a rejected form comes back as it was sent).
#[derive(Debug, Clone, Default)]
pub struct DatasetForm {
    pub slug: String,
    pub title: String,
    pub title_en: String,
    pub description: String,
    pub owner_agency_id: i64,
    pub access_level: String,
    pub catalogs: Vec<String>,
    pub allowed: Vec<i64>,
    pub license: String,
    pub frequency: String,
    pub sector: String,
    pub tags: String,
    pub spatial: String,
    pub temporal_start: String,
    pub temporal_end: String,
    pub contact_name: String,
    pub contact_email: String,
    pub resource_name: String,
    pub resource_title: String,
    pub rows: Vec<FieldRow>,
    pub schema_json: String,
    /// A schema inferred from a file, whose properties the rows do not show (date formats,
    /// decimal separators) are kept when the steward saves the reviewed rows.
    pub draft_schema: String,
    /// What inference suggested, for the steward to review.
    pub suggestions: Vec<String>,
    /// The file the draft was inferred from.
    pub inferred_from: String,
}

impl DatasetForm {
    fn from_dataset(d: &Dataset) -> Self {
        let i = &d.input;
        DatasetForm {
            slug: i.slug.clone(),
            title: i.title.clone(),
            title_en: i.title_en.clone().unwrap_or_default(),
            description: i.description.clone(),
            owner_agency_id: d.owner_agency_id(),
            access_level: i.access_level.as_str().into(),
            catalogs: i.catalogs.iter().map(|c| c.as_str().to_string()).collect(),
            allowed: i.allowed_agency_ids.clone(),
            license: i.license.clone().unwrap_or_default(),
            frequency: i.frequency.as_str().into(),
            sector: i.sector.clone().unwrap_or_default(),
            tags: i.tags.join(", "),
            spatial: i.spatial.clone().unwrap_or_default(),
            temporal_start: i.temporal_start.map(|d| d.to_string()).unwrap_or_default(),
            temporal_end: i.temporal_end.map(|d| d.to_string()).unwrap_or_default(),
            contact_name: i.contact_name.clone().unwrap_or_default(),
            contact_email: i.contact_email.clone().unwrap_or_default(),
            ..Default::default()
        }
    }

    fn from_form(f: &FormData) -> Self {
        DatasetForm {
            slug: f.text("slug"),
            title: f.text("title"),
            title_en: f.text("title_en"),
            description: f.get("description").unwrap_or("").to_string(),
            owner_agency_id: f.text("owner_agency_id").parse().unwrap_or(0),
            access_level: f.text("access_level"),
            catalogs: f.all("catalogs").into_iter().map(str::to_string).collect(),
            allowed: f.all("allowed_agency_ids").into_iter().filter_map(|v| v.parse().ok()).collect(),
            license: f.text("license"),
            frequency: f.text("frequency"),
            sector: f.text("sector"),
            tags: f.text("tags"),
            spatial: f.text("spatial"),
            temporal_start: f.text("temporal_start"),
            temporal_end: f.text("temporal_end"),
            contact_name: f.text("contact_name"),
            contact_email: f.text("contact_email"),
            resource_name: f.text("resource_name"),
            resource_title: f.text("resource_title"),
            rows: rows_from_form(f),
            schema_json: f.get("schema_json").unwrap_or("").trim().to_string(),
            draft_schema: f.get("draft_schema").unwrap_or("").trim().to_string(),
            suggestions: Vec::new(),
            inferred_from: String::new(),
        }
    }

    /// Build the API input; problems the form itself can see are returned with their field.
    fn to_input(&self) -> (DatasetInput, Vec<Detail>) {
        let mut problems = Vec::new();
        let access_level = self.access_level.parse::<AccessLevel>().unwrap_or_else(|e| {
            problems.push(Detail::new("access_level", e.message));
            AccessLevel::Private
        });
        let frequency = self.frequency.parse::<Frequency>().unwrap_or_else(|e| {
            problems.push(Detail::new("frequency", e.message));
            Frequency::Irregular
        });
        let catalogs = self.catalogs.iter().filter_map(|c| c.parse::<CatalogKind>().ok()).collect();
        let date = |field: &str, v: &str, problems: &mut Vec<Detail>| {
            if v.is_empty() {
                return None;
            }
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(v, &fmt) {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(Detail::new(field, format!("'{v}' is not a date (yyyy-mm-dd)")));
                    None
                }
            }
        };
        let temporal_start = date("temporal_start", &self.temporal_start, &mut problems);
        let temporal_end = date("temporal_end", &self.temporal_end, &mut problems);
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        let input = DatasetInput {
            slug: if self.slug.is_empty() { slugify(&self.title) } else { self.slug.clone() },
            title: self.title.clone(),
            title_en: opt(&self.title_en),
            description: self.description.clone(),
            description_en: None,
            owner_agency_id: Some(self.owner_agency_id).filter(|id| *id > 0),
            catalogs,
            access_level,
            allowed_agency_ids: if access_level == AccessLevel::Restricted { self.allowed.clone() } else { vec![] },
            license: opt(&self.license),
            frequency,
            sector: opt(&self.sector),
            tags: self.tags.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            spatial: opt(&self.spatial),
            temporal_start,
            temporal_end,
            contact_name: opt(&self.contact_name),
            contact_email: opt(&self.contact_email),
            resources: vec![],
        };
        (input, problems)
    }

    pub fn has_catalog(&self, c: &str) -> bool {
        self.catalogs.iter().any(|x| x == c)
    }

    pub fn allows(&self, id: &str) -> bool {
        self.allowed.iter().any(|a| a.to_string() == id)
    }
}

fn rows_from_form(f: &FormData) -> Vec<FieldRow> {
    let names = f.all("field_name");
    let titles = f.all("field_title");
    let types = f.all("field_type");
    let terms = f.all("field_term");
    let required = f.all("field_required");
    names
        .iter()
        .enumerate()
        .map(|(i, n)| FieldRow {
            name: n.trim().to_string(),
            title: titles.get(i).unwrap_or(&"").trim().to_string(),
            ty: types.get(i).unwrap_or(&"").trim().to_string(),
            term: terms.get(i).unwrap_or(&"").trim().to_string(),
            required: required.get(i).is_some_and(|v| *v == "yes"),
        })
        .collect()
}

fn rows_from_schema(schema: &Value) -> Vec<FieldRow> {
    schema
        .get("fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .map(|f| FieldRow {
                    name: f.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    title: f.get("title").and_then(Value::as_str).unwrap_or("").into(),
                    ty: f.get("type").and_then(Value::as_str).unwrap_or("").into(),
                    term: f.get(TERM_PROPERTY).and_then(Value::as_str).unwrap_or("").into(),
                    required: f.pointer("/constraints/required").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Build the Table Schema from the editor: the raw JSON if the steward wrote one, else the
/// rows merged into the existing schema (keeping each field's other properties, such as
/// constraints set through JSON earlier).
fn schema_from(form: &DatasetForm, base: Option<&Value>) -> Result<Option<Value>, Detail> {
    if !form.schema_json.is_empty() {
        return serde_json::from_str::<Value>(&form.schema_json).map(Some).map_err(|e| {
            Detail::new("schema_json", format!("not valid JSON (line {}, column {}): {e}", e.line(), e.column()))
        });
    }
    let rows: Vec<&FieldRow> = form.rows.iter().filter(|r| !r.name.is_empty()).collect();
    if rows.is_empty() {
        return Ok(base.cloned());
    }
    let old_fields: Vec<Value> =
        base.and_then(|b| b.get("fields")).and_then(Value::as_array).cloned().unwrap_or_default();
    let fields: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut f: Map<String, Value> = old_fields
                .iter()
                .find(|o| o.get("name").and_then(Value::as_str) == Some(r.name.as_str()))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            f.insert("name".into(), json!(r.name));
            for (key, v) in [("title", &r.title), ("type", &r.ty), (TERM_PROPERTY, &r.term)] {
                if v.is_empty() {
                    f.remove(key);
                } else {
                    f.insert(key.into(), json!(v));
                }
            }
            if r.ty.is_empty() && r.term.is_empty() {
                f.insert("type".into(), json!("string"));
            }
            let mut c = f.get("constraints").and_then(Value::as_object).cloned().unwrap_or_default();
            if r.required {
                c.insert("required".into(), json!(true));
            } else {
                c.remove("required");
            }
            if c.is_empty() {
                f.remove("constraints");
            } else {
                f.insert("constraints".into(), Value::Object(c));
            }
            Value::Object(f)
        })
        .collect();
    let mut schema = base.and_then(Value::as_object).cloned().unwrap_or_default();
    schema.insert("fields".into(), Value::Array(fields));
    Ok(Some(Value::Object(schema)))
}

pub struct Opt {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "dataset_form.html")]
struct DatasetFormPage<'a> {
    b: &'a Base,
    editing: bool,
    action: String,
    form: DatasetForm,
    errors: Vec<Detail>,
    error_title: String,
    agencies: Vec<Opt>,
    terms: Vec<Opt>,
    types: &'static [&'static str],
    licenses: Vec<&'static str>,
    access_levels: Vec<Opt>,
    frequencies: Vec<Opt>,
    catalogs: Vec<Opt>,
    is_admin: bool,
    with_resource: bool,
    revision: i64,
}

impl DatasetFormPage<'_> {
    pub fn err(&self, field: &str) -> bool {
        self.errors.iter().any(|d| {
            d.path == field || d.path.starts_with(&format!("{field}.")) || d.path.starts_with(&format!("{field}["))
        })
    }
}

pub async fn options(s: &AppState, b: &Base) -> (Vec<Opt>, Vec<Opt>, Vec<Opt>, Vec<Opt>, Vec<Opt>) {
    let agencies = s
        .kho
        .list_agencies()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| Opt { value: a.id.to_string(), label: a.name })
        .collect();
    let terms = s
        .kho
        .list_terms(None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| Opt {
            // By its title: the term's code is the option's value, for the schema.
            label: if b.tr.lang == crate::i18n::Lang::En { t.title_en.unwrap_or(t.title) } else { t.title },
            value: t.name,
        })
        .collect();
    let access = AccessLevel::ALL
        .iter()
        .map(|a| Opt { value: a.as_str().into(), label: b.t(&format!("access.{}", a.as_str())).into() })
        .collect();
    let freq = Frequency::ALL
        .iter()
        .map(|f| Opt { value: f.as_str().into(), label: b.t(&format!("frequency.{}", f.as_str())).into() })
        .collect();
    let cats = CatalogKind::ALL
        .iter()
        .map(|c| Opt { value: c.as_str().into(), label: b.t(&format!("catalog.{}", c.as_str())).into() })
        .collect();
    (agencies, terms, access, freq, cats)
}

#[allow(clippy::too_many_arguments)]
async fn form_page(
    s: &AppState,
    page: &Page,
    editing: bool,
    action: String,
    form: DatasetForm,
    errors: Vec<Detail>,
    error_title: String,
    revision: i64,
) -> Response {
    let (agencies, terms, access_levels, frequencies, catalogs) = options(s, &page.base).await;
    let tpl = DatasetFormPage {
        b: &page.base,
        editing,
        action,
        form,
        errors,
        error_title,
        agencies,
        terms,
        types: FIELD_TYPES,
        licenses: kho_core::license::LICENSES.iter().map(|l| l.id).collect(),
        access_levels,
        frequencies,
        catalogs,
        is_admin: page.base.is_admin(),
        with_resource: !editing,
        revision,
    };
    let has_errors = !tpl.errors.is_empty();
    page.render_form(&tpl, has_errors)
}

fn blank_rows(rows: &mut Vec<FieldRow>) {
    rows.retain(|r| !r.name.is_empty() || !r.term.is_empty());
    rows.extend(std::iter::repeat_n(FieldRow::default(), BLANK_ROWS));
}

pub async fn new_page(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("datasets");
    let m = page.member()?;
    if m.role == Role::Viewer {
        return Err(page.error(Error::forbidden("viewers may not create datasets")));
    }
    let mut form = DatasetForm {
        owner_agency_id: m.agency_id,
        access_level: "shared".into(),
        frequency: "annual".into(),
        spatial: s.kho.config().province_code.clone(),
        ..Default::default()
    };
    blank_rows(&mut form.rows);
    Ok(form_page(&s, &page, false, "/datasets/new".into(), form, vec![], String::new(), 0).await)
}

pub async fn new_submit(State(s): State<AppState>, page: Page, f: FormData) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    page.check_csrf(&f)?;
    let mut form = DatasetForm::from_form(&f);
    let (input, mut problems) = form.to_input();
    let schema = schema_from(&form, None).unwrap_or_else(|d| {
        problems.push(d);
        None
    });
    let mut resources = vec![];
    if let Some(schema) = schema {
        let name = if form.resource_name.is_empty() {
            Some(slugify(&form.resource_title)).filter(|s| s.len() >= 2).unwrap_or_else(|| "du-lieu".into())
        } else {
            form.resource_name.clone()
        };
        resources.push(ResourceInput {
            name,
            title: Some(form.resource_title.clone()).filter(|t| !t.is_empty()),
            description: None,
            schema,
        });
    }
    let result = if problems.is_empty() {
        s.kho.create_dataset(page.ctx(), input, resources).await
    } else {
        Err(Error::validation(problems))
    };
    match result {
        Ok(d) => Ok(Redirect::to(&format!("/datasets/{}", d.input.slug)).into_response()),
        Err(e) if is_form_error(&e) => {
            let (title, details) = form_errors(&page, &e);
            blank_rows(&mut form.rows);
            Ok(form_page(&s, &page, false, "/datasets/new".into(), form, details, title, 0).await)
        }
        Err(e) => Err(page.error(e)),
    }
}

/// Errors the steward can fix in the form are shown in it; others get the error page.
fn is_form_error(e: &Error) -> bool {
    matches!(
        e.code,
        ErrorCode::ValidationFailed
            | ErrorCode::InvalidTableSchema
            | ErrorCode::UnknownDictionaryTerm
            | ErrorCode::UnknownAdminUnit
            | ErrorCode::UnknownAgency
            | ErrorCode::PersonalDataInOpenDataset
            | ErrorCode::SlugTaken
            | ErrorCode::Conflict
    )
}

/// The error box of a form: the localized title, and each field's problem (or the message).
fn form_errors(page: &Page, e: &Error) -> (String, Vec<Detail>) {
    let mut details = if e.details.is_empty() { vec![Detail::new("", e.message.clone())] } else { e.details.clone() };
    for d in &mut details {
        // Fields with a format say what the format is, in the page's language.
        let key = match d.path.as_str() {
            "contact_email" => Some("dataset.contact_email_invalid"),
            "license" => Some("dataset.license_unknown"),
            _ => None,
        };
        if let Some(key) = key {
            d.message = page.tr().t(key).to_string();
        } else if let Some(vi) = d.message_vi.clone().filter(|_| page.tr().lang == crate::i18n::Lang::Vi) {
            d.message = vi;
        } else if d.message.starts_with("holds a control character") {
            d.message = page.tr().t("dataset.control_characters").to_string();
        }
        // A field is named by its label on the form, not its name in the API.
        let label = format!("dataset.{}", d.path);
        if !d.path.is_empty() && page.tr().has(&label) {
            d.path = page.tr().t(&label).to_string();
        }
    }
    (page.tr().error(e.code), details)
}

#[derive(Template)]
#[template(path = "dataset.html")]
struct DatasetPage<'a> {
    b: &'a Base,
    d: Dataset,
    owner: String,
    allowed: Vec<String>,
    resources: Vec<ResourceView>,
    revisions: Vec<RevisionView>,
    can_edit: bool,
    spatial: String,
    created: String,
    modified: String,
    en: bool,
    fresh: super::portal::Fresh,
    quality: String,
    views: u64,
    downloads: u64,
    /// Province shown first on commune maps: the one the dataset covers, else this instance's.
    map_province: String,
    /// The explorer's words, as JSON for `explore.js`.
    explorer_text: String,
    /// The licence's and the sector's titles.
    license: Option<String>,
    sector: Option<String>,
    /// Some table has data to download.
    any_published: bool,
    /// Nothing published yet.
    draft: bool,
    ratings: kho_core::model::RatingSummary,
    /// The mean, one decimal.
    rating: String,
    reports: Vec<super::feedback::FeedbackView>,
    categories: Vec<(&'static str, &'static str)>,
    /// What the visitor just sent (`rating`, `report`), to thank them.
    sent: String,
}

pub struct VersionView {
    pub version: i64,
    pub at: String,
    pub by: String,
    pub rows: i64,
    pub added: i64,
    pub removed: i64,
    pub changed: i64,
    pub quarantined: i64,
}

pub struct ResourceView {
    pub id: String,
    /// A map can be drawn: `province` or `commune`, with the code field.
    pub geo: Option<(&'static str, String)>,
    pub published: bool,
    pub scores: Option<kho_core::quality::QualityScores>,
    /// The rows behind the "sạch" score's outliers, columns by their labels.
    pub outliers: Vec<OutlierView>,
    /// Numeric columns compared within a category column's groups: (column, category, values
    /// no longer flagged), by their labels.
    pub outlier_groupings: Vec<(String, String, u64)>,
    /// The labels of the personal fields, shown masked unless the reader declares a purpose.
    pub personal: Vec<String>,
    pub versions: Vec<VersionView>,
    pub name: String,
    pub title: String,
    pub fields: Vec<FieldView>,
    pub primary_key: String,
    /// The fields as `explore.js` needs them (name, label, type, whether a number is a code or
    /// a year, shown without thousands separators), as JSON.
    pub explore_fields: String,
}

pub struct OutlierView {
    pub column: String,
    pub value: f64,
    pub typical: f64,
    /// Decimals to show the value and the typical value with.
    pub decimals: usize,
    pub line: Option<u64>,
    pub row: String,
    /// The category column (by its label) and value it was compared within.
    pub group: Option<(String, String)>,
}

pub struct FieldView {
    pub name: String,
    pub title: String,
    /// The Table Schema type (`integer`), for `explore.js`.
    pub kind: String,
    /// The type as people say it ("Số nguyên").
    pub ty: String,
    pub term: String,
    pub term_name: String,
    pub required: bool,
    pub description: String,
}

pub struct RevisionView {
    pub revision: i64,
    pub change: String,
    pub by: String,
    pub at: String,
}

pub async fn view(State(s): State<AppState>, page: Page, Path(slug): Path<String>) -> PageResult {
    let page = page.with_active("datasets");
    let overview = s.kho.dataset_overview(page.ctx(), &slug).await.map_err(|e| page.error(e))?;
    let kho_service::catalog::DatasetOverview {
        dataset: d,
        versions: mut all_versions,
        quality,
        revisions,
        views,
        downloads,
    } = overview;
    let agencies = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
    let name_of =
        |id: i64| agencies.iter().find(|a| a.id == id).map(|a| a.name.clone()).unwrap_or_else(|| id.to_string());
    let terms = s.kho.term_lookup().await.map_err(|e| page.error(e))?;
    let en = page.base.tr.lang == crate::i18n::Lang::En;
    let mut resources = Vec::new();
    for r in &d.resources {
        let eff = kho_core::table_schema::effective(&r.input.schema, &terms);
        let fields: Vec<FieldView> = eff
            .get("fields")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        let term = f.get(TERM_PROPERTY).and_then(Value::as_str).unwrap_or("").to_string();
                        let term_name = term.split('@').next().unwrap_or("").to_string();
                        let term_title = terms
                            .get(&term_name)
                            .and_then(|vs| vs.iter().max_by_key(|t| t.version))
                            .map(|t| match (en, &t.title_en) {
                                (true, Some(e)) => e.clone(),
                                _ => t.title.clone(),
                            })
                            .unwrap_or_else(|| term_name.clone());
                        let kind = f.get("type").and_then(Value::as_str).unwrap_or("any").to_string();
                        FieldView {
                            name: f.get("name").and_then(Value::as_str).unwrap_or("").into(),
                            title: f.get("title").and_then(Value::as_str).unwrap_or("").into(),
                            ty: page.tr().t(&format!("fieldtype.{kind}")).to_string(),
                            kind,
                            term_name,
                            term: if term.is_empty() { String::new() } else { term_title },
                            required: f.pointer("/constraints/required").and_then(Value::as_bool).unwrap_or(false),
                            description: f.get("description").and_then(Value::as_str).unwrap_or("").into(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The key named by its fields' labels, as people know the columns.
        let label_of = |name: &str| {
            fields.iter().find(|f| f.name == name && !f.title.is_empty()).map_or(name.to_string(), |f| f.title.clone())
        };
        let primary_key = match r.input.schema.get("primaryKey") {
            Some(Value::String(s)) => label_of(s),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(label_of).collect::<Vec<_>>().join(", "),
            _ => String::new(),
        };
        let versions: Vec<VersionView> = all_versions
            .remove(&r.id)
            .unwrap_or_default()
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                at: date(v.published_at),
                by: v.published_by,
                rows: v.rows,
                added: v.rows_added,
                removed: v.rows_removed,
                changed: v.rows_changed,
                quarantined: v.quarantined_rows,
            })
            .collect();
        let geo = eff.get("fields").and_then(Value::as_array).and_then(|fs| {
            fs.iter().find_map(|f| {
                let term = f.get(TERM_PROPERTY).and_then(Value::as_str).unwrap_or("");
                let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                match term.split('@').next().unwrap_or("") {
                    "province_code" => Some(("province", name)),
                    "commune_code" => Some(("commune", name)),
                    _ => None,
                }
            })
        });
        let published = !versions.is_empty();
        let explore_fields = explore_fields(&fields);
        let evidence = quality.resources.iter().find(|q| q.resource == r.input.name);
        let outliers = evidence
            .map(|q| {
                q.outliers
                    .iter()
                    .map(|o| OutlierView {
                        column: label_of(&o.column),
                        value: o.value,
                        typical: o.typical,
                        decimals: if o.value.fract() == 0.0 && o.typical.fract() == 0.0 { 0 } else { 2 },
                        line: o.line,
                        row: o.row.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" · "),
                        group: o.group.as_ref().map(|(by, v)| (label_of(by), v.clone())),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let outlier_groupings = evidence
            .map(|q| q.outlier_groupings.iter().map(|g| (label_of(&g.column), label_of(&g.by), g.excused)).collect())
            .unwrap_or_default();
        let personal = if kho_service::query::masked_for(page.ctx(), &d) {
            let found = s.kho.personal_fields(&r.input.schema).await.map_err(|e| page.error(e))?;
            found.into_iter().map(|f| label_of(&f.name)).collect()
        } else {
            Vec::new()
        };
        resources.push(ResourceView {
            personal,
            outliers,
            outlier_groupings,
            explore_fields,
            id: r.id.clone(),
            geo,
            published,
            scores: quality.resources.iter().find(|q| q.resource == r.input.name).map(|q| q.scores.clone()),
            versions,
            name: r.input.name.clone(),
            title: r.input.title.clone().unwrap_or_default(),
            fields,
            primary_key,
        });
    }
    let revisions = revisions
        .into_iter()
        .map(|r| RevisionView { revision: r.revision, change: r.change, by: r.changed_by, at: date(r.changed_at) })
        .collect::<Vec<_>>();
    // Who published or changed what, by name, for members; visitors see when and what only
    // (the audit log's labels are not for people).
    let mut revisions = revisions;
    let member = page.ctx().principal.require_member().is_ok();
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let labels: Vec<String> = resources
        .iter()
        .flat_map(|r: &ResourceView| r.versions.iter().map(|v| v.by.clone()))
        .chain(revisions.iter().map(|r| r.by.clone()))
        .collect();
    for label in labels {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(label) {
            let name = match member {
                true => s.kho.person_name(page.ctx(), slot.key()).await.ok().flatten().unwrap_or_default(),
                false => String::new(),
            };
            slot.insert(name);
        }
    }
    let person = |label: &str| names.get(label).cloned().unwrap_or_default();
    for r in &mut resources {
        for v in &mut r.versions {
            v.by = person(&v.by);
        }
    }
    for r in &mut revisions {
        r.by = person(&r.by);
    }
    let spatial = match d.input.spatial.as_deref() {
        Some(code) => s
            .kho
            .get_admin_unit(kho_core::model::AdminEra::Current, code)
            .await
            .map(|u| u.full_name)
            .unwrap_or_else(|_| code.into()),
        None => String::new(),
    };
    let (reports, ratings) = s.kho.feedback_on(page.ctx(), &d).await.map_err(|e| page.error(e))?;
    let reports = super::feedback::views(&s, &page.base, reports).await;
    let map_province =
        d.input.spatial.as_deref().filter(|c| c.len() == 2).unwrap_or(&s.kho.config().province_code).to_string();
    let tpl = DatasetPage {
        b: &page.base,
        fresh: super::portal::freshness(
            page.tr(),
            quality.last_published,
            d.input.frequency.as_str(),
            d.input.access_level == AccessLevel::Open,
        ),
        quality: format!("{:.0}", quality.overall),
        views,
        downloads,
        map_province,
        explorer_text: explorer_text(page.tr()),
        rating: super::format_fixed(ratings.average, 1, page.tr().lang),
        ratings,
        reports,
        categories: super::feedback::categories(&page.base),
        sent: page.query("sent").unwrap_or_default(),
        owner: name_of(d.owner_agency_id()),
        allowed: d.input.allowed_agency_ids.iter().map(|a| name_of(*a)).collect(),
        can_edit: s.kho.can_edit(page.ctx(), &d),
        created: date(d.created_at),
        modified: date(d.modified_at),
        en,
        any_published: resources.iter().any(|r| r.published),
        draft: quality.draft,
        license: d
            .input
            .license
            .as_deref()
            .map(|l| kho_core::license::license(l).map_or(l.to_string(), |x| x.title.to_string())),
        sector: d.input.sector.as_deref().map(|sl| kho_core::sector::sector_name(sl, en)),
        resources,
        revisions,
        spatial,
        d,
    };
    Ok(page.render(&tpl))
}

/// Whether an integer field holds a code or a year, which people read without thousands
/// separators ("2025", not "2.025"; "14", a province code).
fn plain_number(name: &str, title: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let title = kho_core::text::fold(title);
    name.split('_').any(|p| matches!(p, "nam" | "year" | "code" | "id" | "ma"))
        || title == "nam"
        || title.starts_with("nam ")
        || title.starts_with("ma ")
        || title == "ma"
}

/// The fields of a table as `explore.js` reads them.
fn explore_fields(fields: &[FieldView]) -> String {
    let list: Vec<Value> = fields
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "label": if f.title.is_empty() { &f.name } else { &f.title },
                "type": f.kind,
                "plain": f.kind == "integer" && plain_number(&f.name, &f.title),
            })
        })
        .collect();
    Value::Array(list).to_string()
}

/// The words `explore.js` shows, in the page's language (JSON, safe inside a script element).
fn explorer_text(tr: crate::i18n::Tr) -> String {
    let keys = [
        "contains",
        "error",
        "filter",
        "search_rows",
        "field",
        "operator",
        "value",
        "active_filters",
        "remove_filter",
        "sort_by",
        "previous",
        "next",
        "download_csv",
        "rows",
        "chart",
        "bar",
        "line",
        "draw_chart",
        "x_axis",
        "y_axis",
        "chart_kind",
        "points",
        "no_numbers",
        "map",
        "map_value",
        "draw_map",
        "province_code",
        "no_boundaries",
        "no_value",
        "areas_with_data",
        "download",
        "download_xlsx",
        "filtered",
        "group_by",
        "measure",
        "measure_count",
        "measure_sum",
        "measure_avg",
        "measure_min",
        "measure_max",
        "of_field",
        "groups",
        "top_groups",
        "over_rows",
        "matching_rows",
        "all_rows",
        "filter_refused",
        "empty",
        "show_filters",
    ];
    let words: Map<String, Value> =
        keys.iter().map(|k| (k.to_string(), Value::String(tr.t(&format!("explore.{k}")).to_string()))).collect();
    Value::Object(words).to_string().replace("</", "<\\/")
}

pub async fn edit_page(State(s): State<AppState>, page: Page, Path(slug): Path<String>) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    let d = s.kho.get_dataset(page.ctx(), &slug).await.map_err(|e| page.error(e))?;
    if !s.kho.can_edit(page.ctx(), &d) {
        return Err(page.error(Error::forbidden("this dataset belongs to another agency")));
    }
    let form = DatasetForm::from_dataset(&d);
    Ok(form_page(&s, &page, true, format!("/datasets/{}/edit", d.input.slug), form, vec![], String::new(), d.revision)
        .await)
}

pub async fn edit_submit(State(s): State<AppState>, page: Page, Path(slug): Path<String>, f: FormData) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    page.check_csrf(&f)?;
    let form = DatasetForm::from_form(&f);
    let (input, problems) = form.to_input();
    let revision = f.text("revision").parse::<i64>().ok();
    let result = if problems.is_empty() {
        s.kho.update_dataset(page.ctx(), &slug, input, revision).await
    } else {
        Err(Error::validation(problems))
    };
    match result {
        Ok(d) => Ok(Redirect::to(&format!("/datasets/{}", d.input.slug)).into_response()),
        Err(e) if is_form_error(&e) => {
            let (title, details) = form_errors(&page, &e);
            Ok(form_page(
                &s,
                &page,
                true,
                format!("/datasets/{slug}/edit"),
                form,
                details,
                title,
                revision.unwrap_or(0),
            )
            .await)
        }
        Err(e) => Err(page.error(e)),
    }
}

#[derive(Template)]
#[template(path = "resource_form.html")]
struct ResourceFormPage<'a> {
    b: &'a Base,
    dataset_slug: String,
    dataset_title: String,
    editing: bool,
    form: DatasetForm,
    errors: Vec<Detail>,
    error_title: String,
    terms: Vec<Opt>,
    types: &'static [&'static str],
    revision: i64,
}

impl ResourceFormPage<'_> {
    pub fn err(&self, field: &str) -> bool {
        self.errors.iter().any(|d| d.path == field || d.path.starts_with(&format!("{field}.")))
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource_page(
    s: &AppState,
    page: &Page,
    d: &Dataset,
    editing: bool,
    form: DatasetForm,
    errors: Vec<Detail>,
    error_title: String,
) -> Response {
    let (_, terms, _, _, _) = options(s, &page.base).await;
    let has_errors = !errors.is_empty();
    let tpl = ResourceFormPage {
        b: &page.base,
        dataset_slug: d.input.slug.clone(),
        dataset_title: d.input.title.clone(),
        editing,
        form,
        errors,
        error_title,
        terms,
        types: FIELD_TYPES,
        revision: d.revision,
    };
    page.render_form(&tpl, has_errors)
}

async fn editable(s: &AppState, page: &Page, slug: &str) -> Result<Dataset, super::PageError> {
    page.member()?;
    let d = s.kho.get_dataset(page.ctx(), slug).await.map_err(|e| page.error(e))?;
    if !s.kho.can_edit(page.ctx(), &d) {
        return Err(page.error(Error::forbidden("this dataset belongs to another agency")));
    }
    Ok(d)
}

pub async fn resource_new_page(State(s): State<AppState>, page: Page, Path(slug): Path<String>) -> PageResult {
    let page = page.with_active("datasets");
    let d = editable(&s, &page, &slug).await?;
    let mut form = DatasetForm::default();
    blank_rows(&mut form.rows);
    Ok(resource_page(&s, &page, &d, false, form, vec![], String::new()).await)
}

/// Infer a draft schema from a data file and show it in the table form for review: types,
/// formats and dictionary terms suggested by column name and content. Nothing is saved until
/// the steward submits the form.
pub async fn resource_infer(
    State(s): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    multipart: axum::extract::Multipart,
) -> PageResult {
    let page = page.with_active("datasets");
    let d = editable(&s, &page, &slug).await?;
    let tr = page.tr();
    let mut form = DatasetForm::default();
    let Some((tmp, file_name, opts)) = super::loading::read_file_form(&s, &page, multipart).await? else {
        blank_rows(&mut form.rows);
        let e = vec![Detail::new("file", tr.t("upload.no_file"))];
        return Ok(resource_page(&s, &page, &d, false, form, e, tr.t("resource.infer_failed").into()).await);
    };
    match s.kho.infer_schema(page.ctx(), &tmp, &opts).await {
        Ok(inferred) => {
            form.rows = rows_from_schema(&inferred.schema);
            form.draft_schema = inferred.schema.to_string();
            let stem = file_name.rsplit_once('.').map_or(file_name.as_str(), |(a, _)| a);
            form.resource_name = slugify(stem);
            form.inferred_from = format!("{file_name} ({} {})", inferred.rows_sampled, tr.t("resource.rows_read"));
            form.suggestions = inferred
                .suggestions
                .iter()
                .map(|sg| {
                    let why = match sg.reason.as_str() {
                        "name" => tr.t("resource.by_name"),
                        "content" => tr.t("resource.by_content"),
                        _ => tr.t("resource.by_name_and_content"),
                    };
                    let state = if sg.applied { tr.t("resource.applied") } else { tr.t("resource.proposed") };
                    format!("{} → {} ({why}; {state})", sg.field, sg.term)
                })
                .collect();
            blank_rows(&mut form.rows);
            Ok(resource_page(&s, &page, &d, false, form, vec![], String::new()).await)
        }
        Err(e) if e.code == ErrorCode::InvalidFile => {
            blank_rows(&mut form.rows);
            let detail = e.details.first().map(|d| d.message.clone()).unwrap_or(e.message.clone());
            let errors = vec![Detail::new("file", format!("{file_name}: {detail}"))];
            Ok(resource_page(&s, &page, &d, false, form, errors, tr.t("resource.infer_failed").into()).await)
        }
        Err(e) => Err(page.error(e)),
    }
}

pub async fn resource_edit_page(
    State(s): State<AppState>,
    page: Page,
    Path((slug, name)): Path<(String, String)>,
) -> PageResult {
    let page = page.with_active("datasets");
    let d = editable(&s, &page, &slug).await?;
    let r =
        d.resources.iter().find(|r| r.input.name == name).ok_or_else(|| page.error(Error::not_found("resource")))?;
    let mut form = DatasetForm {
        resource_name: r.input.name.clone(),
        resource_title: r.input.title.clone().unwrap_or_default(),
        rows: rows_from_schema(&r.input.schema),
        ..Default::default()
    };
    blank_rows(&mut form.rows);
    Ok(resource_page(&s, &page, &d, true, form, vec![], String::new()).await)
}

async fn resource_submit(s: AppState, page: Page, slug: String, existing: Option<String>, f: FormData) -> PageResult {
    let page = page.with_active("datasets");
    let d = editable(&s, &page, &slug).await?;
    page.check_csrf(&f)?;
    let mut form = DatasetForm::from_form(&f);
    if let Some(name) = &existing {
        form.resource_name = name.clone();
    }
    let base = match &existing {
        Some(n) => d.resources.iter().find(|r| &r.input.name == n).map(|r| r.input.schema.clone()),
        None => serde_json::from_str::<Value>(&form.draft_schema).ok().filter(Value::is_object),
    };
    let result = match schema_from(&form, base.as_ref()) {
        Err(detail) => Err(Error::validation(vec![detail])),
        Ok(None) => Err(Error::new(ErrorCode::InvalidTableSchema, "the schema has no fields")
            .with_details(vec![Detail::new("schema.fields", "add at least one field")])),
        Ok(Some(schema)) => {
            let name =
                if form.resource_name.is_empty() { slugify(&form.resource_title) } else { form.resource_name.clone() };
            let input = ResourceInput {
                name,
                title: Some(form.resource_title.clone()).filter(|t| !t.is_empty()),
                description: None,
                schema,
            };
            s.kho.put_resource(page.ctx(), &slug, input, f.text("revision").parse().ok()).await
        }
    };
    match result {
        Ok(d) => Ok(Redirect::to(&format!("/datasets/{}", d.input.slug)).into_response()),
        Err(e) if is_form_error(&e) => {
            let (title, details) = form_errors(&page, &e);
            blank_rows(&mut form.rows);
            Ok(resource_page(&s, &page, &d, existing.is_some(), form, details, title).await)
        }
        Err(e) => Err(page.error(e)),
    }
}

pub async fn resource_submit_new(
    State(s): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    f: FormData,
) -> PageResult {
    resource_submit(s, page, slug, None, f).await
}

pub async fn resource_submit_edit(
    State(s): State<AppState>,
    page: Page,
    Path((slug, name)): Path<(String, String)>,
    f: FormData,
) -> PageResult {
    resource_submit(s, page, slug, Some(name), f).await
}

pub async fn delete_submit(State(s): State<AppState>, page: Page, Path(slug): Path<String>, f: FormData) -> PageResult {
    page.member()?;
    page.check_csrf(&f)?;
    s.kho.delete_dataset(page.ctx(), &slug, f.text("revision").parse().ok()).await.map_err(|e| page.error(e))?;
    Ok(Redirect::to("/datasets").into_response())
}

pub async fn resource_delete_submit(
    State(s): State<AppState>,
    page: Page,
    Path((slug, name)): Path<(String, String)>,
    f: FormData,
) -> PageResult {
    page.member()?;
    page.check_csrf(&f)?;
    let d = s.kho.delete_resource(page.ctx(), &slug, &name).await.map_err(|e| page.error(e))?;
    Ok(Redirect::to(&format!("/datasets/{}", d.input.slug)).into_response())
}

#[derive(Template)]
#[template(path = "dataset_from_file.html")]
struct FromFilePage<'a> {
    b: &'a Base,
    access_levels: Vec<Opt>,
    frequencies: Vec<Opt>,
    title: String,
    access_level: String,
    frequency: String,
    table_title: String,
    errors: Vec<Detail>,
}

async fn from_file_page(
    s: &AppState,
    page: &Page,
    values: &std::collections::HashMap<String, String>,
    errors: Vec<Detail>,
) -> Response {
    let (_, _, access_levels, frequencies, _) = options(s, &page.base).await;
    let get = |k: &str, default: &str| values.get(k).cloned().unwrap_or_else(|| default.to_string());
    let tpl = FromFilePage {
        b: &page.base,
        access_levels,
        frequencies,
        title: get("title", ""),
        access_level: get("access_level", "shared"),
        frequency: get("frequency", "annual"),
        table_title: get("table_title", ""),
        errors: page.localize(errors),
    };
    let has_errors = !tpl.errors.is_empty();
    page.render_form(&tpl, has_errors)
}

/// Start a dataset from a file: the one form a steward fills when the data exists before its
/// description does.
pub async fn from_file_page_get(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("datasets");
    let m = page.member()?;
    if m.role == Role::Viewer {
        return Err(page.error(Error::forbidden("viewers may not create datasets")));
    }
    Ok(from_file_page(&s, &page, &Default::default(), vec![]).await)
}

pub async fn from_file_submit(
    State(s): State<AppState>,
    page: Page,
    multipart: axum::extract::Multipart,
) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    let (file, opts, values) = super::loading::read_file_form_with(&s, &page, multipart).await?;
    let Some((tmp, file_name)) = file else {
        let d = Detail::new("file", "choose a file").with_vi(page.tr().t("upload.no_file"));
        return Ok(from_file_page(&s, &page, &values, vec![d]).await);
    };
    let value = |k: &str| values.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (Ok(access_level), Ok(frequency)) =
        (value("access_level").parse::<AccessLevel>(), value("frequency").parse::<Frequency>())
    else {
        let d = Detail::new("access_level", "choose an access level and a frequency")
            .with_vi("Hãy chọn mức truy cập và tần suất cập nhật");
        return Ok(from_file_page(&s, &page, &values, vec![d]).await);
    };
    let start = kho_service::start::StartFromFile {
        title: value("title"),
        access_level,
        frequency,
        owner_agency_id: None,
        table_title: Some(value("table_title")).filter(|t| !t.is_empty()),
    };
    match s.kho.start_dataset_from_file(page.ctx(), start, &tmp, &file_name, &opts).await {
        Ok((_, upload)) => Ok(Redirect::to(&format!("/uploads/{}", upload.id)).into_response()),
        Err(e) if e.code == kho_core::ErrorCode::PersonalDataInOpenDataset => {
            // The rule, then each personal column by its header, and what to do.
            let (title, mut details) = form_errors(&page, &e);
            details.insert(0, Detail::new("", title));
            Ok(from_file_page(&s, &page, &values, details).await)
        }
        Err(e) if !e.details.is_empty() || e.code == kho_core::ErrorCode::InvalidFile => {
            let mut details = e.details.clone();
            if details.is_empty() {
                details.push(Detail::new("", e.message.clone()));
            }
            if e.code == kho_core::ErrorCode::InvalidFile {
                details.insert(0, Detail::new("", page.tr().error(e.code)));
            }
            Ok(from_file_page(&s, &page, &values, details).await)
        }
        Err(e) => Err(page.error(e)),
    }
}
