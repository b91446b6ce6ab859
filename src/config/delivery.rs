//! Passes and their delivery: lifetimes, limits, verification, the SMS and email connectors, the message.

#[allow(unused_imports)]
use super::*;

/// How the requester's identity must be shown (`TAP_REQUIRE_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationMode {
    /// Only a verification the service made and checked (`POST /api/users/{user}/verifications`,
    /// then `…/confirm`), named by its id.
    Service,
    /// The typed block (`method`, `verifiedBy`, `verifiedAt`), for teams that verify elsewhere.
    Attested,
    /// No verification.
    Off,
}

pub(super) fn verification_mode(value: Option<&str>) -> Result<VerificationMode, ConfigError> {
    match value {
        None | Some("attested") | Some("true") => Ok(VerificationMode::Attested),
        Some("service") => Ok(VerificationMode::Service),
        Some("false") => Ok(VerificationMode::Off),
        Some(v) => Err(ConfigError::new(
            "TAP_REQUIRE_VERIFICATION",
            format!("'{v}' is not 'service', 'attested' or 'false'"),
        )),
    }
}

/// Whether Entra ID Protection's risk of a user is read before a code or a pass (`RISK_CHECK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskCheck {
    /// Read it; a tenant without the licence (Graph's 403 naming it) is skipped and the audit
    /// record says so; any other failed read refuses.
    IfAvailable,
    /// Read it; every failed read refuses.
    Required,
    /// Never read.
    Off,
}

impl RiskCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskCheck::IfAvailable => "if_available",
            RiskCheck::Required => "required",
            RiskCheck::Off => "off",
        }
    }
}

pub(super) fn risk_check(value: Option<&str>) -> Result<RiskCheck, ConfigError> {
    match value {
        None | Some("if_available") => Ok(RiskCheck::IfAvailable),
        Some("required") => Ok(RiskCheck::Required),
        Some("off") => Ok(RiskCheck::Off),
        Some(v) => Err(ConfigError::new(
            "RISK_CHECK",
            format!("'{v}' is not 'if_available', 'required' or 'off'"),
        )),
    }
}

