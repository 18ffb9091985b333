//! Starting a dataset from a file: the steward's usual first step, in one use case. Offices
//! have the data before they have a schema; asking them to describe every column first, then
//! upload the same file, is where people give up. Here the file proposes the schema and is
//! checked against it at once; the steward reviews both before anything is published.

use std::path::Path;

use kho_core::model::{AccessLevel, Dataset, DatasetInput, Frequency, ResourceInput, Upload};
use kho_core::{Error, ErrorCode, Result};
use kho_ingest::convert::SheetOptions;

use crate::{Ctx, Kho};

/// What the steward says about a dataset started from a file; the rest comes from the file.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartFromFile {
    /// The dataset's title; its slug is made from it (made unique when taken).
    pub title: String,
    pub access_level: AccessLevel,
    pub frequency: Frequency,
    /// Owner agency id; by default the caller's.
    #[serde(default)]
    pub owner_agency_id: Option<i64>,
    /// The table's title; by default the sheet's name when one is given, else the dataset's.
    #[serde(default)]
    pub table_title: Option<String>,
}

impl Kho {
    /// Create a dataset with one table whose schema is proposed from the file (ASCII
    /// snake_case field names with the headers as titles, the dictionary terms the content
    /// confirms, a complete unique column as key), then check the file against it: the
    /// returned upload is ready to publish as the first version. Until then the dataset is a
    /// draft. The usual rules hold: a personal column (a CCCD, a phone number…) keeps the
    /// dataset from being open, and the refusal names it.
    pub async fn start_dataset_from_file(
        &self,
        ctx: &Ctx,
        start: StartFromFile,
        path: &Path,
        file_name: &str,
        opts: &SheetOptions,
    ) -> Result<(Dataset, Upload)> {
        ctx.principal.require_member()?;
        let title = start.title.trim().to_string();
        if title.is_empty() {
            return Err(Error::validation(vec![
                kho_core::Detail::new("title", "must not be empty").with_vi("Hãy đặt tên cho bộ dữ liệu"),
            ]));
        }
        let inferred = self.infer_schema(ctx, path, opts).await?;
        let table_title = start
            .table_title
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .or_else(|| opts.sheet.clone())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            // A dataset started from one file is, to begin with, that one table.
            .unwrap_or_else(|| title.clone());
        let table = Some(kho_core::text::slugify(&table_title)).filter(|n| n.len() >= 2).unwrap_or("du-lieu".into());
        let slug = self.free_slug(&kho_core::text::slugify(&title)).await?;
        let input = DatasetInput {
            slug,
            title,
            title_en: None,
            description: String::new(),
            description_en: None,
            owner_agency_id: start.owner_agency_id,
            catalogs: Vec::new(),
            access_level: start.access_level,
            allowed_agency_ids: Vec::new(),
            license: (start.access_level == AccessLevel::Open).then(|| "CC-BY-4.0".to_string()),
            frequency: start.frequency,
            sector: None,
            tags: Vec::new(),
            spatial: None,
            temporal_start: None,
            temporal_end: None,
            contact_name: None,
            contact_email: None,
            resources: Vec::new(),
        };
        let resource =
            ResourceInput { name: table.clone(), title: Some(table_title), description: None, schema: inferred.schema };
        let d = self.create_dataset(ctx, input, vec![resource]).await?;
        let upload = self.stage_upload(ctx, &d.id, &table, path, file_name, opts).await?;
        Ok((d, upload))
    }

    /// `base`, or `base-2`, `base-3`… : the first slug no dataset uses yet.
    async fn free_slug(&self, base: &str) -> Result<String> {
        let base = if base.len() < 2 { "bo-du-lieu".to_string() } else { base.chars().take(90).collect() };
        for n in 1..1000 {
            let slug = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            if self.store.dataset(&slug).await?.is_none() {
                return Ok(slug);
            }
        }
        Err(Error::new(ErrorCode::SlugTaken, format!("no free slug like '{base}'")))
    }
}
