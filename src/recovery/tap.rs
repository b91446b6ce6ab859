//! Issue a Temporary Access Pass that only the user can receive.
//!
//! Order: parse the request; find the user; refuse the caller's own account and any privileged
//! target (`privilege`, failing closed when a read fails); then the pre-flight (`prepare`): the
//! account (enabled, a member), separation of duties for the manager channel, the tenant's TAP
//! policy and scope, the lifetime (policy and channel), the address of record, the connector,
//! somebody to notify, and last a rate-limit slot reserved atomically (`limits`). Then write the
//! intent record (no record, no pass); create the pass (never resent blindly); deliver it; tell
//! the user on every other channel and the manager; write the outcome. A pass that cannot be
//! delivered is deleted, so no undelivered pass stays usable. A reset with a pass runs the same
//! pre-flight before its first removal.
//!
//! The pass lives in a `SecretString` from Graph's answer to the provider's request and nowhere
//! else: not in logs, errors, audit records or responses (unless `TAP_RETURN_TO_CALLER`).

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::admit::{Admitted, Asked};
use super::context::{TapContext, graph_failed};
use super::details::Details;
use super::prepare::Prepared;
use super::request::TapRequest;
use super::rules;
use super::{Delivered, Journal, RecoveryError, TapProgress};
use crate::audit::{Action, AuditEvent, Outcome, Phase, Target, Ticket};
use crate::graph::CreateTapError;
use crate::graph::models::{User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::{Address, Channel};
use crate::vocab::{Fault, Refusal};

/// What a successful issue returns (and the outcome record holds, minus the pass).
#[derive(Debug)]
pub struct Issued {
    pub request_id: Uuid,
    pub user_id: Uuid,
    pub tap_method_id: String,
    pub start: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub usable_once: bool,
    pub channel: Channel,
    pub to_masked: String,
    pub provider: String,
    pub message_id: Option<String>,
    pub notified: Vec<String>,
    /// Set when the pass went out but nobody could be told.
    pub warning: Option<String>,
    /// Only when `TAP_RETURN_TO_CALLER` is on.
    pub pass: Option<SecretString>,
}

impl TapContext<'_> {
    /// Run the whole procedure and record its outcome, whatever it is.
    pub async fn issue(&self, caller: &CallerRecord, request: TapRequest) -> Result<Issued, RecoveryError> {
        self.issue_with(caller, request, &super::NoJournal::new()).await
    }

    /// `issue` for a queued request: its id and its journal, so a retry after a crash picks up
    /// where the last attempt stopped and never delivers a second pass.
    pub(crate) async fn issue_with(
        &self,
        caller: &CallerRecord,
        request: TapRequest,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let request_id = journal.request_id();
        let graph = self.graph.scoped();
        graph
            .drive(
                self.with_graph(&graph)
                    .recorded(caller, &request, request_id, None, journal),
            )
            .await
    }

    /// The pass of a reset that already passed every pre-flight check (before its removals).
    pub(crate) async fn issue_prepared(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        prepared: Prepared,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        self.recorded(caller, request, request_id, Some(prepared), journal)
            .await
    }

    /// Run (the pre-flight unless `prepared`, then the pass) and record the outcome.
    async fn recorded(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        prepared: Option<Prepared>,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let mut target = Target {
            object_id: None,
            upn: Some(request.user.segment()),
        };
        if let UserRef::Id(id) = &request.user {
            target = Target {
                object_id: Some(id.to_string()),
                upn: None,
            };
        }
        let mut details = Details {
            channel: Some(request.channel.as_str()),
            ..Details::default()
        };
        let result = match prepared {
            Some(prepared) => {
                target = Target {
                    object_id: Some(prepared.user.id.to_string()),
                    upn: Some(prepared.user.user_principal_name.clone()),
                };
                details.to = Some(prepared.address.masked());
                details.lifetime_minutes = Some(prepared.lifetime);
                details.usable_once = Some(prepared.usable_once);
                self.execute(caller, request, request_id, &target, &mut details, prepared, journal)
                    .await
            }
            None => {
                self.run(caller, request, request_id, &mut target, &mut details, journal)
                    .await
            }
        };
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(e) => e.outcome(),
        };
        if let Err(e) = &result {
            details.error = Some(e.message.clone());
            self.release_verification(caller, request.verification.as_ref(), request_id, e)
                .await;
        }
        self.record_outcome(
            caller,
            Action::TapIssue,
            target,
            &request.ticket,
            request_id,
            outcome,
            &details,
        )
        .await;
        result
    }

    async fn run(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &mut Target,
        details: &mut Details,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let earlier = journal.progress();
        if earlier.delivering || earlier.delivered.is_some() {
            return self.resume(journal, &earlier, request, target, details).await;
        }
        let asked = Asked {
            action: Action::TapIssue,
            what: "passes",
            user: &request.user,
            verification: request.verification.as_ref(),
            channel: Some(request.channel),
            reset_all: false,
            lifetime_minutes: request.lifetime_minutes,
            defer_approval: false,
        };
        let Admitted { user, memberships, .. } =
            self.admit(caller, asked, request_id, journal, target, details).await?;
        self.clean_up_earlier(journal, &earlier, &user.id).await?;
        let prepared = self
            .prepare(caller, request, request_id, user, &memberships, &[], details)
            .await?;
        self.execute(caller, request, request_id, target, details, prepared, journal)
            .await
    }

    /// Record the intent, create the pass (never resent blindly), deliver it, tell the user.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &Target,
        details: &mut Details,
        prepared: Prepared,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let s = self.settings;
        let Prepared {
            user,
            lifetime,
            usable_once,
            address,
            notice_to,
            deliver_after,
        } = prepared;
        let now = OffsetDateTime::now_utc();
        self.record_intent(caller, request, request_id, target, details, journal, now)
            .await?;
        let created = self.create_pass(&user, lifetime, usable_once).await?;
        details.tap_method_id = Some(created.method.id.clone());
        let start = created.method.start_date_time.unwrap_or(now);
        let expires_at = start + time::Duration::minutes(i64::from(lifetime));
        // A queued request saves each step before the next one: the pass exists, then the
        // provider is being called. A pass whose step cannot be saved is deleted.
        let mut progress = TapProgress {
            method_id: Some(created.method.id.clone()),
            start: Some(start),
            expires_at: Some(expires_at),
            usable_once,
            ..TapProgress::default()
        };
        self.save_created(journal, &mut progress, &user, &created.method.id, deliver_after)
            .await?;
        let text = SecretString::from(pass_message(
            s.message_template.as_deref(),
            &user,
            created.pass.expose_secret(),
            expires_at,
            usable_once,
            &s.notice_contact,
        ));
        let sent = self
            .deliver_pass(&address, &text, request_id, &user, &created.method.id, journal)
            .await?;
        details.provider = Some(sent.provider.to_owned());
        details.message_id.clone_from(&sent.message_id);
        progress.delivering = false;
        progress.delivered = Some(Delivered {
            channel: request.channel.as_str().to_owned(),
            to: address.masked(),
            provider: sent.provider.to_owned(),
            message_id: sent.message_id.clone(),
        });
        // The pass is out; if this save fails, the retry reports the delivery as unconfirmed.
        if let Err(e) = journal.save(&progress).await {
            tracing::error!(error = %e, "the delivery could not be saved in the request record");
        }
        // Tell the user on every other channel of record, and the manager.
        let notified = self
            .notify(request_id, &user, &notice_to, &address, expires_at, &request.ticket)
            .await;
        details.notified = Some(notified.clone());
        let warning = no_notice_warning(&notified, details);
        Ok(Issued {
            request_id,
            user_id: user.id,
            tap_method_id: created.method.id,
            start,
            expires_at,
            usable_once,
            channel: request.channel,
            to_masked: address.masked(),
            provider: sent.provider.to_owned(),
            message_id: sent.message_id,
            notified,
            warning,
            // Only a synchronous answer may carry it: a queued request's result is stored, shown by
            // its status URL and sent to its callback, whatever TAP_RETURN_TO_CALLER says.
            pass: (s.return_to_caller && !journal.is_queued()).then_some(created.pass),
        })
    }

    /// The intent (no record, no pass) and, before Graph is asked, the journal's mark: an attempt
    /// that dies before the pass's id is saved leaves the next one a sign to look for it.
    #[allow(clippy::too_many_arguments)]
    async fn record_intent(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &Target,
        details: &Details,
        journal: &dyn Journal,
        now: OffsetDateTime,
    ) -> Result<(), RecoveryError> {
        self.record(AuditEvent {
            caller: caller.clone(),
            action: Action::TapIssue,
            target: Some(target.clone()),
            ticket: Some(request.ticket.clone()),
            request_id: Some(request_id),
            phase: Phase::Intent,
            outcome: None,
            details: crate::audit::details(&details),
        })
        .await?;
        journal
            .save(&TapProgress {
                creating_since: Some(now),
                ..TapProgress::default()
            })
            .await
    }

    /// Create the pass. Graph's refusal is a refusal; an unknown outcome deletes whatever pass the
    /// attempt may have left (its id, when Graph named one) and says which it is.
    async fn create_pass(
        &self,
        user: &User,
        lifetime: u32,
        usable_once: bool,
    ) -> Result<crate::graph::models::CreatedTap, RecoveryError> {
        match self.graph.create_tap(&user.id, lifetime, usable_once).await {
            Ok(c) => Ok(c),
            Err(CreateTapError::Refused(e)) => {
                tracing::warn!(error = %e, "Graph refused the TAP");
                Err(RecoveryError::refused(
                    Refusal::GraphRefused,
                    "Microsoft Graph refused to create the pass (check the TAP policy and the user's scope)",
                ))
            }
            Err(CreateTapError::Throttled(e)) => {
                tracing::warn!(error = %e, "Graph throttled the TAP create; nothing was created");
                Err(RecoveryError::failed(
                    Fault::GraphUnavailable,
                    "Microsoft Graph throttled the request to create the pass (429) each time it was sent; no pass was created. Try again in a minute.",
                ))
            }
            Err(CreateTapError::Unknown { cause, orphan }) => {
                tracing::error!(%cause, "TAP create outcome unknown");
                let cleaned = match orphan {
                    Some(id) => self.graph.delete_tap(&user.id, &id).await.is_ok(),
                    None => true,
                };
                let state = if cleaned {
                    "no pass is active for the user"
                } else {
                    "a pass may exist for the user: delete it in the admin center"
                };
                Err(RecoveryError::failed(
                    Fault::TapOutcomeUnknown,
                    format!("the pass could not be confirmed; {state}. Try again."),
                ))
            }
        }
    }

    /// A queued request saves each step before the next one: the pass exists, then the provider
    /// is being called. A pass whose step cannot be saved is deleted.
    /// Save that the pass exists; wait for what its delivery waits for (a reset's removals); then
    /// save that the provider is being called. A crash while waiting leaves only the pass's id:
    /// the retry deletes that pass, finishes the removals and issues another, and never takes the
    /// waiting pass for one that may have arrived. A claim lost while waiting stops the delivery.
    async fn save_created(
        &self,
        journal: &dyn Journal,
        progress: &mut TapProgress,
        user: &User,
        method_id: &str,
        deliver_after: Option<futures::future::BoxFuture<'static, ()>>,
    ) -> Result<(), RecoveryError> {
        let mut saved = journal.save(progress).await;
        if saved.is_ok() {
            if let Some(removals) = deliver_after {
                removals.await;
            }
            progress.delivering = true;
            saved = journal.save(progress).await;
        }
        if let Err(e) = saved {
            let _ = self.graph.delete_tap(&user.id, method_id).await;
            return Err(e);
        }
        Ok(())
    }

    /// Hand the pass to the provider. When the provider says no, the pass is deleted and a queued
    /// request's progress starts afresh (a retry must not take the pass for one that may have
    /// arrived), keeping the pass's id if it could not be deleted.
    async fn deliver_pass(
        &self,
        address: &Address,
        text: &SecretString,
        request_id: Uuid,
        user: &User,
        method_id: &str,
        journal: &dyn Journal,
    ) -> Result<crate::delivery::Sent, RecoveryError> {
        let e = match self
            .deliverer
            .send(address, "Your temporary sign-in pass", text, &request_id.to_string())
            .await
        {
            Ok(sent) => return Ok(sent),
            Err(e) => e,
        };
        tracing::error!(error = %e, "delivery failed; deleting the undelivered pass");
        let deleted = self.graph.delete_tap(&user.id, method_id).await.is_ok();
        let fresh = TapProgress {
            method_id: (!deleted).then(|| method_id.to_owned()),
            ..TapProgress::default()
        };
        if let Err(e) = journal.save(&fresh).await {
            tracing::error!(error = %e, "the failed delivery could not be saved in the request record");
        }
        let state = if deleted {
            "the pass was deleted, so no pass is active"
        } else {
            "the pass could not be deleted: delete it in the admin center"
        };
        Err(RecoveryError::failed(
            Fault::DeliveryFailed,
            format!("the pass could not be delivered ({e}); {state}"),
        ))
    }

    /// A retry of a request whose pass reached the provider: never a second pass. Delivered: finish
    /// (notices, outcome) from the saved step. Sent but unconfirmed (the worker died while the
    /// provider was being called): the pass stays, and the caller is told to ask again if it did
    /// not arrive (a new pass replaces this one).
    async fn resume(
        &self,
        journal: &dyn Journal,
        earlier: &TapProgress,
        request: &TapRequest,
        target: &mut Target,
        details: &mut Details,
    ) -> Result<Issued, RecoveryError> {
        let user = self
            .graph
            .get_user(&request.user)
            .await
            .map_err(graph_failed)?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        *target = Target {
            object_id: Some(user.id.to_string()),
            upn: Some(user.user_principal_name.clone()),
        };
        let now = OffsetDateTime::now_utc();
        let expires_at = earlier.expires_at.unwrap_or(now);
        details.tap_method_id.clone_from(&earlier.method_id);
        details.resumed = Some(true);
        let Some(delivered) = &earlier.delivered else {
            let fmt = &time::format_description::well_known::Rfc3339;
            return Err(RecoveryError::failed(
                Fault::DeliveryUnconfirmed,
                format!(
                    "the service stopped while the pass was being sent, so it may or may not have arrived; it was not sent again. It stays valid until {} UTC. If the user did not receive it, submit a new request: its pass replaces this one.",
                    expires_at.format(fmt).unwrap_or_default()
                ),
            ));
        };
        details.to = Some(delivered.to.clone());
        details.provider = Some(delivered.provider.clone());
        let address = self.address_of_record(&user, request.channel, &[]).await?;
        let notice_to = rules::notice_recipients(&user, &address);
        let notified = self
            .notify(
                journal.request_id(),
                &user,
                &notice_to,
                &address,
                expires_at,
                &request.ticket,
            )
            .await;
        details.notified = Some(notified.clone());
        let warning = no_notice_warning(&notified, details);
        Ok(Issued {
            request_id: journal.request_id(),
            user_id: user.id,
            tap_method_id: earlier.method_id.clone().unwrap_or_default(),
            start: earlier.start.unwrap_or(now),
            expires_at,
            usable_once: earlier.usable_once,
            channel: request.channel,
            to_masked: delivered.to.clone(),
            provider: delivered.provider.clone(),
            message_id: delivered.message_id.clone(),
            notified,
            warning,
            pass: None,
        })
    }

    /// Delete a pass that a request given up on created and never handed to a provider (`user`
    /// as the request named them). Whether it is gone: `false` means it may still exist.
    pub(crate) async fn discard_undelivered(&self, user: &str, method_id: &str) -> bool {
        let Ok(user) = UserRef::parse(user) else {
            return false;
        };
        match self.graph.get_user(&user).await {
            Ok(Some(u)) => match self.graph.delete_tap(&u.id, method_id).await {
                Ok(()) => true,
                Err(e) => e.is_not_found(),
            },
            _ => false,
        }
    }

    /// Before a retry creates a pass: delete the one an earlier attempt created but never handed
    /// to a provider (saved in the journal), or, when the attempt died between creating it and
    /// saving that step (its intent record is in the audit trail), any pass created since the
    /// request was first claimed. Either way no undelivered pass stays usable.
    pub(crate) async fn clean_up_earlier(
        &self,
        journal: &dyn Journal,
        earlier: &TapProgress,
        user: &Uuid,
    ) -> Result<(), RecoveryError> {
        let delete = |id: String| async move {
            match self.graph.delete_tap(user, &id).await {
                Err(e) if !e.is_not_found() => Err(graph_failed(e)),
                _ => Ok(()),
            }
        };
        if let Some(id) = &earlier.method_id {
            tracing::warn!(tap_method_id = %id, "deleting the undelivered pass of an earlier attempt");
            delete(id.clone()).await?;
            return journal.save(&TapProgress::default()).await;
        }
        // An attempt died between asking Graph for the pass and saving its id: a pass created
        // since then (a minute's leeway for clocks) is that orphan.
        let Some(creating) = earlier.creating_since else {
            return Ok(());
        };
        let since = creating - time::Duration::minutes(1);
        for tap in self.graph.list_taps(user).await.map_err(graph_failed)? {
            if tap.created_date_time.is_some_and(|c| c >= since) {
                tracing::warn!(tap_method_id = %tap.id, "deleting a pass an earlier attempt created but never recorded");
                delete(tap.id).await?;
            }
        }
        journal.save(&TapProgress::default()).await
    }

    /// Notices to `to` (see `notice_recipients`). Best effort: each address that got the notice
    /// is listed (masked).
    async fn notify(
        &self,
        request_id: Uuid,
        user: &User,
        to: &[String],
        used: &Address,
        expires_at: OffsetDateTime,
        ticket: &Ticket,
    ) -> Vec<String> {
        let fmt = &time::format_description::well_known::Rfc3339;
        let text = SecretString::from(format!(
            "A Temporary Access Pass was issued for {} at {} UTC{} and sent to {}. It expires at {} UTC.\n\nIf you did not ask for this, contact {} now.",
            user.user_principal_name,
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::now_utc())
                .format(fmt)
                .unwrap_or_default(),
            rules::ticket_words(ticket),
            used.masked(),
            expires_at.format(fmt).unwrap_or_default(),
            self.settings.notice_contact,
        ));
        let about = super::notice::About {
            request_id,
            target: crate::audit::Target {
                object_id: Some(user.id.to_string()),
                upn: Some(user.user_principal_name.clone()),
            },
        };
        self.tell(
            super::notice::NoticeKind::Pass,
            &about,
            to,
            "A Temporary Access Pass was issued for your account",
            &text,
        )
        .await
    }
}