/// Temporary Access Pass rules and guardrails (`TAP_*`), and how passes are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSettings {
    /// `TAP_DEFAULT_LIFETIME_MINUTES`: used when a request names none (then bounded by the policy).
    pub default_lifetime_minutes: u32,
    /// `TAP_MAX_MINUTES_SMS`, `TAP_MAX_MINUTES_EMAIL`, `TAP_MAX_MINUTES_MANAGER`: per-channel limits.
    pub max_minutes_sms: u32,
    pub max_minutes_email: u32,
    pub max_minutes_manager: u32,
    /// `TAP_ALLOW_MULTI_USE`: whether a request may ask for a multi-use pass at all.
    pub allow_multi_use: bool,
    /// `TAP_PROTECTED_GROUPS`: members (transitive) of these groups are refused like role holders.
    pub protected_groups: Vec<Uuid>,
    /// `TAP_MAX_PER_TARGET_PER_DAY` and `TAP_MAX_PER_CALLER_PER_HOUR`.
    pub max_per_target_per_day: u32,
    pub max_per_caller_per_hour: u32,
    /// `USER_LOOKUPS_PER_CALLER_PER_HOUR`: `GET /api/users/{user}` per agent per hour.
    pub lookups_per_caller_per_hour: u32,
    /// `TAP_REQUIRE_VERIFICATION` and `TAP_VERIFICATION_MAX_AGE_MINUTES`.
    pub verification: VerificationMode,
    pub verification_max_age_minutes: u32,
    /// `VERIFICATION_CODE_MINUTES`: how long a code the service sent may be confirmed.
    pub verification_code_minutes: u32,
    /// `NOT_ME_BLOCK_HOURS`: after a user answers a confirmation link "this is not me", no
    /// recovery (nor code, nor link) for them for this many hours, unless an approver lifts it.
    pub not_me_block_hours: u32,
    /// `NOT_ME_REVOKE_SESSIONS`: "this is not me" also revokes the user's sessions.
    pub not_me_revoke_sessions: bool,
    /// `VERIFICATION_MAX_PER_TARGET_PER_DAY`: codes sent to one user per 24 hours, whoever sends.
    pub verification_max_per_target_per_day: u32,
    /// `RISK_CHECK`: whether Entra ID Protection's risk of the user is read first.
    pub risk_check: RiskCheck,
    /// `VERIFICATION_SAME_CHANNEL`: whether the pass may go through the channel the code went to.
    pub verification_same_channel: bool,
    /// `VERIFICATION_KEY_SECRET`: the Key Vault secret that keys the codes' hashes.
    pub verification_key_secret: String,
    /// `ADDRESS_MIN_AGE_DAYS`: an address of record changed more recently than this is not used
    /// for a code or a pass (0 turns the check off).
    pub address_min_age_days: u32,
    /// `MAIL_SENDER`: the service mailbox Graph `sendMail` sends from (email delivery, notices).
    pub mail_sender: Option<String>,
    /// `SMS_NUMBER_SOURCE`: `methods` (the registered mobile phone method) or `attribute` (`mobilePhone`).
    pub sms_from_attribute: bool,
    /// `ACS_ENDPOINT`, `ACS_ACCESS_KEY_SECRET` (a Key Vault secret name), `ACS_SMS_FROM`, `ACS_EMAIL_FROM`.
    pub acs: Option<AcsSettings>,
    pub twilio: Option<TwilioSettings>,
    /// `SMS_PROVIDER` (`acs` or `twilio`) and `EMAIL_PROVIDER` (`graph` or `acs`).
    pub sms_provider: Option<SmsProvider>,
    pub email_provider: EmailProvider,
    /// `TAP_MESSAGE_TEMPLATE`: the text that carries the pass, with `{upn}`, `{pass}`, `{expires}`,
    /// `{usage}` and `{contact}` (never caller text such as the ticket); `None` for the built-in text.
    pub message_template: Option<String>,
    /// `NOTICE_CONTACT`: whom a user should contact when a change was not theirs.
    pub notice_contact: String,
    /// `TAP_RETURN_TO_CALLER`: put the pass in the HTTP response (off; a documented risk).
    pub return_to_caller: bool,
    /// A second approver for what should not be one person's call.
    pub approval: super::ApprovalSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsSettings {
    pub endpoint: Url,
    pub access_key_secret: String,
    /// `ACS_SMS_FROM`: the sending number (E.164), for SMS through ACS.
    pub sms_from: Option<String>,
    /// `ACS_EMAIL_FROM`: the sender address, for email through ACS Email.
    pub email_from: Option<String>,
}

/// Twilio Programmable Messaging (`TWILIO_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioSettings {
    pub endpoint: Url,
    pub account_sid: String,
    /// Key Vault secret name of the auth token.
    pub auth_token_secret: String,
    pub from: String,
}

/// Which connector carries each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    Acs,
    Twilio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProvider {
    Graph,
    Acs,
}

pub(super) fn e164_setting(key: &str, value: &str) -> Result<String, ConfigError> {
    let ok =
        value.starts_with('+') && (8..=16).contains(&value.len()) && value[1..].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::new(
            key,
            format!("'{value}' is not a number in E.164 (+18005550199)"),
        ))
    }
}

