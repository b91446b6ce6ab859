//! The commands a recovery starts from: the bodies of `POST /api/users/{user}/tap` as sent, and
//! the request they parse into. Every problem in them is a refusal the caller can fix.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{RecoveryError, text_ok};
use crate::audit::Ticket;
use crate::graph::models::UserRef;
use crate::vocab::Channel;
use crate::vocab::Refusal;

/// The body of `POST /api/users/{user}/tap`, as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TapBody {
    pub lifetime_minutes: Option<u32>,
    pub usable_once: Option<bool>,
    pub delivery: DeliveryBody,
    pub ticket: TicketBody,
    pub reason: String,
    pub verification: Option<VerificationBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryBody {
    pub channel: String,
    /// Anything else here (an address, a number) is refused: passes go to addresses of record only.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TicketBody {
    pub system: String,
    pub id: String,
    /// Accepted (a ticket's link, as ServiceNow and Jira send it) and kept nowhere.
    #[allow(dead_code)]
    pub url: Option<String>,
}

/// How the caller shows the requester was verified: a verification the service made (its id),
/// or, where `TAP_REQUIRE_VERIFICATION=attested`, the block the caller types.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerificationBody {
    Service(ServiceVerification),
    /// Queued requests only: the service sends the user a confirmation link and runs the
    /// request once they confirm (`intake`); it then carries `{"id"}` like any other.
    Link(LinkVerification),
    Attested(AttestedVerification),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkVerification {
    /// `link`.
    pub mode: String,
    /// `sms` or `email`: where the link goes.
    pub channel: String,
}

impl LinkVerification {
    /// The channel the link goes by.
    ///
    /// # Errors
    /// `invalid_request`: not `mode: link`, or a channel a link cannot take.
    pub fn channel(&self) -> Result<Channel, RecoveryError> {
        match (self.mode.as_str(), Channel::parse(&self.channel)) {
            ("link", Some(c)) if c != Channel::Manager => Ok(c),
            _ => Err(RecoveryError::refused(
                crate::vocab::Refusal::InvalidRequest,
                "verification {mode: link, channel: sms | email}: the service sends the user a confirmation link and the request waits for their answer",
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceVerification {
    pub id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestedVerification {
    pub method: String,
    pub verified_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
}

/// A parsed, valid request.
#[derive(Debug)]
pub struct TapRequest {
    pub user: UserRef,
    pub lifetime_minutes: Option<u32>,
    pub usable_once: Option<bool>,
    pub channel: Channel,
    pub ticket: Ticket,
    pub reason: String,
    pub verification: Option<VerificationBody>,
}

fn bad(code: Refusal, message: impl Into<String>) -> RecoveryError {
    RecoveryError::refused(code, message)
}

impl TapRequest {
    /// Parse the route's `{user}` and the body; every problem is a 400 the caller can fix.
    ///
    /// # Errors
    /// `invalid_request`, `address_not_allowed`, `invalid_user`.
    pub fn parse(user: &str, body: &[u8]) -> Result<TapRequest, RecoveryError> {
        let user = UserRef::parse(user).map_err(|e| bad(Refusal::InvalidUser, e))?;
        let body: TapBody = super::parse_body(
            body,
            "{delivery: {channel}, ticket: {system, id}, reason, lifetimeMinutes?, usableOnce?, verification?}",
        )?;
        if !body.delivery.other.is_empty() {
            return Err(bad(
                Refusal::AddressNotAllowed,
                "a pass goes only to an address of record; remove everything but delivery.channel",
            ));
        }
        let channel = Channel::parse(&body.delivery.channel).ok_or_else(|| {
            bad(
                Refusal::InvalidRequest,
                "delivery.channel must be sms, email or manager",
            )
        })?;
        if !text_ok(&body.ticket.system, 32) || !text_ok(&body.ticket.id, 64) {
            return Err(bad(
                Refusal::InvalidRequest,
                "ticket.system (up to 32 characters) and ticket.id (up to 64) are required",
            ));
        }
        if !text_ok(&body.reason, 500) {
            return Err(bad(
                Refusal::InvalidRequest,
                "reason is required (up to 500 characters)",
            ));
        }
        Ok(TapRequest {
            user,
            lifetime_minutes: body.lifetime_minutes,
            usable_once: body.usable_once,
            channel,
            ticket: Ticket {
                system: body.ticket.system,
                id: body.ticket.id,
            },
            reason: body.reason,
            verification: body.verification,
        })
    }
}
