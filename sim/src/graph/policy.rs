//! Simulated Microsoft Graph: `/policies/authenticationMethodsPolicy/...`: the authentication methods policy.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- policy

/// GET .../authenticationMethodConfigurations/temporaryAccessPass
/// https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
pub(crate) async fn get_policy(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(config): Path<String>,
) -> GraphResult {
    p.require(READ_POLICY)?;
    if !config.eq_ignore_ascii_case("temporaryAccessPass") {
        return Err(GraphError::item_not_found(&config));
    }
    let mut policy = state.tenant().tap_policy.clone();
    policy["@odata.context"] = json!(context(
        &state,
        v,
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity"
    ));
    policy["@odata.type"] = json!("#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration");
    policy["id"] = json!("TemporaryAccessPass");
    ok(policy)
}

/// PATCH .../authenticationMethodConfigurations/temporaryAccessPass (204). Needs
/// Policy.ReadWrite.AuthenticationMethod, which the function app never holds; tests use it.
pub(crate) async fn patch_policy(
    State(state): S,
    Extension(p): Extension<Permissions>,
    Path(config): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult {
    p.require(WRITE_POLICY)?;
    if !config.eq_ignore_ascii_case("temporaryAccessPass") {
        return Err(GraphError::item_not_found(&config));
    }
    let body = json_body(&body)?;
    let Value::Object(changes) = body else {
        return Err(GraphError::bad_request("Expected an object."));
    };
    let mut tenant = state.tenant();
    let mut next = tenant.tap_policy.clone();
    for (k, v) in changes {
        if k.starts_with('@') || k == "id" {
            continue;
        }
        next[k] = v;
    }
    let get = |k: &str| next.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (min, max, def) = (
        get("minimumLifetimeInMinutes"),
        get("maximumLifetimeInMinutes"),
        get("defaultLifetimeInMinutes"),
    );
    if !(10..=43200).contains(&min) || !(10..=43200).contains(&max) || min > max || def < min || def > max {
        return Err(GraphError::bad_request(
            "Lifetimes must satisfy 10 <= minimum <= default <= maximum <= 43200.",
        ));
    }
    let len = get("defaultLength");
    if !(8..=48).contains(&len) {
        return Err(GraphError::bad_request("defaultLength must be between 8 and 48."));
    }
    tenant.tap_policy = next;
    Ok(StatusCode::NO_CONTENT.into_response())
}
