//! Loading data from the pages: upload a file for a table, read the report, then publish it
//! (all rows, or the valid ones with the rest in quarantine) or reject it.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect};
use kho_core::model::Upload;
use kho_core::{Error, ErrorCode};
use kho_service::ingest::Report;
use tokio::io::AsyncWriteExt;

use super::{Base, FormData, Page, PageResult};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "upload_form.html")]
struct UploadFormPage<'a> {
    b: &'a Base,
    dataset_slug: String,
    dataset_title: String,
    /// The table's title (its name when it has none).
    resource: String,
    /// Each column by its title, with its name.
    fields: Vec<(String, String)>,
    error: Option<String>,
}

async fn form_page(s: &AppState, page: &Page, slug: &str, name: &str, error: Option<String>) -> PageResult {
    page.member()?;
    let d = s.kho.get_dataset(page.ctx(), slug).await.map_err(|e| page.error(e))?;
    if !s.kho.can_edit(page.ctx(), &d) {
        return Err(page.error(Error::forbidden("this dataset belongs to another agency")));
    }
    let r = d.resources.iter().find(|r| r.input.name == name).ok_or_else(|| page.error(Error::not_found("table")))?;
    let fields = r
        .input
        .schema
        .get("fields")
        .and_then(serde_json::Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|f| {
                    let name = f.get("name").and_then(serde_json::Value::as_str)?.to_string();
                    let title = f.get("title").and_then(serde_json::Value::as_str).unwrap_or(&name).to_string();
                    Some((title, name))
                })
                .collect()
        })
        .unwrap_or_default();
    let status =
        if error.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    let tpl = UploadFormPage {
        b: &page.base,
        dataset_slug: d.input.slug.clone(),
        dataset_title: d.input.title.clone(),
        resource: r.input.title.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| name.to_string()),
        fields,
        error,
    };
    let mut resp = page.render(&tpl);
    *resp.status_mut() = status;
    Ok(resp)
}

pub async fn upload_page(
    State(s): State<AppState>,
    page: Page,
    Path((slug, name)): Path<(String, String)>,
) -> PageResult {
    let page = page.with_active("datasets");
    form_page(&s, &page, &slug, &name, None).await
}

/// A file form's fields: the file streamed to the upload folder, its name, the sheet choice.
/// The form sends `_csrf` first, then the file: the token is checked before a byte of the file
/// is stored, and the file is streamed to disk, never held in memory. `None`: no file chosen.
pub(crate) async fn read_file_form(
    s: &AppState,
    page: &Page,
    multipart: Multipart,
) -> Result<Option<(tempfile::TempPath, String, kho_service::SheetOptions)>, super::PageError> {
    let (file, opts, _) = read_file_form_with(s, page, multipart).await?;
    Ok(file.map(|(tmp, name)| (tmp, name, opts)))
}

/// The uploaded file of a form (streamed to the upload folder), the sheet options, and the
/// form's other text fields, which come before the file.
pub(crate) type FileForm =
    (Option<(tempfile::TempPath, String)>, kho_service::SheetOptions, std::collections::HashMap<String, String>);

