//! Reading and verifying the audit log.

use kho_core::Result;
use kho_core::audit::{AuditRecord, ChainBreak, ChainVerifier};
use kho_meta::AuditFilter;

use crate::{Ctx, Kho};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub entries_checked: u64,
    /// The first broken entry, if any.
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

impl Kho {
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
