//! The province's organisations and the administrative units they govern.

use kho_core::model::{AdminEra, AdminUnit, Agency, AgencyKind, CrosswalkEntry, NewAgency};
use kho_core::text::slug_problem;
use kho_core::{Detail, Error, ErrorCode, Result};
pub use kho_meta::AdminUnitFilter;

use crate::{Ctx, Kho};

/// An agency with its children, for showing the tree.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AgencyNode {
    #[serde(flatten)]
    pub agency: Agency,
    #[schema(no_recursion)]
    pub children: Vec<AgencyNode>,
}

impl Kho {
    pub(crate) async fn require_agency(&self, id: i64, field: &str) -> Result<Agency> {
        self.store.agency(id).await?.ok_or_else(|| {
            Error::new(ErrorCode::UnknownAgency, format!("agency {id} does not exist"))
                .with_details(vec![Detail::new(field, format!("agency {id} does not exist"))])
        })
    }

    /// Resolve a GSO code to a current (2025) unit. A code abolished by the 2025 merger gets an
    /// error that names the unit(s) it became.
    pub async fn require_admin_unit(&self, code: &str, field: &str) -> Result<AdminUnit> {
        if let Some(u) = self.store.admin_unit(AdminEra::Current, code).await? {
            return Ok(u);
        }
        let message = match self.store.admin_unit(AdminEra::Legacy, code).await? {
            Some(old) => {
                let new: Vec<String> = self.store.crosswalk_from(code).await?.into_iter().map(|c| c.new_code).collect();
                format!(
                    "'{code}' ({}) was abolished on 1 July 2025; use the current code{} {}",
                    old.full_name,
                    if new.len() > 1 { "s" } else { "" },
                    new.join(", ")
                )
            }
            None => format!("'{code}' is not a GSO administrative unit code"),
        };
        Err(Error::new(ErrorCode::UnknownAdminUnit, message.clone()).with_details(vec![Detail::new(field, message)]))
    }

    /// All agencies. Nearly every page and search result names agencies, and they change a few
    /// times a year: the list is kept for a few seconds (and dropped at once when changed here),
    /// so a change made by another process (the command line) shows within that time.
    pub async fn list_agencies(&self) -> Result<Vec<Agency>> {
        Ok(self.shared_agencies().await?.as_ref().clone())
    }

    /// All agencies, shared rather than copied. While they are unchanged this is the same `Arc`
    /// from one read of the store to the next, so what is built from them can be kept until
    /// the pointer changes.
    pub async fn shared_agencies(&self) -> Result<std::sync::Arc<Vec<Agency>>> {
        self.agencies
            .get(|| async {
                // In the order people look for them: the province's committee, its departments
                // and the data center, then the communes; by name within each.
                let mut list = self.store.list_agencies().await?;
                let rank = |k: AgencyKind| match k {
                    AgencyKind::ProvinceCommittee => 0,
                    AgencyKind::Department | AgencyKind::DataCenter => 1,
                    AgencyKind::Other => 2,
                    AgencyKind::CommuneCommittee => 3,
                };
                list.sort_by_cached_key(|a| (rank(a.kind), kho_core::text::fold(&a.name)));
                Ok(list)
            })
            .await
    }

    fn forget_agencies(&self) {
        self.agencies.forget();
    }

    pub async fn agency_tree(&self) -> Result<Vec<AgencyNode>> {
        let all = self.store.list_agencies().await?;
        fn build(parent: Option<i64>, all: &[Agency]) -> Vec<AgencyNode> {
            all.iter()
                .filter(|a| a.parent_id == parent)
                .map(|a| AgencyNode { agency: a.clone(), children: build(Some(a.id), all) })
                .collect()
        }
        Ok(build(None, &all))
    }

    pub async fn get_agency(&self, id_or_code: &str) -> Result<Agency> {
        let found = match id_or_code.parse::<i64>() {
            Ok(id) => self.store.agency(id).await?,
            Err(_) => self.store.agency_by_code(id_or_code).await?,
        };
        found.ok_or_else(|| Error::not_found("agency"))
    }

    /// The agency with this code (never read as an id: `/agencies/{code}` pages).
    pub async fn agency_by_code(&self, code: &str) -> Result<Agency> {
        self.store.agency_by_code(code).await?.ok_or_else(|| Error::not_found("agency"))
    }

    async fn check_agency(&self, new: &NewAgency, id: Option<i64>) -> Result<()> {
        let mut problems = Vec::new();
        if let Some(p) = slug_problem(&new.code) {
            problems.push(Detail::new("code", p));
        }
        if new.name.trim().is_empty() {
            problems.push(Detail::new("name", "must not be empty"));
        }
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        if let Some(p) = new.parent_id {
            self.require_agency(p, "parent_id").await?;
            // Walk up from the new parent: reaching this agency would make a cycle.
            let mut cur = Some(p);
            while let (Some(c), Some(me)) = (cur, id) {
                if c == me {
                    return Err(Error::validation(vec![Detail::new(
                        "parent_id",
                        "would make the agency its own ancestor",
                    )]));
                }
                cur = self.store.agency(c).await?.and_then(|a| a.parent_id);
            }
        }
        if let Some(code) = &new.admin_unit_code {
            self.require_admin_unit(code, "admin_unit_code").await?;
        }
        Ok(())
    }

    pub async fn create_agency(&self, ctx: &Ctx, new: NewAgency) -> Result<Agency> {
        ctx.principal.require_admin()?;
        self.check_agency(&new, None).await?;
        let event =
            ctx.event("agency.create", "agency", "").detail(serde_json::json!({"code": new.code, "name": new.name}));
        let agency = self.store.create_agency(&new, event).await?;
        self.forget_agencies();
        Ok(agency)
    }

    pub async fn update_agency(&self, ctx: &Ctx, id: i64, new: NewAgency) -> Result<Agency> {
        ctx.principal.require_admin()?;
        self.store.agency(id).await?.ok_or_else(|| Error::not_found("agency"))?;
        self.check_agency(&new, Some(id)).await?;
        let event = ctx
            .event("agency.update", "agency", id.to_string())
            .detail(serde_json::json!({"code": new.code, "name": new.name}));
        let agency = self.store.update_agency(id, &new, event).await?;
        self.forget_agencies();
        // Datasets are found by their owner's name too.
        if let Err(e) = self.rebuild_search().await {
            tracing::warn!(error = %e, "could not update the search index");
        }
        Ok(agency)
    }

    pub async fn list_admin_units(&self, filter: &AdminUnitFilter) -> Result<(Vec<AdminUnit>, i64)> {
        self.store.list_admin_units(filter).await
    }

    pub async fn get_admin_unit(&self, era: AdminEra, code: &str) -> Result<AdminUnit> {
        self.store.admin_unit(era, code).await?.ok_or_else(|| Error::not_found("administrative unit"))
    }

    pub async fn crosswalk(&self, old_code: &str) -> Result<Vec<CrosswalkEntry>> {
        self.store.crosswalk_from(old_code).await
    }
}