pub(super) fn tap_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<TapSettings, ConfigError> {
    let lifetimes = 10..=43200;
    let protected_groups = match get("TAP_PROTECTED_GROUPS") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|g| guid("TAP_PROTECTED_GROUPS", g))
            .collect::<Result<_, _>>()?,
    };
    let (acs, twilio, sms_provider, email_provider) = connectors(get)?;
    let sms_from_attribute = match get("SMS_NUMBER_SOURCE") {
        None | Some("methods") => false,
        Some("attribute") => true,
        Some(v) => {
            return Err(ConfigError::new(
                "SMS_NUMBER_SOURCE",
                format!("'{v}' is not 'methods' or 'attribute'"),
            ));
        }
    };
    let mail_sender = get("MAIL_SENDER").map(str::to_owned);
    if mail_sender.as_deref().is_some_and(|m| !m.contains('@')) {
        return Err(ConfigError::new(
            "MAIL_SENDER",
            "must be the UPN or address of the service mailbox",
        ));
    }
    Ok(TapSettings {
        default_lifetime_minutes: number(get, "TAP_DEFAULT_LIFETIME_MINUTES", 60, lifetimes.clone())?,
        max_minutes_sms: number(get, "TAP_MAX_MINUTES_SMS", 60, lifetimes.clone())?,
        max_minutes_email: number(get, "TAP_MAX_MINUTES_EMAIL", 480, lifetimes.clone())?,
        max_minutes_manager: number(get, "TAP_MAX_MINUTES_MANAGER", 480, lifetimes)?,
        allow_multi_use: flag(get, "TAP_ALLOW_MULTI_USE", false)?,
        protected_groups,
        max_per_target_per_day: number(get, "TAP_MAX_PER_TARGET_PER_DAY", 2, 1..=100)?,
        max_per_caller_per_hour: number(get, "TAP_MAX_PER_CALLER_PER_HOUR", 20, 1..=10000)?,
        lookups_per_caller_per_hour: number(get, "USER_LOOKUPS_PER_CALLER_PER_HOUR", 120, 1..=100_000)?,
        verification: verification_mode(get("TAP_REQUIRE_VERIFICATION"))?,
        verification_code_minutes: number(get, "VERIFICATION_CODE_MINUTES", 10, 1..=60)?,
        not_me_block_hours: number(get, "NOT_ME_BLOCK_HOURS", 24, 1..=720)?,
        not_me_revoke_sessions: flag(get, "NOT_ME_REVOKE_SESSIONS", false)?,
        verification_same_channel: flag(get, "VERIFICATION_SAME_CHANNEL", false)?,
        verification_max_per_target_per_day: number(get, "VERIFICATION_MAX_PER_TARGET_PER_DAY", 5, 1..=100)?,
        risk_check: risk_check(get("RISK_CHECK"))?,
        address_min_age_days: address_min_age_days(get)?,
        verification_key_secret: get("VERIFICATION_KEY_SECRET").unwrap_or("verification-key").to_owned(),
        verification_max_age_minutes: number(get, "TAP_VERIFICATION_MAX_AGE_MINUTES", 30, 1..=1440)?,
        mail_sender,
        sms_from_attribute,
        acs,
        twilio,
        sms_provider,
        email_provider,
        message_template: message_template(get("TAP_MESSAGE_TEMPLATE"))?,
        notice_contact: get("NOTICE_CONTACT").unwrap_or("your IT service desk").to_owned(),
        return_to_caller: flag(get, "TAP_RETURN_TO_CALLER", false)?,
        approval: super::approval::approval_settings(get)?,
    })
}

/// The delivery connectors (ACS, Twilio) and which one each channel uses.
#[allow(clippy::type_complexity)]
pub(super) fn connectors<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<
    (
        Option<AcsSettings>,
        Option<TwilioSettings>,
        Option<SmsProvider>,
        EmailProvider,
    ),
    ConfigError,
