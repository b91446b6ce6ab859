//! Authentication method types, their Graph collections and the rules Graph applies to them.
//!
//! Source: https://learn.microsoft.com/graph/api/resources/authenticationmethods-overview and
//! the per-type delete pages (see `../shared/reference/graph-api.md` §3 in the design notes).

use serde_json::{Map, Value, json};

/// The fixed ids Graph gives the three phone methods.
pub const MOBILE_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";
pub const ALTERNATE_MOBILE_ID: &str = "b6332ec1-7057-4abe-9331-3d72feddfe41";
pub const OFFICE_ID: &str = "e37fc753-ff3b-4958-9484-eaa9425c82bc";
/// The id Graph gives every user's password method.
pub const PASSWORD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// Every method type the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Password,
    Phone,
    MicrosoftAuthenticator,
    Fido2,
    SoftwareOath,
    HardwareOath,
    Email,
    WindowsHelloForBusiness,
    PlatformCredential,
    External,
    QrCodePin,
    TemporaryAccessPass,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Password,
        Kind::Phone,
        Kind::MicrosoftAuthenticator,
        Kind::Fido2,
        Kind::SoftwareOath,
        Kind::HardwareOath,
        Kind::Email,
        Kind::WindowsHelloForBusiness,
        Kind::PlatformCredential,
        Kind::External,
        Kind::QrCodePin,
        Kind::TemporaryAccessPass,
    ];

    /// The seed file's `type` value.
    pub fn seed_name(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::Phone => "phone",
            Kind::MicrosoftAuthenticator => "microsoftAuthenticator",
            Kind::Fido2 => "fido2",
            Kind::SoftwareOath => "softwareOath",
            Kind::HardwareOath => "hardwareOath",
            Kind::Email => "email",
            Kind::WindowsHelloForBusiness => "windowsHelloForBusiness",
            Kind::PlatformCredential => "platformCredential",
            Kind::External => "external",
            Kind::QrCodePin => "qrCodePin",
            Kind::TemporaryAccessPass => "temporaryAccessPass",
        }
    }

    pub fn from_seed_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.seed_name() == name)
    }

    /// `@odata.type` of the method.
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::Password => "#microsoft.graph.passwordAuthenticationMethod",
            Kind::Phone => "#microsoft.graph.phoneAuthenticationMethod",
            Kind::MicrosoftAuthenticator => "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            Kind::Fido2 => "#microsoft.graph.fido2AuthenticationMethod",
            Kind::SoftwareOath => "#microsoft.graph.softwareOathAuthenticationMethod",
            Kind::HardwareOath => "#microsoft.graph.hardwareOathAuthenticationMethod",
            Kind::Email => "#microsoft.graph.emailAuthenticationMethod",
            Kind::WindowsHelloForBusiness => "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
            Kind::PlatformCredential => "#microsoft.graph.platformCredentialAuthenticationMethod",
            Kind::External => "#microsoft.graph.externalAuthenticationMethod",
            Kind::QrCodePin => "#microsoft.graph.qrCodePinAuthenticationMethod",
            Kind::TemporaryAccessPass => "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        }
    }

    /// The navigation property under `/users/{id}/authentication/`.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Password => "passwordMethods",
            Kind::Phone => "phoneMethods",
            Kind::MicrosoftAuthenticator => "microsoftAuthenticatorMethods",
            Kind::Fido2 => "fido2Methods",
            Kind::SoftwareOath => "softwareOathMethods",
            Kind::HardwareOath => "hardwareOathMethods",
            Kind::Email => "emailMethods",
            Kind::WindowsHelloForBusiness => "windowsHelloForBusinessMethods",
            Kind::PlatformCredential => "platformCredentialMethods",
            Kind::External => "externalAuthenticationMethods",
            Kind::QrCodePin => "qrCodePinMethod",
            Kind::TemporaryAccessPass => "temporaryAccessPassMethods",
        }
    }

    pub fn from_collection(segment: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.collection().eq_ignore_ascii_case(segment))
    }

    /// Whether v1.0 knows the type (beta knows them all). "Listing … only returns methods
    /// supported on this API version."
    pub fn in_v1(self) -> bool {
        !matches!(self, Kind::HardwareOath)
    }

    /// Methods that can be a user's default second factor (signInPreferences).
    pub fn can_be_default(self) -> bool {
        matches!(
            self,
            Kind::Phone | Kind::MicrosoftAuthenticator | Kind::SoftwareOath | Kind::HardwareOath
        )
    }

    /// Methods that count as an MFA registration in the registration report (email is SSPR only).
    pub fn is_mfa(self) -> bool {
        !matches!(self, Kind::Password | Kind::Email | Kind::TemporaryAccessPass)
    }
}

