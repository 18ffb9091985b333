//! First start and demo content.
//!
//! On every start kho makes sure the reference data is loaded and the instance is bound to its
//! province. On the first start it also creates the province's agency tree (People's Committee,
//! data center, one committee per commune) and the first administrator.

use kho_core::model::{
    AccessLevel, AdminEra, AdminLevel, AgencyKind, CatalogKind, DatasetInput, Frequency, NewAgency, ResourceInput, Role,
};
use kho_core::text::slugify;
use kho_core::{Error, ErrorCode, Result};
use kho_meta::AdminUnitFilter;
use serde_json::json;

use crate::users::NewUser;
use crate::{Ctx, Kho};

pub const DATA_CENTER_CODE: &str = "trung-tam-du-lieu";
pub const PROVINCE_COMMITTEE_CODE: &str = "ubnd-tinh";

#[derive(Debug, Default)]
pub struct InitReport {
    pub admin_units_loaded: bool,
    pub agencies_created: usize,
    /// Set when the first administrator was created: their username and one-time password.
    pub first_admin: Option<(String, String)>,
}

fn refdata_err(e: kho_refdata::RefError) -> Error {
    Error::internal(format!("reference data: {e}"))
}

impl Kho {
    /// Prepare the store for serving. Safe to run on every start.
    pub async fn init(&self, initial_admin_password: Option<&str>) -> Result<InitReport> {
        let mut report = InitReport::default();
        let ctx = Ctx::system();
        // Parsing 14,000 units and the crosswalk takes a while: do it only when the compiled-in
        // data is newer than what the store holds.
        let loaded = self.store.setting("admin_units_version").await?;
        if loaded.as_deref() != Some(kho_refdata::ADMIN_UNITS_VERSION) || self.store.admin_unit_count().await? == 0 {
            let units = kho_refdata::admin_units().map_err(refdata_err)?;
            let cw = kho_refdata::crosswalk().map_err(refdata_err)?;
            self.store.load_admin_units(&units, &cw).await?;
            self.store.set_setting("admin_units_version", kho_refdata::ADMIN_UNITS_VERSION).await?;
            report.admin_units_loaded = true;
        }
        let province = self.config.province_code.clone();
        let unit = self
            .store
            .admin_unit(AdminEra::Current, &province)
            .await?
            .filter(|u| u.level == AdminLevel::Province)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnknownAdminUnit,
                    format!("province code '{province}' is not one of the 34 provinces effective 1 July 2025 (e.g. 14 Sơn La, 40 Nghệ An)"),
                )
            })?;
        match self.store.setting("province_code").await? {
            Some(p) if p != province => {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "this data folder belongs to province {p}; it cannot serve province {province}. Use another data folder or set province_code = \"{p}\""
                    ),
                ));
            }
            Some(_) => {}
            None => self.store.set_setting("province_code", &province).await?,
        }
        if self.store.terms().await?.is_empty() {
            for t in kho_refdata::dictionary_terms().map_err(refdata_err)? {
                self.add_term(&ctx, t).await?;
            }
        }
        if self.store.list_agencies().await?.is_empty() {
            let root = self
                .create_agency(
                    &ctx,
                    NewAgency {
                        code: PROVINCE_COMMITTEE_CODE.into(),
                        name: format!("Ủy ban nhân dân {}", lower_first(&unit.full_name)),
                        name_en: Some(format!("People's Committee of {}", unit.name_en)),
                        kind: AgencyKind::ProvinceCommittee,
                        parent_id: None,
                        admin_unit_code: Some(unit.code.clone()),
                    },
                )
                .await?;
            self.create_agency(
                &ctx,
                NewAgency {
                    code: DATA_CENTER_CODE.into(),
                    name: format!("Trung tâm Dữ liệu {}", unit.full_name),
                    name_en: Some(format!("{} Data Center", unit.name_en)),
                    kind: AgencyKind::DataCenter,
                    parent_id: Some(root.id),
                    admin_unit_code: Some(unit.code.clone()),
                },
            )
            .await?;
            report.agencies_created += 2;
            let filter = AdminUnitFilter {
                era: Some(AdminEra::Current),
                level: Some(AdminLevel::Commune),
                parent_code: Some(unit.code.clone()),
                limit: 10_000,
                ..Default::default()
            };
            for c in self.store.list_admin_units(&filter).await?.0 {
                self.create_agency(
                    &ctx,
                    NewAgency {
                        code: format!("{}-{}", slugify(&c.full_name), c.code),
                        name: format!("Ủy ban nhân dân {}", lower_first(&c.full_name)),
                        name_en: Some(format!("People's Committee of {} {}", c.name_en, c.unit_type_en)),
                        kind: AgencyKind::CommuneCommittee,
                        parent_id: Some(root.id),
                        admin_unit_code: Some(c.code.clone()),
                    },
                )
                .await?;
                report.agencies_created += 1;
            }
        }
        if self.store.user_count().await? == 0 {
            let dc = self
                .store
                .agency_by_code(DATA_CENTER_CODE)
                .await?
                .ok_or_else(|| Error::internal("the data center agency is missing"))?;
            let password = match initial_admin_password {
                Some(p) => p.to_string(),
                None => crate::auth::random_secret(9),
            };
            self.create_user(
                &ctx,
                NewUser {
                    username: "admin".into(),
                    display_name: "Quản trị hệ thống".into(),
                    email: None,
                    agency_id: dc.id,
                    role: Role::Admin,
                    password: password.clone(),
                    // A generated password is shown once on the console: replace it at once.
                    must_change_password: initial_admin_password.is_none(),
                },
            )
            .await?;
            report.first_admin = Some(("admin".into(), password));
        }
        Ok(report)
    }

    /// Load demo content: the province's departments, a steward and a viewer for some of them,
    /// and datasets at every access level whose schemas use the dictionary. Idempotent.
    pub async fn load_demo(&self) -> Result<Vec<(String, String)>> {
        let ctx = Ctx::system();
        let mut credentials = Vec::new();
        if self.store.setting("demo_loaded").await?.is_some() {
            return Ok(credentials);
        }
        let root = self
            .store
            .agency_by_code(PROVINCE_COMMITTEE_CODE)
            .await?
            .ok_or_else(|| Error::internal("run kho init first: the province committee is missing"))?;
        let province = self.config.province_code.clone();
        let departments = [
            ("so-tai-chinh", "Sở Tài chính", "Department of Finance"),
            ("so-noi-vu", "Sở Nội vụ", "Department of Home Affairs"),
            ("so-y-te", "Sở Y tế", "Department of Health"),
            ("so-giao-duc-va-dao-tao", "Sở Giáo dục và Đào tạo", "Department of Education and Training"),
            (
                "so-nong-nghiep-va-moi-truong",
                "Sở Nông nghiệp và Môi trường",
                "Department of Agriculture and Environment",
            ),
            (
                "so-van-hoa-the-thao-va-du-lich",
                "Sở Văn hóa, Thể thao và Du lịch",
                "Department of Culture, Sports and Tourism",
            ),
            ("so-cong-thuong", "Sở Công Thương", "Department of Industry and Trade"),
            ("so-khoa-hoc-va-cong-nghe", "Sở Khoa học và Công nghệ", "Department of Science and Technology"),
        ];
        let mut ids = std::collections::HashMap::new();
        for (code, name, en) in departments {
            let a = match self.store.agency_by_code(code).await? {
                Some(a) => a,
                None => {
                    self.create_agency(
                        &ctx,
                        NewAgency {
                            code: code.into(),
                            name: name.into(),
                            name_en: Some(en.into()),
                            kind: AgencyKind::Department,
                            parent_id: Some(root.id),
                            admin_unit_code: Some(province.clone()),
                        },
                    )
                    .await?
                }
            };
            ids.insert(code, a.id);
        }
        let people = [
            ("yte.canbo", "Trần Thị Bình", "so-y-te", Role::Steward),
            ("taichinh.canbo", "Lê Văn Cường", "so-tai-chinh", Role::Steward),
            ("noivu.canbo", "Phạm Thị Dung", "so-noi-vu", Role::Steward),
            ("congthuong.xem", "Hoàng Văn Em", "so-cong-thuong", Role::Viewer),
        ];
        for (username, display, agency, role) in people {
            let password = format!("demo-{}", username.replace('.', "-"));
            if self.store.user_credentials(username).await?.is_none() {
                self.create_account(
                    &ctx,
                    NewUser {
                        username: username.into(),
                        display_name: display.into(),
                        email: None,
                        agency_id: ids[agency],
                        role,
                        password: password.clone(),
                        must_change_password: false,
                    },
                    false,
                )
                .await?;
            }
            credentials.push((username.to_string(), password));
        }
        for (agency, input, resources) in demo_datasets(&province, &ids) {
            if self.store.dataset(&input.slug).await?.is_none() {
                let mut input = input;
                input.owner_agency_id = Some(ids[agency]);
                self.create_dataset(&ctx, input, resources).await?;
            }
        }
        self.load_demo_data(&ids).await?;
        self.store.set_setting("demo_loaded", "1").await?;
        Ok(credentials)
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

// Positional on purpose: the demo datasets below read as a table, one call per dataset.
#[allow(clippy::too_many_arguments)]
fn input(
    slug: &str,
    title: &str,
    title_en: &str,
    description: &str,
    level: AccessLevel,
    catalogs: Vec<CatalogKind>,
    frequency: Frequency,
    sector: &str,
    tags: &[&str],
    spatial: &str,
) -> DatasetInput {
    DatasetInput {
        slug: slug.into(),
        title: title.into(),
        title_en: Some(title_en.into()),
        description: description.into(),
        description_en: None,
        owner_agency_id: None,
        catalogs,
        access_level: level,
        allowed_agency_ids: vec![],
        license: Some(if level == AccessLevel::Open { "CC-BY-4.0" } else { "" }.into())
            .filter(|l: &String| !l.is_empty()),
        frequency,
        sector: Some(sector.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        spatial: Some(spatial.into()),
        temporal_start: None,
        temporal_end: None,
        contact_name: Some("Bộ phận dữ liệu".into()),
        contact_email: Some("dulieu@example.gov.vn".into()),
        resources: vec![],
    }
}

fn resource(name: &str, title: &str, schema: serde_json::Value) -> ResourceInput {
    ResourceInput { name: name.into(), title: Some(title.into()), description: None, schema }
}

type Demo = (&'static str, DatasetInput, Vec<ResourceInput>);

fn demo_datasets(province: &str, ids: &std::collections::HashMap<&str, i64>) -> Vec<Demo> {
    use AccessLevel::*;
    use CatalogKind as C;
    let mut restricted = input(
        "ho-kinh-doanh-ca-the",
        "Hộ kinh doanh cá thể đăng ký trên địa bàn tỉnh",
        "Registered household businesses",
        "Danh sách hộ kinh doanh đã đăng ký, mã số thuế và địa chỉ; chia sẻ cho Sở Công Thương.",
        Restricted,
        vec![C::Shared, C::Master],
        Frequency::Monthly,
        "kinh-te",
        &["doanh nghiệp", "hộ kinh doanh", "mã số thuế"],
        province,
    );
    restricted.allowed_agency_ids = vec![ids["so-cong-thuong"]];
    vec![
        (
            "so-noi-vu",
            input(
                "don-vi-hanh-chinh-cap-xa",
                "Danh mục đơn vị hành chính cấp xã",
                "Commune-level administrative units",
                "Các xã, phường, đặc khu của tỉnh từ ngày 01/7/2025, theo mã của Tổng cục Thống kê.",
                Open,
                vec![C::Open, C::Shared, C::Master],
                Frequency::Irregular,
                "hanh-chinh",
                &["đơn vị hành chính", "xã", "phường", "sáp nhập 2025"],
                province,
            ),
            vec![resource(
                "xa-phuong",
                "Xã, phường, đặc khu",
                json!({"fields": [
                    {"name": "ma_xa", "title": "Mã xã", "dictionaryTerm": "commune_code", "constraints": {"required": true}},
                    {"name": "ten_xa", "title": "Tên xã", "type": "string", "constraints": {"required": true}},
                    {"name": "loai", "title": "Loại đơn vị", "type": "string", "constraints": {"enum": ["Xã", "Phường", "Đặc khu"]}},
                    {"name": "ma_tinh", "title": "Mã tỉnh", "dictionaryTerm": "province_code"}
                ], "primaryKey": ["ma_xa"]}),
            )],
        ),
        (
            "so-tai-chinh",
            input(
                "dan-so-dien-tich-tinh",
                "Dân số và diện tích các tỉnh, thành phố năm 2025",
                "Population and area of provinces, 2025",
                "Diện tích tự nhiên và quy mô dân số của 34 tỉnh, thành phố sau sắp xếp đơn vị hành chính.",
                Open,
                vec![C::Open, C::Shared],
                Frequency::Annual,
                "dan-so",
                &["dân số", "diện tích", "thống kê"],
                province,
            ),
            vec![resource(
                "tinh-thanh",
                "Tỉnh, thành phố",
                json!({"fields": [
                    {"name": "ma_tinh", "title": "Mã tỉnh", "dictionaryTerm": "province_code", "constraints": {"required": true}},
                    {"name": "ten_tinh", "title": "Tên tỉnh", "type": "string"},
                    {"name": "dan_so", "title": "Dân số (người)", "dictionaryTerm": "population"},
                    {"name": "dien_tich", "title": "Diện tích (km²)", "dictionaryTerm": "area_km2"}
                ], "primaryKey": "ma_tinh"}),
            )],
        ),
        (
            "so-y-te",
            input(
                "co-so-y-te",
                "Cơ sở khám bệnh, chữa bệnh",
                "Health facilities",
                "Bệnh viện, trung tâm y tế và trạm y tế xã đang hoạt động, theo địa bàn.",
                Shared,
                vec![C::Shared, C::Sectoral],
                Frequency::Quarterly,
                "y-te",
                &["y tế", "bệnh viện", "trạm y tế"],
                province,
            ),
            vec![resource(
                "co-so",
                "Cơ sở y tế",
                json!({"fields": [
                    {"name": "ma_co_so", "title": "Mã cơ sở", "type": "string", "constraints": {"required": true, "unique": true}},
                    {"name": "ten_co_so", "title": "Tên cơ sở", "type": "string"},
                    {"name": "ma_xa", "title": "Mã xã", "dictionaryTerm": "commune_code"},
                    {"name": "so_giuong", "title": "Số giường bệnh", "type": "integer", "constraints": {"minimum": 0}},
                    {"name": "dien_thoai", "title": "Điện thoại", "dictionaryTerm": "phone", "personal": false,
                     "description": "Số điện thoại của cơ sở, không phải của một người."}
                ], "primaryKey": "ma_co_so"}),
            )],
        ),
        (
            "so-tai-chinh",
            restricted,
            vec![resource(
                "ho-kinh-doanh",
                "Hộ kinh doanh",
                json!({"fields": [
                    {"name": "mst", "dictionaryTerm": "mst", "constraints": {"required": true}},
                    {"name": "ten_ho", "type": "string"},
                    {"name": "chu_ho_cccd", "dictionaryTerm": "cccd"},
                    {"name": "ma_xa", "dictionaryTerm": "commune_code"},
                    {"name": "dia_chi", "dictionaryTerm": "address_detail"},
                    {"name": "ngay_dang_ky", "type": "date"}
                ], "primaryKey": "mst"}),
            )],
        ),
        (
            "so-noi-vu",
            input(
                "can-bo-cong-chuc-cap-xa",
                "Cán bộ, công chức cấp xã",
                "Commune civil servants",
                "Hồ sơ cán bộ, công chức cấp xã: chỉ Sở Nội vụ được xem.",
                Private,
                vec![C::Sectoral],
                Frequency::Monthly,
                "noi-vu",
                &["cán bộ", "công chức", "nhân sự"],
                province,
            ),
            vec![resource(
                "can-bo",
                "Cán bộ",
                json!({"fields": [
                    {"name": "cccd", "dictionaryTerm": "cccd", "constraints": {"required": true}},
                    {"name": "ho_ten", "dictionaryTerm": "full_name"},
                    {"name": "ngay_sinh", "dictionaryTerm": "date_of_birth"},
                    {"name": "gioi_tinh", "dictionaryTerm": "gender"},
                    {"name": "dien_thoai", "dictionaryTerm": "phone"},
                    {"name": "email", "dictionaryTerm": "email"},
                    {"name": "ma_xa", "dictionaryTerm": "commune_code"}
                ], "primaryKey": "cccd"}),
            )],
        ),
        (
            "so-van-hoa-the-thao-va-du-lich",
            input(
                "co-so-luu-tru-du-lich",
                "Cơ sở lưu trú du lịch",
                "Tourist accommodation establishments",
                "Khách sạn, nhà nghỉ, homestay được cấp phép; số phòng và hạng sao.",
                Open,
                vec![C::Open, C::Sectoral],
                Frequency::Semiannual,
                "du-lich",
                &["du lịch", "khách sạn", "homestay"],
                province,
            ),
            vec![resource(
                "co-so-luu-tru",
                "Cơ sở lưu trú",
                json!({"fields": [
                    {"name": "ten", "type": "string", "constraints": {"required": true}},
                    {"name": "hang_sao", "type": "integer", "constraints": {"minimum": 0, "maximum": 5}},
                    {"name": "so_phong", "type": "integer", "constraints": {"minimum": 1}},
                    {"name": "ma_xa", "dictionaryTerm": "commune_code"},
                    {"name": "dien_thoai", "title": "Điện thoại đặt phòng", "dictionaryTerm": "phone", "personal": false,
                     "description": "Số điện thoại của cơ sở kinh doanh, không phải của cá nhân."}
                ]}),
            )],
        ),
    ]
}

/// Titles of the demo files' columns, by field name (meanings from each source's documentation).
const DEMO_TITLES: &[(&str, &str)] = &[
    ("ma_xa", "Mã xã"),
    ("ten_xa", "Tên xã, phường"),
    ("dien_tich", "Diện tích (km²)"),
    ("dan_so", "Dân số (người)"),
    ("prov", "Tỉnh, thành phố"),
    ("province_code", "Mã tỉnh"),
    ("year", "Năm"),
    ("pci_entry", "Gia nhập thị trường"),
    ("pci_land", "Tiếp cận đất đai"),
    ("pci_transparency", "Tính minh bạch"),
    ("pci_time", "Chi phí thời gian"),
    ("pci_informal", "Chi phí không chính thức"),
    ("pci_implement", "Tính nhất quán trong thực thi"),
    ("pci_bias", "Cạnh tranh bình đẳng"),
    ("pci_proactive", "Tính năng động"),
    ("pci_support", "Dịch vụ hỗ trợ doanh nghiệp"),
    ("pci_labor", "Đào tạo lao động"),
    ("pci_legal", "Thiết chế pháp lý"),
    ("pci_unweighted", "PCI chưa trọng số"),
    ("pci_weighted", "PCI có trọng số"),
    ("total_rev", "Tổng thu (triệu đồng)"),
    ("ratio", "Tỷ lệ điều tiết (%)"),
    ("total_exp", "Tổng chi (triệu đồng)"),
    ("balance_trans", "Bổ sung cân đối (triệu đồng)"),
    ("target_trans", "Bổ sung có mục tiêu (triệu đồng)"),
    ("project_trans", "Bổ sung theo dự án (triệu đồng)"),
    ("net_trans", "Bổ sung thuần (triệu đồng)"),
    ("trans_rev", "Bổ sung so với thu"),
    ("south", "Thuộc phía Nam"),
    ("site", "Trạm quan trắc"),
    ("parameter", "Thông số"),
    ("date_lt", "Thời điểm (giờ địa phương)"),
    ("month", "Tháng"),
    ("day", "Ngày"),
    ("hour", "Giờ"),
    ("nowcast_conc", "Nồng độ NowCast"),
    ("aqi", "Chỉ số AQI"),
    ("aqi_category", "Mức chất lượng không khí"),
    ("raw_conc", "Nồng độ đo được"),
    ("conc_unit", "Đơn vị nồng độ"),
    ("duration", "Thời lượng đo"),
    ("qc_name", "Kết quả kiểm định"),
];

macro_rules! demo_file {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo/", $name))
    };
}

/// Read a CSV text into header + rows (the demo files are well-formed; a broken one is skipped).
fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = text.trim_start_matches('\u{feff}');
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = r.headers().map(|h| h.iter().map(str::to_string).collect()).unwrap_or_default();
    let rows = r.records().filter_map(|x| x.ok()).map(|rec| rec.iter().map(str::to_string).collect()).collect();
    (headers, rows)
}

fn to_csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(headers);
    for r in rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

impl Kho {
    /// Stage and publish `csv` as the next version of a demo table (valid rows; the rest in quarantine).
    async fn publish_demo(&self, ctx: &Ctx, dataset: &str, resource: &str, file_name: &str, csv: &str) -> Result<()> {
        tokio::fs::create_dir_all(&self.config.upload_dir).await.map_err(|e| Error::internal(e.to_string()))?;
        let path = self.config.upload_dir.join(format!("demo-{}.csv", uuid::Uuid::now_v7()));
        tokio::fs::write(&path, csv).await.map_err(|e| Error::internal(e.to_string()))?;
        let staged = self.stage_upload(ctx, dataset, resource, &path, file_name, &Default::default()).await;
        let _ = tokio::fs::remove_file(&path).await;
        let upload = staged?;
        let opts = crate::PublishOptions { skip_invalid: true, confirm_removal: true, ..Default::default() };
        self.publish_upload(ctx, &upload.id, opts).await?;
        Ok(())
    }

    /// A draft schema for demo data, inferred as a steward would get it.
    async fn demo_schema(&self, ctx: &Ctx, csv: &str) -> Result<serde_json::Value> {
        tokio::fs::create_dir_all(&self.config.upload_dir).await.map_err(|e| Error::internal(e.to_string()))?;
        let path = self.config.upload_dir.join(format!("demo-{}.csv", uuid::Uuid::now_v7()));
        tokio::fs::write(&path, csv).await.map_err(|e| Error::internal(e.to_string()))?;
        let inferred = self.infer_schema(ctx, &path, &Default::default()).await;
        let _ = tokio::fs::remove_file(&path).await;
        let mut schema = inferred?.schema;
        // The source files' columns are named in English or in short codes; the demo gives
        // them the titles a Vietnamese reader knows them by, as a steward would.
        if let Some(fields) = schema.get_mut("fields").and_then(serde_json::Value::as_array_mut) {
            for f in fields {
                let name = f.get("name").and_then(serde_json::Value::as_str).unwrap_or("");
                if let Some((_, title)) = DEMO_TITLES.iter().find(|(n, _)| *n == name) {
                    f["title"] = serde_json::json!(title);
                }
            }
        }
        Ok(schema)
    }

    /// Real public data for the demo datasets (see data/demo/SOURCES.md).
    pub(crate) async fn load_demo_data(&self, ids: &std::collections::HashMap<&str, i64>) -> Result<()> {
        let ctx = Ctx::system();
        let province = self.config.province_code.clone();

        // The province's communes, from the built-in catalogue.
        let filter = AdminUnitFilter {
            era: Some(AdminEra::Current),
            level: Some(AdminLevel::Commune),
            parent_code: Some(province.clone()),
            limit: 10_000,
            ..Default::default()
        };
        let communes: Vec<Vec<String>> = self
            .store
            .list_admin_units(&filter)
            .await?
            .0
            .into_iter()
            .map(|u| vec![u.code, u.name, u.unit_type, province.clone()])
            .collect();
        let csv = to_csv(&["ma_xa", "ten_xa", "loai", "ma_tinh"], &communes);
        self.publish_demo(&ctx, "don-vi-hanh-chinh-cap-xa", "xa-phuong", "xa-phuong.csv", &csv).await?;

        // Area and population of the 34 provinces.
        let (h, rows) = csv_rows(demo_file!("provinces_2025_area_population.csv"));
        let col = |h: &[String], n: &str| h.iter().position(|x| x == n).unwrap_or(0);
        let (pc, pn, pa, pp) = (col(&h, "province_code"), col(&h, "name"), col(&h, "area_km2"), col(&h, "population"));
        let rows: Vec<Vec<String>> =
            rows.iter().map(|r| vec![r[pc].clone(), r[pn].clone(), r[pp].clone(), r[pa].clone()]).collect();
        let csv = to_csv(&["ma_tinh", "ten_tinh", "dan_so", "dien_tich"], &rows);
        self.publish_demo(&ctx, "dan-so-dien-tich-tinh", "tinh-thanh", "tinh-thanh.csv", &csv).await?;

        // Area and population of the province's communes (some not yet published by the source).
        let (h, rows) = csv_rows(demo_file!("wards_2025_area_population.csv"));
        let (wc, wp, wn, wa, wpop) = (
            col(&h, "ward_code"),
            col(&h, "province_code"),
            col(&h, "gso_full_name"),
            col(&h, "area_km2"),
            col(&h, "population"),
        );
        let rows: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r[wp] == province)
            .map(|r| vec![r[wc].clone(), r[wn].clone(), r[wa].clone(), r[wpop].clone()])
            .collect();
        let csv = to_csv(&["ma_xa", "ten_xa", "dien_tich", "dan_so"], &rows);
        let schema = self.demo_schema(&ctx, &csv).await?;
        self.demo_dataset(
            &ctx,
            ids["so-tai-chinh"],
            "dan-so-dien-tich-xa",
            "Diện tích và dân số các xã, phường năm 2025",
            "Area and population of communes, 2025",
            "Diện tích tự nhiên (km²) và quy mô dân số của từng xã, phường, đặc khu của tỉnh sau sắp xếp ngày 01/7/2025. \
             Nguồn: sapnhap.bando.com.vn, tổng hợp bởi dự án vietnamadminunits (MIT).",
            Frequency::Annual,
            "dan-so",
            &["dân số", "diện tích", "xã", "sáp nhập 2025"],
            "xa-phuong",
            schema,
        )
        .await?;
        self.publish_demo(&ctx, "dan-so-dien-tich-xa", "xa-phuong", "xa-phuong-dan-so.csv", &csv).await?;

        // Planned provincial budgets, all 63 (pre-2025) provinces.
        let csv = demo_file!("vnbudget_plan.csv");
        let schema = self.demo_schema(&ctx, csv).await?;
        self.demo_dataset(
            &ctx,
            ids["so-tai-chinh"],
            "du-toan-ngan-sach-cac-tinh",
            "Dự toán thu, chi ngân sách các tỉnh 2006–2017",
            "Planned provincial budgets 2006–2017",
            "Dự toán tổng thu, tổng chi, tỷ lệ điều tiết và bổ sung cân đối của 63 tỉnh, thành phố (triệu đồng). \
             Nguồn: Bộ Tài chính (mof.gov.vn), tổng hợp bởi gói vietnamdata (CC0).",
            Frequency::Annual,
            "tai-chinh",
            &["ngân sách", "dự toán", "tài chính"],
            "ngan-sach",
            schema,
        )
        .await?;
        self.publish_demo(&ctx, "du-toan-ngan-sach-cac-tinh", "ngan-sach", "vnbudget_plan.csv", csv).await?;

        // The Provincial Competitiveness Index.
        let csv = demo_file!("pci.csv");
        let schema = self.demo_schema(&ctx, csv).await?;
        self.demo_dataset(
            &ctx,
            ids["so-cong-thuong"],
            "chi-so-nang-luc-canh-tranh-pci",
            "Chỉ số năng lực cạnh tranh cấp tỉnh (PCI) 2005–2016",
            "Provincial Competitiveness Index (PCI) 2005–2016",
            "Điểm PCI tổng hợp và các chỉ số thành phần theo tỉnh, năm. Nguồn: VCCI/USAID (pcivietnam.org), \
             tổng hợp bởi gói vietnamdata (CC0).",
            Frequency::Annual,
            "kinh-te",
            &["PCI", "năng lực cạnh tranh", "doanh nghiệp"],
            "pci",
            schema,
        )
        .await?;
        self.publish_demo(&ctx, "chi-so-nang-luc-canh-tranh-pci", "pci", "pci.csv", csv).await?;

        // Hourly PM2.5: the end of 2019 first, then 2020 added as a second version.
        let (y2019, y2020) = (demo_file!("Hanoi_PM2.5_2019_YTD.csv"), demo_file!("Hanoi_PM2.5_2020_YTD.csv"));
        let schema = self.demo_schema(&ctx, y2019).await?;
        self.demo_dataset(
            &ctx,
            ids["so-nong-nghiep-va-moi-truong"],
            "bui-min-pm25-ha-noi",
            "Nồng độ bụi mịn PM2.5 theo giờ tại Hà Nội",
            "Hourly PM2.5 in Hà Nội",
            "Số liệu quan trắc PM2.5 từng giờ (µg/m³) và chỉ số AQI tại trạm Đại sứ quán Hoa Kỳ, Hà Nội. Giá trị -999 là thiếu số liệu. \
             Nguồn: U.S. Department of State AirNow, qua dự án hanoiair (MIT).",
            Frequency::Daily,
            "moi-truong",
            &["không khí", "PM2.5", "AQI", "môi trường"],
            "pm25",
            schema,
        )
        .await?;
        self.publish_demo(&ctx, "bui-min-pm25-ha-noi", "pm25", "Hanoi_PM2.5_2019_YTD.csv", y2019).await?;
        let both = format!("{}{}", y2019, y2020.split_once('\n').map_or("", |(_, rest)| rest));
        self.publish_demo(&ctx, "bui-min-pm25-ha-noi", "pm25", "Hanoi_PM2.5_2019_2020.csv", &both).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn demo_dataset(
        &self,
        ctx: &Ctx,
        owner: i64,
        slug: &str,
        title: &str,
        title_en: &str,
        description: &str,
        frequency: Frequency,
        sector: &str,
        tags: &[&str],
        resource: &str,
        schema: serde_json::Value,
    ) -> Result<()> {
        let mut d = input(
            slug,
            title,
            title_en,
            description,
            AccessLevel::Open,
            vec![CatalogKind::Open],
            frequency,
            sector,
            tags,
            &self.config.province_code,
        );
        d.owner_agency_id = Some(owner);
        let r = ResourceInput { name: resource.into(), title: Some(title.into()), description: None, schema };
        self.create_dataset(ctx, d, vec![r]).await?;
        Ok(())
    }
}
