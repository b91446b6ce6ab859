//! What a caller sees of a request (`GET /api/requests/{id}`, the callback's `data`, the approval
//! webhook): its state and result, never its verification details and never a pass. Typed; the
//! status URL and the approver's links are filled from `vocab::paths`, and the status the
//! synchronous function would have answered comes from the wire's `Answers`.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Action, RequestRecord, State, WriteBackState, rfc3339};
use crate::recovery::Answers;
use crate::recovery::approval::ApprovalView;
use crate::vocab::paths;

/// A request as its caller, an approver or its callback sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView<'a> {
    pub request_id: Uuid,
    /// The request's state (`accepted`, `pending_approval`, `running`, `succeeded`, ...).
    pub status: &'static str,
    pub status_url: String,
    pub action: &'static str,
    pub user: &'a str,
    pub source: SourceView<'a>,
    pub created_at: String,
    pub updated_at: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSeen<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_back: Option<WriteBackSeen<'a>>,
    /// Where an approver opens it in the console (the approval webhook only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SourceView<'a> {
    pub system: &'a str,
    pub ticket: &'a str,
}

#[derive(Debug, Serialize)]
pub struct WriteBackSeen<'a> {
    pub target: Option<&'a str>,
    pub state: WriteBackState,
}

/// The approval, and what an approver checks with the requester through a channel they trust:
/// who asked, how the pass would go, for how long, and why (the caller's text, as text).
#[derive(Debug, Serialize)]
pub struct ApprovalSeen<'a> {
    #[serde(flatten)]
    pub approval: ApprovalView<'a>,
    pub request: AskedSeen<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AskedSeen<'a> {
    pub requested_by: RequesterSeen<'a>,
    pub target: &'a str,
    pub action: &'static str,
    pub scope: Option<&'a str>,
    pub ticket: TicketSeen<'a>,
    pub channel: Option<&'a str>,
    pub lifetime_minutes: Option<u64>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TicketSeen<'a> {
    pub system: &'a str,
    pub id: &'a str,
}

/// Who asked, as an approver must know it: a person (the token's user, or the agent the ticket
/// named, resolved), or `known: false` (an application, or an agent the directory does not
/// know): then any approver may decide, and is told.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequesterSeen<'a> {
    pub known: bool,
    pub person: Option<PersonSeen<'a>>,
    pub given: Option<&'a str>,
    pub name: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub via: &'a str,
    pub note: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonSeen<'a> {
    pub object_id: Option<&'a str>,
    pub upn: Option<&'a str>,
}

/// A request not finished yet, as a user's summary lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenRequest {
    pub request_id: Uuid,
    pub action: &'static str,
    pub status: &'static str,
    pub created_at: String,
}

const UNKNOWN: &str = "requester unknown: no person could be tied to this request (an application's token, or a ticket whose named agent is not in the directory). Any approver may decide it: confirm with the ticket's owner who asked";

impl RequestRecord {
    /// What a caller sees; `answers` gives the status the synchronous function would have
    /// answered for the outcome kept.
    pub fn view(&self, answers: &dyn Answers) -> RequestView<'_> {
        let waiting = self.state == State::PendingApproval && self.approval.is_some();
        RequestView {
            request_id: self.id,
            status: self.state.as_str(),
            status_url: paths::request(self.id),
            action: self.action.as_str(),
            user: &self.user,
            source: SourceView {
                system: &self.source.system,
                ticket: &self.source.ticket,
            },
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            attempts: self.attempts,
            result_status: self.answered.map(|a| answers.status(a)),
            result: self.result.as_ref(),
            finished_at: self.finished_at.map(rfc3339),
            last_error: self.last_error.as_deref().filter(|_| !self.state.is_final()),
            approval: self.approval.as_ref().map(|approval| ApprovalSeen {
                approval: approval.view(),
                request: self.asked(),
            }),
            approve_url: waiting.then(|| paths::approve(self.id)),
            deny_url: waiting.then(|| paths::deny(self.id)),
            write_back: (self.write_back.state != WriteBackState::None).then_some(WriteBackSeen {
                target: self.write_back.target.as_deref(),
                state: self.write_back.state,
            }),
            console_url: None,
        }
    }

    /// As a user's summary lists it.
    pub(crate) fn open_view(&self) -> OpenRequest {
        OpenRequest {
            request_id: self.id,
            action: self.action.as_str(),
            status: self.state.as_str(),
            created_at: rfc3339(self.created_at),
        }
    }

    fn asked(&self) -> AskedSeen<'_> {
        let body = &self.body;
        AskedSeen {
            requested_by: self.requester(),
            target: &self.user,
            action: self.action.as_str(),
            scope: body["scope"]
                .as_str()
                .or(matches!(self.action, Action::Reset | Action::ResetTap).then_some("portal")),
            ticket: TicketSeen {
                system: &self.source.system,
                id: &self.source.ticket,
            },
            channel: body["delivery"]["channel"]
                .as_str()
                .or(body["tap"]["delivery"]["channel"].as_str()),
            lifetime_minutes: body["lifetimeMinutes"]
                .as_u64()
                .or(body["tap"]["lifetimeMinutes"].as_u64()),
            reason: body["reason"].as_str().map(|r| r.chars().take(500).collect()),
        }
    }

    /// Who asked (`RequesterSeen`).
    pub fn requester(&self) -> RequesterSeen<'_> {
        let caller = &self.caller;
        let person = match &caller.on_behalf_of {
            Some(p) => Some(PersonSeen {
                object_id: Some(&p.object_id),
                upn: p.upn.as_deref(),
            }),
            None if caller.user => Some(PersonSeen {
                object_id: caller.object_id.as_deref(),
                upn: caller.name.as_deref(),
            }),
            None => None,
        };
        let known = person.is_some();
        RequesterSeen {
            known,
            person,
            given: self.requested_by.as_deref(),
            name: caller.name.as_deref(),
            object_id: caller.object_id.as_deref(),
            via: &caller.via,
            note: (!known).then_some(UNKNOWN),
        }
    }
}