/// Who is told about a pass: the user's mailbox, other addresses of record and the manager,
/// never the address that carried the pass.
/// When no notice went out, say so loudly: in the answer and in the audit record.
fn no_notice_warning(notified: &[String], details: &mut Details) -> Option<String> {
    if !notified.is_empty() {
        return None;
    }
    tracing::error!("the pass was delivered but no notice could be sent");
    details.notice_failed = Some(true);
    Some("no notice could be sent to the user or the manager: tell them yourself that a pass was issued".into())
}

/// The built-in text that carries the pass; `TAP_MESSAGE_TEMPLATE` replaces it. It holds no text
/// a caller chose (no ticket, no reason): an attacker's words never travel with a pass.
pub(crate) const DEFAULT_MESSAGE: &str = "Temporary Access Pass for {upn}: {pass}\nValid until {expires} UTC{usage}.\nSign in with your password and this pass, open https://mysignins.microsoft.com/security-info, register Microsoft Authenticator with cloud backup turned on, and add a second method.\nNot you? Contact {contact}.";

/// Fill the template in one pass: each placeholder of the template is replaced once and the text
/// put in is never read again, so no value can smuggle in a placeholder (a `{pass}` in a UPN or a
/// contact stays as typed). Unknown placeholders stay as they are.
fn pass_message(
    template: Option<&str>,
    user: &User,
    pass: &str,
    expires_at: OffsetDateTime,
    usable_once: bool,
    contact: &str,
) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let expires = expires_at.format(&fmt).unwrap_or_default();
    let mut out = String::new();
    let mut rest = template.unwrap_or(DEFAULT_MESSAGE);
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            rest = after;
            break;
        };
        let value = match &after[..=close] {
            "{upn}" => Some(user.user_principal_name.as_str()),
            "{pass}" => Some(pass),
            "{expires}" => Some(expires.as_str()),
            "{usage}" => Some(if usable_once { ", one use" } else { "" }),
            "{contact}" => Some(contact),
            _ => None,
        };
        match value {
            Some(v) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str) -> User {
        serde_json::from_value(serde_json::json!({"id": Uuid::nil(), "userPrincipalName": upn})).unwrap()
    }

    #[test]
    fn the_pass_message_fills_each_placeholder_once() {
        let t = time::macros::datetime!(2026-11-28 10:00 UTC);
        let text = pass_message(
            Some("{upn} {pass} {expires}{usage} {contact} {ticket} {"),
            &user("a{pass}b@contoso.test"),
            "SECRET",
            t,
            true,
            "call {pass}",
        );
        assert_eq!(
            text,
            "a{pass}b@contoso.test SECRET 2026-11-28 10:00, one use call {pass} {ticket} {"
        );
        assert_eq!(text.matches("SECRET").count(), 1);
    }

    #[test]
    fn the_default_message_carries_no_caller_text() {
        assert!(!DEFAULT_MESSAGE.contains("{ticket}"));
        let text = pass_message(
            None,
            &user("a@contoso.test"),
            "P",
            OffsetDateTime::now_utc(),
            false,
            "IT",
        );
        assert!(text.contains("a@contoso.test: P"), "{text}");
    }
}
