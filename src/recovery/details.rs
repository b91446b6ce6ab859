//! What an audit record of a recovery says beyond who, what and how it ended. Each stage fills
//! its own fields (the target stage `privilege`, the risk read `risk`, the pre-flight `to`,
//! `lifetimeMinutes`, `usableOnce`, delivery `provider` and `messageId`, ...), and the whole is
//! serialized once, where the audit record is written (`Details::to_value`). A field never set is
//! left out of the record.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::privilege::Privilege;
use crate::graph::models::AuthMethod;

/// The audit details of one recovery attempt (a pass, a reset, a code, a confirmation).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    /// A reset's scope (`methods`, `all`, `portal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The channel a pass or a code takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'static str>,
    /// The verification a code send or a confirmation is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<Uuid>,
    /// How the requester was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSeen>,
    /// Why the target is privileged (the first way found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Privilege>,
    /// What Entra ID Protection says of the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskSeen>,
    /// The second approver's part: the approval that let it through, or what it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<serde_json::Value>,
    /// A reset's plan: the methods it would remove, what would remain, whether that is nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<MethodEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Vec<MethodEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaves_nothing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// The address a pass goes to, masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usable_once: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap_method_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Who was told (masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified: Option<Vec<String>>,
    /// The pass went out, but nobody could be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_failed: Option<bool>,
    /// A retry finished what an earlier attempt delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    /// A code: where it went (masked) and until when it counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// A reset's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<MethodEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<MethodEntry>>,
    /// Methods Graph does not delete (the default phone with no other method to take the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<Vec<MethodEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_revoked: Option<bool>,
    /// A reset's pass: its own details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap: Option<Box<Details>>,
    /// A confirmation link's answer: `confirm` or `not_me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    /// Recoveries for the user blocked until then ("this is not me"), or the block lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<String>,
    /// What an approver said when lifting a block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Why the attempt did not succeed (the message the caller got).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How the requester was verified, as an audit record or an approver sees it (never a code, never
/// its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerificationSeen {
    /// A verification the service made.
    #[serde(rename_all = "camelCase")]
    Service {
        id: Uuid,
        channel: String,
        sent_to: String,
        created_at: String,
        verified_at: Option<String>,
    },
    /// The block the caller typed (`TAP_REQUIRE_VERIFICATION=attested`).
    #[serde(rename_all = "camelCase")]
    Attested {
        method: String,
        verified_by: String,
        verified_at: String,
    },
}

impl VerificationSeen {
    /// The channel a service verification's code went by.
    pub fn channel(&self) -> Option<&str> {
        match self {
            VerificationSeen::Service { channel, .. } => Some(channel),
            VerificationSeen::Attested { .. } => None,
        }
    }
}

/// What the risk read found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RiskSeen {
    /// Entra ID Protection's rating (both `None`: no record, no risk).
    Rated {
        level: Option<String>,
        state: Option<String>,
    },
    /// Not read, and why (`RISK_CHECK=if_available` on a tenant without the licence).
    Skipped { checked: bool, why: &'static str },
}

/// One authentication method as a reset's plan and outcome list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MethodEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MethodEntry {
    pub fn of(method: &AuthMethod) -> MethodEntry {
        MethodEntry {
            kind: method.type_name().to_owned(),
            id: Some(method.id.clone()),
            label: method.label(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_never_set_is_left_out_and_names_are_camel_case() {
        let d = Details {
            channel: Some("sms"),
            lifetime_minutes: Some(60),
            verification: Some(VerificationSeen::Attested {
                method: "callback".into(),
                verified_by: "agent".into(),
                verified_at: "2026-12-06T10:00:00Z".into(),
            }),
            risk: Some(RiskSeen::Rated {
                level: Some("medium".into()),
                state: None,
            }),
            ..Details::default()
        };
        assert_eq!(
            crate::audit::details(&d),
            serde_json::json!({"channel": "sms", "lifetimeMinutes": 60,
                "verification": {"method": "callback", "verifiedBy": "agent", "verifiedAt": "2026-12-06T10:00:00Z"},
                "risk": {"level": "medium", "state": null}})
        );
    }

    #[test]
    fn a_stored_verification_reads_back_as_the_kind_it_was() {
        let service = serde_json::json!({"id": Uuid::nil(), "channel": "email", "sentTo": "a***@contoso.com",
            "createdAt": "2026-12-06T10:00:00.000Z", "verifiedAt": null});
        let seen: VerificationSeen = serde_json::from_value(service.clone()).unwrap();
        assert_eq!(seen.channel(), Some("email"));
        assert_eq!(serde_json::to_value(&seen).unwrap(), service);
    }
}