> {
    let acs = match get("ACS_ENDPOINT") {
        None => None,
        Some(endpoint) => Some(AcsSettings {
            endpoint: self::endpoint("ACS_ENDPOINT", endpoint)?,
            access_key_secret: get("ACS_ACCESS_KEY_SECRET")
                .ok_or_else(|| {
                    ConfigError::new(
                        "ACS_ACCESS_KEY_SECRET",
                        "is required with ACS_ENDPOINT: the Key Vault secret name of the access key",
                    )
                })?
                .to_owned(),
            sms_from: get("ACS_SMS_FROM")
                .map(|n| e164_setting("ACS_SMS_FROM", n))
                .transpose()?,
            email_from: get("ACS_EMAIL_FROM").map(str::to_owned),
        }),
    };
    let twilio = match get("TWILIO_ACCOUNT_SID") {
        None => None,
        Some(sid) => Some(TwilioSettings {
            endpoint: self::endpoint(
                "TWILIO_ENDPOINT",
                get("TWILIO_ENDPOINT").unwrap_or("https://api.twilio.com"),
            )?,
            account_sid: sid.to_owned(),
            auth_token_secret: get("TWILIO_AUTH_TOKEN_SECRET")
                .ok_or_else(|| {
                    ConfigError::new(
                        "TWILIO_AUTH_TOKEN_SECRET",
                        "is required with TWILIO_ACCOUNT_SID: the Key Vault secret name of the auth token",
                    )
                })?
                .to_owned(),
            from: e164_setting("TWILIO_FROM", get("TWILIO_FROM").unwrap_or_default())?,
        }),
    };
    let sms_provider = match get("SMS_PROVIDER") {
        Some("acs") if acs.as_ref().is_some_and(|a| a.sms_from.is_some()) => Some(SmsProvider::Acs),
        Some("twilio") if twilio.is_some() => Some(SmsProvider::Twilio),
        Some(v @ ("acs" | "twilio")) => {
            return Err(ConfigError::new(
                "SMS_PROVIDER",
                format!("'{v}' is chosen but not configured (ACS_ENDPOINT and ACS_SMS_FROM, or TWILIO_*)"),
            ));
        }
        Some(v) => {
            return Err(ConfigError::new(
                "SMS_PROVIDER",
                format!("'{v}' is not 'acs' or 'twilio'"),
            ));
        }
        None if acs.as_ref().is_some_and(|a| a.sms_from.is_some()) => Some(SmsProvider::Acs),
        None if twilio.is_some() => Some(SmsProvider::Twilio),
        None => None,
    };
    let email_provider = match get("EMAIL_PROVIDER") {
        None | Some("graph") => EmailProvider::Graph,
        Some("acs") if acs.as_ref().is_some_and(|a| a.email_from.is_some()) => EmailProvider::Acs,
        Some("acs") => {
            return Err(ConfigError::new(
                "EMAIL_PROVIDER",
                "'acs' needs ACS_ENDPOINT and ACS_EMAIL_FROM",
            ));
        }
        Some(v) => {
            return Err(ConfigError::new(
                "EMAIL_PROVIDER",
                format!("'{v}' is not 'graph' or 'acs'"),
            ));
        }
    };
    Ok((acs, twilio, sms_provider, email_provider))
}

/// The text that carries the pass: it must hold `{pass}` and must not hold `{ticket}`.
pub(super) fn message_template(template: Option<&str>) -> Result<Option<String>, ConfigError> {
    match template {
        Some(t) if !t.contains("{pass}") => Err(ConfigError::new(
            "TAP_MESSAGE_TEMPLATE",
            "must contain {pass} (and may use {upn}, {expires}, {usage}, {contact})",
        )),
        Some(t) if t.contains("{ticket}") => Err(ConfigError::new(
            "TAP_MESSAGE_TEMPLATE",
            "must not use {ticket}: ticket text comes from the caller and never travels with a pass (the notices name the ticket)",
        )),
        other => Ok(other.map(|t| t.replace("\\n", "\n"))),
    }
}

/// `ADDRESS_MIN_AGE_DAYS`, at most the directory audit log's retention: Entra keeps audit data
/// 30 days by default (directoryaudit-list, "Microsoft Entra data retention"), so a longer window
/// would pass an address whose change the log no longer shows.
fn address_min_age_days<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<u32, ConfigError> {
    const RETENTION_DAYS: u32 = 30;
    match get("ADDRESS_MIN_AGE_DAYS") {
        Some(v) if v.parse::<u32>().is_ok_and(|n| n > RETENTION_DAYS) => Err(ConfigError::new(
            "ADDRESS_MIN_AGE_DAYS",
            format!(
                "'{v}' is longer than the {RETENTION_DAYS} days Entra keeps its directory audit log: an address changed before that could not be seen. Use 0 to {RETENTION_DAYS}"
            ),
        )),
        _ => number(get, "ADDRESS_MIN_AGE_DAYS", 7, 0..=RETENTION_DAYS),
    }
}
