//! Who acted, as the audit trail, the request records and the rate limits name them.

use serde::{Deserialize, Serialize};

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerRecord {
    /// `token`, `webhook:<sender>`, `cli`, `timer`, or `anonymous` for a refused unknown caller.
    pub via: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The object id is a person's: a delegated (user) token, not an application's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
    /// The person an application or a signed webhook acted for (the agent its ticket names),
    /// resolved to an object id through Graph; `None` when none was named or it did not resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Person>,
}

/// A person a request names, as resolved in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub object_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
}

impl CallerRecord {
    /// The people behind this caller: the token's user, and the person a request named. Rules
    /// about "the caller" (not their own account, not their own address, not their own approval)
    /// hold for each.
    pub fn people(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if self.user
            && let Some(id) = self.object_id.as_deref()
        {
            out.push(id);
        }
        if let Some(p) = &self.on_behalf_of {
            out.push(p.object_id.as_str());
        }
        out
    }

    /// Whether `id` is one of `people()` (object ids compare case-insensitively).
    /// The key a caller is known by across its calls: how it proved itself and who it is.
    pub fn key(&self) -> String {
        format!("{}:{}", self.via, self.object_id.as_deref().unwrap_or("-"))
    }

    pub(crate) fn is_person(&self, id: &str) -> bool {
        self.people().iter().any(|p| p.eq_ignore_ascii_case(id))
    }
}
