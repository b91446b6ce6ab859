//! Addresses of record: which one a channel uses (as it will be after a reset's removals), whether
//! it changed recently (the directory audit log), and that it is nobody's who asked.

use uuid::Uuid;

use super::RecoveryError;
use super::context::{TapContext, graph_failed};
use super::rules;
use super::verification::same_address;
use crate::graph::models::User;
use crate::vocab::CallerRecord;
use crate::vocab::{Address, Channel};
use crate::vocab::{Fault, Refusal};

impl TapContext<'_> {
    /// The address of record for `channel`, as it will be once the methods in `removing` are
    /// gone (a reset that removes the mobile phone cannot send the pass to it).
    pub(crate) async fn address_of_record(
        &self,
        user: &User,
        channel: Channel,
        removing: &[crate::graph::models::AuthMethod],
    ) -> Result<Address, RecoveryError> {
        let address = self.address_unchecked(user, channel, removing).await?;
        self.address_settled(user, channel).await?;
        Ok(address)
    }

    /// The address of record for `channel`, without the stale-address check.
    pub(crate) async fn address_unchecked(
        &self,
        user: &User,
        channel: Channel,
        removing: &[crate::graph::models::AuthMethod],
    ) -> Result<Address, RecoveryError> {
        let none = |what: &str| {
            RecoveryError::refused(Refusal::NoAddressOfRecord, format!("the user has no {what} of record"))
        };
        let to = match channel {
            Channel::Sms if self.settings.sms_from_attribute => {
                user.mobile_phone.clone().ok_or_else(|| none("mobile phone"))?
            }
            Channel::Sms if removing.iter().any(crate::graph::models::AuthMethod::is_mobile_phone) => {
                return Err(RecoveryError::refused(
                    Refusal::NoAddressOfRecord,
                    "the reset removes the registered mobile phone the pass would go to; choose email or manager, or keep the mobile phone (scope \"methods\")",
                ));
            }
            Channel::Sms => self
                .graph
                .mobile_phone_method(&user.id)
                .await
                .map_err(graph_failed)?
                .ok_or_else(|| none("registered mobile phone"))?,
            Channel::Email => user
                .other_mails
                .first()
                .cloned()
                .ok_or_else(|| none("alternate email address"))?,
            Channel::Manager => user
                .manager
                .as_ref()
                .and_then(|m| m.mail.clone())
                .ok_or_else(|| none("manager with mail"))?,
        };
        // A number no provider can send to fails only at delivery, after a reset's removals:
        // refuse it now, before anything exists.
        if channel == Channel::Sms && crate::delivery::e164(&to).is_none() {
            return Err(RecoveryError::refused(
                Refusal::NoAddressOfRecord,
                "the user's mobile phone of record is not a number in international form (+country code), so no text message can reach it; correct it in the directory or choose another channel",
            ));
        }
        Ok(Address { channel, to })
    }

    /// The address `channel` uses was not changed within `ADDRESS_MIN_AGE_DAYS` (the directory
    /// audit log says who changed what, when). Fails closed when the log cannot be read.
    async fn address_settled(&self, user: &User, channel: Channel) -> Result<(), RecoveryError> {
        let events = self.address_changes(user, channel).await?;
        self.settled_in(&events, channel)
    }

    /// The directory audit events about `user` within `ADDRESS_MIN_AGE_DAYS` (none when the check
    /// is off), read once for however many channels are judged with `settled_in`.
    pub(crate) async fn address_changes(
        &self,
        user: &User,
        channel: Channel,
    ) -> Result<Vec<crate::graph::models::DirectoryAudit>, RecoveryError> {
        let days = self.settings.address_min_age_days;
        if days == 0 {
            return Ok(Vec::new());
        }
        let since = self.started - time::Duration::days(i64::from(days));
        self.graph.directory_audits_about(&user.id, since).await.map_err(|e| {
            tracing::error!(error = %e, "the directory audit log could not be read; refusing the channel");
            let grant = if e.is_forbidden() {
                " Grant the function app's identity AuditLog.Read.All and Directory.Read.All (docs/deploy.md)."
            } else {
                " Try again later."
            };
            RecoveryError::failed(
                Fault::AddressCheckUnavailable,
                format!(
                    "the directory audit log could not be read, so the service cannot tell whether the user's {} address changed recently; nothing was sent.{grant}",
                    channel.as_str()
                ),
            )
        })
    }

    /// Whether `events` (from `address_changes`) change the address `channel` uses.
    pub(crate) fn settled_in(
        &self,
        events: &[crate::graph::models::DirectoryAudit],
        channel: Channel,
    ) -> Result<(), RecoveryError> {
        let days = self.settings.address_min_age_days;
        let latest = events
            .iter()
            .filter(|e| rules::changes_address(e, channel, self.settings.sms_from_attribute))
            .filter_map(|e| e.activity_date_time.as_deref())
            .max();
        if let Some(when) = latest {
            return Err(RecoveryError::refused(
                Refusal::AddressRecentlyChanged,
                format!(
                    "the user's {} address changed on {} (within {days} days): an attacker may have put theirs there. Choose another channel, or ask for approval",
                    channel.as_str(),
                    when.get(..10).unwrap_or(when)
                ),
            ));
        }
        Ok(())
    }

    /// Nobody verifies themselves: the code must not go to the caller, nor to the person a
    /// request names (`CallerRecord::people`). See `not_the_addresses_of`.
    pub(crate) async fn not_the_callers(
        &self,
        caller: &CallerRecord,
        user: &crate::graph::models::User,
        address: &crate::vocab::Address,
    ) -> Result<(), RecoveryError> {
        self.not_the_addresses_of(&callers_people(caller), user, address).await
    }

    /// Refused when the channel is the manager's and one of `people` is the manager
    /// (`caller_is_manager`), or the address is one of theirs: their mail, an alternate email,
    /// their `mobilePhone` or a phone method (`address_is_callers`). Their user and phone methods
    /// are read from Graph; a failed read refuses. An id that is not a user (an application) has
    /// no address to compare.
    pub(crate) async fn not_the_addresses_of(
        &self,
        people: &[&str],
        user: &crate::graph::models::User,
        address: &crate::vocab::Address,
    ) -> Result<(), RecoveryError> {
        for me in people {
            if address.channel == Channel::Manager
                && user.manager.as_ref().is_some_and(|m| m.id.eq_ignore_ascii_case(me))
            {
                return Err(RecoveryError::refused(
                    Refusal::CallerIsManager,
                    "the manager channel would send the code to the caller (the user's manager): nobody verifies themselves. Choose sms or email, or ask another agent",
                ));
            }
            let Ok(me) = Uuid::parse_str(me) else {
                continue;
            };
            let mine = self.addresses_of(me, address.channel).await?;
            if mine.iter().any(|a| same_address(a, &address.to)) {
                return Err(RecoveryError::refused(
                    Refusal::AddressIsCallers,
                    format!(
                        "the user's {} address of record is also the caller's: nobody verifies themselves. Choose another channel, or ask another agent",
                        address.channel.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A person's own addresses for `channel`: mail and alternate emails, `mobilePhone`, and for
    /// SMS their phone methods. Empty when `id` is not a user.
    /// Ask, together, for the reads `not_the_callers` will make for `channel` (the recovery's
    /// scoped client keeps their answers).
    pub(crate) async fn prefetch_callers_addresses(&self, caller: &CallerRecord, channel: Channel) {
        let reads = callers_people(caller)
            .into_iter()
            .filter_map(|me| Uuid::parse_str(me).ok())
            .map(|me| async move {
                let _ = self.addresses_of(me, channel).await;
            });
        futures::future::join_all(reads).await;
    }

    async fn addresses_of(&self, id: Uuid, channel: Channel) -> Result<Vec<String>, RecoveryError> {
        let unreadable = |e: crate::graph::GraphError| {
            tracing::error!(error = %e, "the caller's own addresses could not be read; refusing");
            RecoveryError::failed(
                if e.is_forbidden() {
                    Fault::PermissionMissing
                } else {
                    Fault::GraphUnavailable
                },
                "Microsoft Graph could not be read (the caller's own addresses), so the service cannot tell whether the code would go to the caller; nothing was sent. Try again later.",
            )
        };
        let Some(own) = self
            .graph
            .get_user(&crate::graph::models::UserRef::Id(id))
            .await
            .map_err(unreadable)?
        else {
            return Ok(Vec::new());
        };
        let mut mine: Vec<String> = own.mail.iter().chain(own.other_mails.iter()).cloned().collect();
        mine.push(own.user_principal_name.clone());
        mine.extend(own.mobile_phone.clone());
        if channel == Channel::Sms {
            let methods = self.graph.list_methods(&id).await.map_err(unreadable)?;
            mine.extend(methods.iter().filter_map(|m| m.phone_number.clone()));
        }
        Ok(mine)
    }
}

/// Whose addresses a pass or a code must not go to: `CallerRecord::people`, the caller when it is
/// a person (a delegated token: any sign of a user) and the person a ticket names. An
/// application's token carries its service principal's object id, which is no user's: reading it
/// would be a call Graph always answers 404.
fn callers_people(caller: &CallerRecord) -> Vec<&str> {
    caller.people()
}
