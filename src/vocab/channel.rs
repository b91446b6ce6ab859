//! The out-of-band channels a pass, a code or a notice can take, and an address of record on one.

/// Where a pass goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The user's registered mobile phone (or `mobilePhone`, by setting).
    Sms,
    /// The user's alternate email of record (`otherMails`), never the mailbox they cannot open.
    Email,
    /// The user's manager's mail, to hand the pass over in person.
    Manager,
}

impl Channel {
    pub fn parse(value: &str) -> Option<Channel> {
        match value {
            "sms" => Some(Channel::Sms),
            "email" => Some(Channel::Email),
            "manager" => Some(Channel::Manager),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Manager => "manager",
        }
    }
}

/// An address of record for a channel.
#[derive(Debug, Clone)]
pub struct Address {
    pub channel: Channel,
    pub to: String,
}

impl Address {
    /// The address as records and responses show it.
    pub fn masked(&self) -> String {
        match self.channel {
            Channel::Sms => super::mask::mask_phone(&self.to),
            _ => super::mask::mask_email(&self.to),
        }
    }
}