pub(crate) async fn read_file_form_with(
    s: &AppState,
    page: &Page,
    mut multipart: Multipart,
) -> Result<FileForm, super::PageError> {
    let mut fields = std::collections::HashMap::new();
    let mut csrf_ok = false;
    let mut opts = kho_service::SheetOptions::default();
    let mut staged: Option<(tempfile::TempPath, String)> = None;
    let bad = |m: String| page.error(Error::new(ErrorCode::BadRequest, m));
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| bad(format!("the form could not be read: {e}")))?
    {
        match field.name() {
            Some("_csrf") => {
                let v = field.text().await.map_err(|e| bad(e.to_string()))?;
                csrf_ok = !v.is_empty() && v == page.base.csrf;
            }
            Some("sheet") => {
                let v = field.text().await.map_err(|e| bad(e.to_string()))?;
                opts.sheet = Some(v.trim().to_string()).filter(|s| !s.is_empty());
            }
            Some("header_row") => {
                opts.header_row = field.text().await.map_err(|e| bad(e.to_string()))?.trim().parse().ok();
            }
            Some("file") => {
                if !csrf_ok {
                    return Err(
                        page.error(Error::new(ErrorCode::CsrfFailed, "the form's anti-forgery token must come first"))
                    );
                }
                let file_name = field.file_name().unwrap_or("upload.csv").to_string();
                let dir = &s.config.upload_dir;
                tokio::fs::create_dir_all(dir).await.map_err(|e| page.error(Error::internal(e.to_string())))?;
                let tmp = tempfile::Builder::new()
                    .prefix("upload-")
                    .tempfile_in(dir)
                    .map_err(|e| page.error(Error::internal(e.to_string())))?
                    .into_temp_path();
                let mut out =
                    tokio::fs::File::create(&tmp).await.map_err(|e| page.error(Error::internal(e.to_string())))?;
                let mut size = 0u64;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| bad(format!("the upload was interrupted: {e}")))?
                {
                    size += chunk.len() as u64;
                    if size > s.config.max_upload_bytes {
                        return Err(page.error(Error::new(
                            ErrorCode::PayloadTooLarge,
                            "the file is larger than this server accepts",
                        )));
                    }
                    out.write_all(&chunk).await.map_err(|e| page.error(Error::internal(e.to_string())))?;
                }
                out.flush().await.map_err(|e| page.error(Error::internal(e.to_string())))?;
                // A file input left empty still sends a part, with no name and no bytes.
                if size > 0 || !file_name.is_empty() {
                    staged = Some((tmp, file_name));
                }
            }
            Some(other) => {
                let other = other.to_string();
                let v = field.text().await.map_err(|e| bad(e.to_string()))?;
                if fields.len() < 50 && v.len() <= 10_000 {
                    fields.insert(other, v);
                }
            }
            None => {}
        }
    }
    if !csrf_ok {
        return Err(page.error(Error::new(ErrorCode::CsrfFailed, "the form's anti-forgery token is missing")));
    }
    Ok((staged, opts, fields))
}

pub async fn upload_submit(
    State(s): State<AppState>,
    page: Page,
    Path((slug, name)): Path<(String, String)>,
    multipart: Multipart,
) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    let Some((tmp, file_name, opts)) = read_file_form(&s, &page, multipart).await? else {
        return form_page(&s, &page, &slug, &name, Some(page.tr().t("upload.no_file").to_string())).await;
    };
    match s.kho.stage_upload(page.ctx(), &slug, &name, &tmp, &file_name, &opts).await {
        Ok(u) => Ok(Redirect::to(&format!("/uploads/{}", u.id)).into_response()),
        Err(e) if e.code == ErrorCode::InvalidFile => {
            let detail = e.details.first().map(|d| d.message.clone()).unwrap_or(e.message.clone());
            let msg = format!("{}: {detail}", page.tr().error(e.code));
            form_page(&s, &page, &slug, &name, Some(msg)).await
        }
        Err(e) => Err(page.error(e)),
    }
}

/// One way of publishing an upload, as the page offers it.
struct ModeView {
    mode: &'static str,
    title: &'static str,
    help: &'static str,
    c: kho_service::Change,
}

impl ModeView {
    fn of(c: kho_service::Change) -> ModeView {
        let mode = c.mode.as_str();
        let (title, help) = match c.mode {
            kho_service::PublishMode::Upsert => ("upload.mode_upsert", "upload.mode_upsert_help"),
            kho_service::PublishMode::Append => ("upload.mode_append", "upload.mode_append_help"),
            kho_service::PublishMode::Replace => ("upload.mode_replace", "upload.mode_replace_help"),
        };
        ModeView { mode, title, help, c }
    }
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage<'a> {
    b: &'a Base,
    u: Upload,
    report: Report,
    dataset_slug: String,
    dataset_title: String,
    /// The table's title (its name when it has none).
    table_title: String,
    created: String,
    en: bool,
    /// Who uploaded the file, by name.
    uploaded_by: String,
    /// Why the last decision on the upload was refused (a message key).
    alert: Option<&'static str>,
    /// What each way of publishing would do; empty for the table's first version.
    modes: Vec<ModeView>,
    /// Rows the replacing mode would remove (it then needs the steward's confirmation).
    removal: u64,
    /// The mode chosen by default: by key when the table has one, so a file of corrections
    /// never wipes the rest.
    default_mode: &'static str,
}