/// One registered method.
#[derive(Debug, Clone)]
pub struct Method {
    pub id: String,
    pub kind: Kind,
    /// Every other property, as Graph returns them.
    pub props: Map<String, Value>,
    /// The pass of a TAP, kept so tests can compare it with what a provider delivered.
    /// Graph returns it only in the create response.
    pub secret: Option<String>,
}

impl Method {
    /// Build a method from a seed entry. Unknown types are an error in the seed.
    pub fn from_seed(entry: &Map<String, Value>) -> Result<Method, String> {
        let ty = entry
            .get("type")
            .and_then(Value::as_str)
            .ok_or("method without a type")?;
        let kind = Kind::from_seed_name(ty).ok_or_else(|| format!("unknown method type {ty}"))?;
        let mut props = entry.clone();
        props.remove("type");
        let id = match props.remove("id").and_then(|v| v.as_str().map(str::to_owned)) {
            Some(id) => id,
            None if kind == Kind::Phone => match props.get("phoneType").and_then(Value::as_str) {
                Some("mobile") => MOBILE_ID.into(),
                Some("alternateMobile") => ALTERNATE_MOBILE_ID.into(),
                Some("office") => OFFICE_ID.into(),
                other => return Err(format!("phone method with phoneType {other:?}")),
            },
            None if kind == Kind::Password => PASSWORD_ID.into(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        if kind == Kind::Phone {
            props.entry("smsSignInState").or_insert(json!("notAllowedByPolicy"));
        }
        props.entry("createdDateTime").or_insert(json!("2024-03-01T09:00:00Z"));
        Ok(Method {
            id,
            kind,
            props,
            secret: None,
        })
    }

    pub fn password() -> Method {
        let mut props = Map::new();
        props.insert("password".into(), Value::Null);
        props.insert("createdDateTime".into(), json!("2024-01-15T08:00:00Z"));
        Method {
            id: PASSWORD_ID.into(),
            kind: Kind::Password,
            props,
            secret: None,
        }
    }

    pub fn phone_type(&self) -> Option<&str> {
        (self.kind == Kind::Phone)
            .then(|| self.props.get("phoneType").and_then(Value::as_str))
            .flatten()
    }

    /// The Graph JSON of the method.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("@odata.type".into(), json!(self.kind.odata_type()));
        out.insert("id".into(), json!(self.id));
        for (k, v) in &self.props {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }

    /// The `methodsRegistered` string of the registration report, if the method counts.
    pub fn report_name(&self) -> Option<&'static str> {
        Some(match self.kind {
            Kind::Phone => match self.phone_type() {
                Some("mobile") => "mobilePhone",
                Some("alternateMobile") => "alternateMobilePhone",
                _ => "officePhone",
            },
            Kind::MicrosoftAuthenticator => "microsoftAuthenticatorPush",
            Kind::SoftwareOath => "softwareOneTimePasscode",
            Kind::HardwareOath => "hardwareOneTimePasscode",
            Kind::Fido2 => "fido2",
            Kind::Email => "email",
            Kind::WindowsHelloForBusiness => "windowsHelloForBusiness",
            Kind::PlatformCredential => "macOsSecureEnclaveKey",
            Kind::TemporaryAccessPass => "temporaryAccessPass",
            Kind::External => "externalAuthenticationMethod",
            Kind::QrCodePin => "qrCodePin",
            Kind::Password => return None,
        })
    }
}

/// Which method a `userPreferredMethodForSecondaryAuthentication` value points at.
pub fn default_target(pref: &str) -> Option<(Kind, Option<&'static str>)> {
    Some(match pref {
        "sms" | "voiceMobile" => (Kind::Phone, Some("mobile")),
        "voiceAlternateMobile" => (Kind::Phone, Some("alternateMobile")),
        "voiceOffice" => (Kind::Phone, Some("office")),
        "push" => (Kind::MicrosoftAuthenticator, None),
        "oath" => (Kind::SoftwareOath, None),
        _ => return None,
    })
}

/// Whether `method` is what the preference `pref` points at.
pub fn is_default(method: &Method, pref: Option<&str>) -> bool {
    let Some((kind, phone)) = pref.and_then(default_target) else {
        return false;
    };
    if method.kind == Kind::HardwareOath && pref == Some("oath") {
        return true;
    }
    method.kind == kind && (phone.is_none() || method.phone_type() == phone)
}
