//! The pre-flight stage of a pass: every check it must meet before it exists. What it lets through
//! is a `Prepared` pass with its rate-limit slot reserved.

use uuid::Uuid;

use super::context::{TapContext, graph_failed};
use super::request::TapRequest;

use super::RecoveryError;
use super::rules;
use crate::audit::Action;
use crate::graph::models::User;
use crate::vocab::CallerRecord;
use crate::vocab::{Address, Channel};
use crate::vocab::{Fault, Refusal};

/// A pass every pre-flight check has allowed, with its rate-limit slot reserved: what is left is
/// to record the intent, create it, deliver it and tell the user.
pub(crate) struct Prepared {
    pub user: User,
    pub lifetime: u32,
    pub usable_once: bool,
    pub address: Address,
    /// Who is told about the pass (never the address that carries it).
    pub notice_to: Vec<String>,
    /// What the pass waits for between its creation and its delivery: a reset's removals. A user
    /// who has the pass can register methods, which a removal still under way must not take, and
    /// a retry that finds the pass delivered finishes the pass alone (the removals were done).
    pub deliver_after: Option<futures::future::BoxFuture<'static, ()>>,
}

impl TapContext<'_> {
    /// Every check a pass must meet before it exists, in order: the account (enabled, a member),
    /// who may send it where (separation of duties), the tenant's policy and scope, the lifetime,
    /// the address of record (still of record after `removing`, the methods a reset is about to
    /// remove), the connector, somebody to tell, and last a rate-limit slot for the caller and
    /// for the target (reserved atomically, so it cannot be raced).
    ///
    /// # Errors
    /// A refusal; nothing was created (a slot reserved is kept: attempts count).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn prepare(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        user: User,
        memberships: &[crate::graph::models::DirectoryObject],
        removing: &[crate::graph::models::AuthMethod],
        details: &mut super::details::Details,
    ) -> Result<Prepared, RecoveryError> {
        let s = self.settings;
        rules::account_eligible(&user)?;
        let mut people = caller.people();
        people.extend(caller.object_id.as_deref());
        rules::manager_is_not_caller(request.channel, &user, &people)?;
        let policy = self.policy_covering(memberships).await?;
        // Lifetime: the policy's range and the channel's limit.
        let channel_max = match request.channel {
            Channel::Sms => s.max_minutes_sms,
            Channel::Email => s.max_minutes_email,
            Channel::Manager => s.max_minutes_manager,
        };
        let lifetime = rules::lifetime(
            request.lifetime_minutes,
            s.default_lifetime_minutes,
            &policy,
            request.channel,
            channel_max,
        )?;
        let usable_once = rules::usable_once(request.usable_once, &policy, s.allow_multi_use)?;
        // The address of record, as it will be when the pass goes out.
        let address = self.address_of_record(&user, request.channel, removing).await?;
        // Nobody sends a pass to themselves, on any channel.
        self.not_the_callers(caller, &user, &address).await?;
        details.to = Some(address.masked());
        // The connector must work before a pass exists: a pass that cannot be delivered is
        // worse than none.
        self.deliverer.ready(request.channel).await.map_err(|e| {
            tracing::error!(error = %e, "the delivery connector is not ready");
            RecoveryError::failed(
                Fault::DeliveryUnavailable,
                format!(
                    "the {} connector is not available ({e}); no pass was created",
                    request.channel.as_str()
                ),
            )
        })?;
        // Somebody other than the holder of the pass's address must be told, or a pass sent to
        // an address an attacker changed would go unnoticed.
        let notice_to = rules::notice_recipients(&user, &address);
        if notice_to.is_empty() {
            return Err(RecoveryError::refused(
                Refusal::NoNoticeRecipient,
                "nobody can be told about the pass: the user has no mailbox, alternate email or manager with mail besides the address the pass would go to. Add one, or choose another channel",
            ));
        }
        self.notifier.ready().await.map_err(|e| {
            tracing::error!(error = %e, "the notice connector is not ready");
            RecoveryError::failed(
                Fault::NoticeUnavailable,
                format!("notices cannot be sent ({e}), so no pass was created"),
            )
        })?;
        details.lifetime_minutes = Some(lifetime);
        details.usable_once = Some(usable_once);
        // Last: a slot, reserved atomically (attempts count, whatever happens next).
        self.reserve_slots(
            Action::TapIssue,
            "passes",
            caller,
            &user.id,
            request_id,
            s.max_per_target_per_day,
            s.max_per_caller_per_hour,
        )
        .await?;
        Ok(Prepared {
            deliver_after: None,
            user,
            lifetime,
            usable_once,
            address,
            notice_to,
        })
    }

    /// The tenant's Temporary Access Pass policy (a tenant fact: at most 60 s old).
    pub(crate) async fn tap_policy(&self) -> Result<crate::graph::models::TapPolicy, RecoveryError> {
        // Read outside the recovery's scope: other recoveries wait for this read, and must not
        // wait for the rest of this one's batch.
        let graph = self.graph.unscoped();
        let policy = self
            .facts
            .tap_policy
            .get(|| async { graph.tap_policy().await.map_err(graph_failed) })
            .await?;
        Ok(policy.as_ref().clone())
    }

    /// The tenant's Temporary Access Pass policy, when it is enabled and covers a user with these
    /// memberships.
    async fn policy_covering(
        &self,
        memberships: &[crate::graph::models::DirectoryObject],
    ) -> Result<crate::graph::models::TapPolicy, RecoveryError> {
        let policy = self.tap_policy().await?;
        if !policy.is_enabled() {
            return Err(RecoveryError::refused(
                Refusal::PolicyDisabled,
                "the tenant's Temporary Access Pass policy is disabled",
            ));
        }
        let groups: Vec<String> = memberships
            .iter()
            .filter(|m| m.is_group())
            .map(|m| m.id.clone())
            .collect();
        if !rules::in_policy_scope(&policy, &groups) {
            return Err(RecoveryError::refused(
                Refusal::UserOutOfScope,
                "the user is not in the scope of the tenant's Temporary Access Pass policy",
            ));
        }
        Ok(policy)
    }
}