pub async fn upload_view(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> PageResult {
    render_upload(&s, page, &id, None).await
}

/// The upload's page, with an alert (a message key) when a decision on it was refused.
async fn render_upload(s: &AppState, page: Page, id: &str, alert: Option<&'static str>) -> PageResult {
    let page = page.with_active("datasets");
    page.member()?;
    let u = s.kho.get_upload(page.ctx(), id).await.map_err(|e| page.error(e))?;
    let d = s.kho.get_dataset(page.ctx(), &u.dataset_id).await.map_err(|e| page.error(e))?;
    let report: Report = serde_json::from_value(u.report.clone()).unwrap_or_default();
    let publishable = u.status == "checked" && !report.header_mismatch && u.valid_rows > 0;
    let changes = match publishable {
        true => s.kho.upload_choices(page.ctx(), id).await.map_err(|e| page.error(e))?,
        false => Vec::new(),
    };
    let default_mode = changes.first().map_or("replace", |c| c.mode.as_str());
    let removal = changes.iter().map(|c| c.removed).max().unwrap_or(0);
    let uploaded_by = s.kho.person_name(page.ctx(), &u.created_by).await.ok().flatten().unwrap_or_default();
    let tpl = UploadPage {
        uploaded_by,
        alert,
        modes: changes.into_iter().map(ModeView::of).collect(),
        removal,
        default_mode,
        b: &page.base,
        created: super::catalog::date(u.created_at),
        dataset_slug: d.input.slug.clone(),
        dataset_title: d.input.title.clone(),
        table_title: d
            .resources
            .iter()
            .find(|r| r.id == u.resource_id)
            .and_then(|r| r.input.title.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| u.resource_name.clone()),
        en: page.base.tr.lang == crate::i18n::Lang::En,
        report,
        u,
    };
    Ok(page.render(&tpl))
}

async fn upload_report(s: AppState, page: Page, id: String, format: &str) -> PageResult {
    page.member()?;
    let u = s.kho.get_upload(page.ctx(), &id).await.map_err(|e| page.error(e))?;
    let report: Report = serde_json::from_value(u.report).unwrap_or_default();
    crate::api::ingest::report_download(&report, format).map_err(|e| page.error(e.0))
}

pub async fn upload_report_csv(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> PageResult {
    upload_report(s, page, id, "csv").await
}

pub async fn upload_report_xlsx(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> PageResult {
    upload_report(s, page, id, "xlsx").await
}

pub async fn upload_decide(State(s): State<AppState>, page: Page, Path(id): Path<String>, f: FormData) -> PageResult {
    page.member()?;
    page.check_csrf(&f)?;
    let u = s.kho.get_upload(page.ctx(), &id).await.map_err(|e| page.error(e))?;
    let d = s.kho.get_dataset(page.ctx(), &u.dataset_id).await.map_err(|e| page.error(e))?;
    match f.get("action") {
        Some("publish") => {
            let opts = kho_service::PublishOptions {
                skip_invalid: f.get("skip_invalid") == Some("yes"),
                mode: f.get("mode").and_then(kho_service::PublishMode::parse).unwrap_or_default(),
                confirm_removal: f.get("confirm_removal") == Some("yes"),
            };
            match s.kho.publish_upload(page.ctx(), &id, opts).await {
                Ok(_) => {}
                // Choices the page offers, refused: the page again, saying why in words.
                Err(e) if e.details.iter().any(|d| d.path == "confirm_removal") => {
                    return render_upload(&s, page, &id, Some("upload.need_confirm")).await;
                }
                Err(e) if e.code == ErrorCode::Conflict && opts.mode == kho_service::PublishMode::Append => {
                    return render_upload(&s, page, &id, Some("upload.append_conflict")).await;
                }
                Err(e) => return Err(page.error(e)),
            }
        }
        Some("reject") => {
            s.kho.reject_upload(page.ctx(), &id).await.map_err(|e| page.error(e))?;
        }
        _ => return Err(page.error(Error::new(ErrorCode::BadRequest, "unknown action"))),
    }
    Ok(Redirect::to(&format!("/datasets/{}", d.input.slug)).into_response())
}
