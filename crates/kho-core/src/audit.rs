//! The audit log is append-only and hash-chained: each entry stores the hash of the one before
//! it, so changing or deleting any stored entry breaks every hash after it, which
//! `kho audit verify` detects and reports by sequence number.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller asks to be recorded; the store adds sequence number and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub ip: Option<String>,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: &str, object_type: &str, object_id: impl Into<String>) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.into(),
            object_type: object_type.into(),
            object_id: object_id.into(),
            ip: None,
            outcome: "ok".into(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = outcome.into();
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub ip: Option<String>,
    pub outcome: String,
    /// JSON text exactly as hashed.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash over every field but `hash` itself. The fields are joined in a fixed order with a
    /// separator that cannot occur in them unescaped (JSON-encoded strings), so two different
    /// entries never produce the same input.
    pub fn compute_hash(&self) -> String {
        let at = self.at.unix_timestamp_nanos().to_string();
        let parts = [
            self.seq.to_string(),
            at,
            self.actor.clone(),
            self.action.clone(),
            self.object_type.clone(),
            self.object_id.clone(),
            self.ip.clone().unwrap_or_default(),
            self.outcome.clone(),
            self.detail.clone(),
            self.prev_hash.clone(),
        ];
        let encoded = serde_json::to_string(&parts).unwrap_or_default();
        hex::encode(Sha256::digest(encoded.as_bytes()))
    }
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Walks records in sequence order, carrying the previous hash. Feed it every record in turn.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_prev: String,
    expected_seq: Option<i64>,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { expected_prev: GENESIS_HASH.to_string(), expected_seq: None, checked: 0 }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let fail = |reason: String| Err(ChainBreak { seq: r.seq, reason });
        if let Some(seq) = self.expected_seq
            && r.seq != seq
        {
            return fail(format!("expected entry {seq} next, found {} (entries missing)", r.seq));
        }
        if r.prev_hash != self.expected_prev {
            return fail("prev_hash does not match the hash of the entry before it".into());
        }
        if r.compute_hash() != r.hash {
            return fail("the entry's content does not match its hash (it was altered)".into());
        }
        self.expected_prev = r.hash.clone();
        self.expected_seq = Some(r.seq + 1);
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seq),
                    actor: "user:1:admin".into(),
                    action: "dataset.create".into(),
                    object_type: "dataset".into(),
                    object_id: format!("d{seq}"),
                    ip: Some("127.0.0.1".into()),
                    outcome: "ok".into(),
                    detail: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.push(r)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn altered_entry_is_named() {
        let mut c = chain(5);
        c[2].actor = "user:2:mallory".into();
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn deleted_entry_is_named() {
        let mut c = chain(5);
        c.remove(1);
        let err = verify(&c).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.reason.contains("expected entry 2"));
    }

    #[test]
    fn rehashed_entry_breaks_the_next_link() {
        let mut c = chain(4);
        c[1].outcome = "denied".into();
        c[1].hash = c[1].compute_hash();
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }
}
