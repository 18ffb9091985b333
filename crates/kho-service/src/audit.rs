//! Reading and verifying the audit log.

use kho_core::Result;
use kho_core::audit::{AuditRecord, ChainBreak, ChainVerifier};
pub use kho_meta::AuditFilter;

use crate::{Ctx, Kho};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub entries_checked: u64,
    /// The first broken entry, if any.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// An audit entry with the people and objects it names, as a reader knows them.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub record: AuditRecord,
    /// The person who acted (their name now), `None` for an anonymous caller or a system task.
    pub actor_name: Option<String>,
    /// Whether they acted with an API token rather than in a browser session.
    pub by_token: bool,
    /// What the object is called now: a dataset's title, a person's or an agency's name.
    pub object_name: Option<String>,
    /// The object's page, when it has one.
    pub object_link: Option<String>,
}

/// The user id in an actor label (`user:7:…` or `token:3:user:7:…`).
fn user_id_of(actor: &str) -> Option<i64> {
    let rest = &actor[actor.find("user:")? + "user:".len()..];
    rest.split(':').next()?.parse().ok()
}

impl Kho {
    /// Audit entries as an administrator reads them: each with who acted and on what, by name.
    pub async fn audit_entries(&self, ctx: &Ctx, filter: AuditFilter) -> Result<Vec<AuditEntry>> {
        let records = self.list_audit(ctx, filter).await?;
        let users = self.store.list_users(None).await?;
        let agencies = self.list_agencies().await?;
        let mut titles: std::collections::HashMap<String, Option<kho_core::model::Dataset>> = Default::default();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let actor_name = user_id_of(&record.actor)
                .and_then(|id| users.iter().find(|u| u.id == id))
                .map(|u| u.display_name.clone());
            let id = record.object_id.clone();
            let (object_name, object_link) = match record.object_type.as_str() {
                "dataset" if !id.is_empty() => {
                    if !titles.contains_key(&id) {
                        titles.insert(id.clone(), self.store.dataset(&id).await?);
                    }
                    match titles.get(&id).cloned().flatten() {
                        Some(d) => (Some(d.input.title.clone()), Some(format!("/datasets/{}", d.input.slug))),
                        None => (None, None),
                    }
                }
                "user" => match id.parse::<i64>().ok().and_then(|i| users.iter().find(|u| u.id == i)) {
                    Some(u) => (Some(u.display_name.clone()), Some(format!("/admin/users/{}", u.id))),
                    None => (None, None),
                },
                "agency" => match id.parse::<i64>().ok().and_then(|i| agencies.iter().find(|a| a.id == i)) {
                    Some(a) => (Some(a.name.clone()), Some(format!("/admin/agencies/{}", a.id))),
                    None => (None, None),
                },
                "term" if !id.is_empty() => {
                    let name = id.split('@').next().unwrap_or(&id).to_string();
                    (Some(id.clone()), Some(format!("/dictionary/{name}")))
                }
                _ => (None, None),
            };
            let by_token = record.actor.starts_with("token:");
            out.push(AuditEntry { record, actor_name, by_token, object_name, object_link });
        }
        Ok(out)
    }

    pub async fn list_audit(&self, ctx: &Ctx, filter: AuditFilter) -> Result<Vec<AuditRecord>> {
        ctx.principal.require_admin()?;
        let filter = AuditFilter { limit: filter.limit.clamp(1, 500), ..filter };
        self.store.list_audit(&filter).await
    }

    /// Walk the whole chain from the first entry, in chunks, and name the first broken entry.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut v = ChainVerifier::default();
        let mut next = 1;
        loop {
            let chunk = self.store.audit_chunk(next, 5000).await?;
            if chunk.is_empty() {
                break;
            }
            for r in &chunk {
                if let Err(ChainBreak { seq, reason }) = v.push(r) {
                    return Ok(VerifyReport { entries_checked: v.checked, broken_at: Some(seq), reason: Some(reason) });
                }
            }
            next = chunk.last().map_or(next, |r| r.seq + 1);
        }
        Ok(VerifyReport { entries_checked: v.checked, broken_at: None, reason: None })
    }
}
