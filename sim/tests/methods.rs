//! Simulated Graph: authentication methods with Graph's delete rules, the Temporary Access Pass
//! and its policy.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TAP_POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass";

fn count(types: &[String], t: &str) -> usize {
    types.iter().filter(|x| x.as_str() == t).count()
}

#[tokio::test]
async fn v1_lists_the_methods_it_knows_and_beta_lists_hardware_tokens_too() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let v1 = g.method_types(GRADY, "v1.0").await;
    let beta = g.method_types(GRADY, "beta").await;
    assert_eq!(
        count(&v1, "passwordAuthenticationMethod"),
        1,
        "the password is always listed"
    );
    assert_eq!(count(&v1, "hardwareOathAuthenticationMethod"), 0);
    assert_eq!(count(&beta, "hardwareOathAuthenticationMethod"), 1);
    assert_eq!(beta.len(), v1.len() + 1);
    for t in [
        "phoneAuthenticationMethod",
        "softwareOathAuthenticationMethod",
        "fido2AuthenticationMethod",
        "windowsHelloForBusinessAuthenticationMethod",
        "platformCredentialAuthenticationMethod",
        "externalAuthenticationMethod",
        "qrCodePinAuthenticationMethod",
        "emailAuthenticationMethod",
    ] {
        assert_eq!(count(&v1, t), 1, "{t}");
    }
    let (status, _) = g
        .get(&format!("/v1.0/users/{GRADY}/authentication/hardwareOathMethods"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "hardware OATH is a beta segment");
}

#[tokio::test]
async fn the_password_method_cannot_be_deleted() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, _) = g
        .delete(&format!("/v1.0/users/{ALEX}/authentication/passwordMethods/{PASSWORD}"))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        count(&g.method_types(ALEX, "v1.0").await, "passwordAuthenticationMethod"),
        1
    );
}

#[tokio::test]
async fn the_default_phone_cannot_be_deleted_while_another_method_could_be_default() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    // Lee: mobile phone (default, sms) and a software OATH token.
    let mobile = format!("/v1.0/users/{LEE}/authentication/phoneMethods/{MOBILE}");
    let (status, body) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "badRequest");
    // Move the default off the phone (beta signInPreferences), then it can go.
    let prefs = format!("/beta/users/{LEE}/authentication/signInPreferences");
    let (status, _) = g
        .patch(&prefs, json!({"userPreferredMethodForSecondaryAuthentication": "oath"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, now) = g.get(&prefs).await;
    assert_eq!(now["userPreferredMethodForSecondaryAuthentication"], "oath");
    let (status, _) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// As documented, the default phone cannot be deleted, also when it is the user's last method
/// (phoneauthenticationmethod-delete gives no exception); the lenient option deletes it.
#[tokio::test]
async fn the_last_default_phone_is_kept_unless_the_tenant_is_lenient() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let mobile = format!("/v1.0/users/{LYNNE}/authentication/phoneMethods/{MOBILE}");
    let (status, body) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_graph_error(&body, "badRequest");
    assert!(
        g.method_types(LYNNE, "v1.0")
            .await
            .contains(&"phoneAuthenticationMethod".to_owned())
    );
    sim.tenant().lenient_default_phone = true;
    let (status, _) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        g.method_types(LYNNE, "v1.0").await,
        vec!["passwordAuthenticationMethod".to_owned()]
    );
    let (_, prefs) = g
        .get(&format!("/beta/users/{LYNNE}/authentication/signInPreferences"))
        .await;
    assert_eq!(prefs["userPreferredMethodForSecondaryAuthentication"], Value::Null);
}

#[tokio::test]
async fn an_alternate_mobile_needs_a_mobile_so_it_goes_first() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    // Take the default off Adele's mobile so only the alternate-mobile rule is in play.
    let (status, _) = g
        .patch(
            &format!("/beta/users/{ADELE}/authentication/signInPreferences"),
            json!({"userPreferredMethodForSecondaryAuthentication": "push"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mobile = format!("/v1.0/users/{ADELE}/authentication/phoneMethods/{MOBILE}");
    let (status, _) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "alternate mobile still registered");
    let (status, _) = g
        .delete(&format!("/v1.0/users/{ADELE}/authentication/phoneMethods/{ALTERNATE}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = g.delete(&mobile).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_default_that_names_no_registered_method_is_refused() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, _) = g
        .patch(
            &format!("/beta/users/{ALEX}/authentication/signInPreferences"),
            json!({"userPreferredMethodForSecondaryAuthentication": "sms"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = g
        .patch(
            &format!("/v1.0/users/{ALEX}/authentication/signInPreferences"),
            json!({"userPreferredMethodForSecondaryAuthentication": "push"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "signInPreferences is beta only");
}

#[tokio::test]
async fn deleting_a_method_twice_gives_not_found() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let path =
        format!("/v1.0/users/{ALEX}/authentication/microsoftAuthenticatorMethods/0a1b2c3d-1111-4a6b-9c1d-3e0a8f2d4c22");
    assert_eq!(g.delete(&path).await.0, StatusCode::NO_CONTENT);
    let (status, body) = g.delete(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "itemNotFound");
}

#[tokio::test]
async fn every_method_type_is_deleted_through_its_own_path() {
    let sim = start().await;
    // The paths are under test here, not the default-phone rule (its own test): the phone, once
    // the default with nothing to take over, may go.
    sim.tenant().lenient_default_phone = true;
    let g = Graph::as_app(&sim).await;
    let (_, all) = g.get(&format!("/beta/users/{GRADY}/authentication/methods")).await;
    for m in all["value"].as_array().unwrap() {
        let ty = m["@odata.type"]
            .as_str()
            .unwrap()
            .trim_start_matches("#microsoft.graph.");
        let id = m["id"].as_str().unwrap();
        let path = match ty {
            "passwordAuthenticationMethod" => continue,
            "phoneAuthenticationMethod" => format!("/v1.0/users/{GRADY}/authentication/phoneMethods/{id}"),
            "softwareOathAuthenticationMethod" => {
                format!("/v1.0/users/{GRADY}/authentication/softwareOathMethods/{id}")
            }
            "hardwareOathAuthenticationMethod" => {
                format!("/beta/users/{GRADY}/authentication/hardwareOathMethods/{id}")
            }
            "fido2AuthenticationMethod" => format!("/v1.0/users/{GRADY}/authentication/fido2Methods/{id}"),
            "windowsHelloForBusinessAuthenticationMethod" => {
                format!("/v1.0/users/{GRADY}/authentication/windowsHelloForBusinessMethods/{id}")
            }
            "platformCredentialAuthenticationMethod" => {
                format!("/v1.0/users/{GRADY}/authentication/platformCredentialMethods/{id}")
            }
            "emailAuthenticationMethod" => format!("/v1.0/users/{GRADY}/authentication/emailMethods/{id}"),
            "qrCodePinAuthenticationMethod" => format!("/beta/users/{GRADY}/authentication/qrCodePinMethod"),
            "externalAuthenticationMethod" => {
                let plain = format!("/v1.0/users/{GRADY}/authentication/externalAuthenticationMethods/{id}");
                assert_eq!(
                    g.delete(&plain).await.0,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the documented form is /$ref"
                );
                format!("{plain}/$ref")
            }
            other => panic!("unexpected type {other}"),
        };
        // The office phone is Grady's default: it goes last, once nothing else could be default.
        if ty == "phoneAuthenticationMethod" {
            continue;
        }
        let (status, body) = g.delete(&path).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
    }
    let (status, _) = g
        .delete(&format!("/v1.0/users/{GRADY}/authentication/phoneMethods/{OFFICE}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        g.method_types(GRADY, "beta").await,
        vec!["passwordAuthenticationMethod".to_owned()]
    );
}

#[tokio::test]
async fn deactivating_a_hardware_token_keeps_it_but_drops_it_from_the_report() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (_, tokens) = g
        .get(&format!("/beta/users/{GRADY}/authentication/hardwareOathMethods"))
        .await;
    let id = tokens["value"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = g
        .post(
            &format!("/beta/users/{GRADY}/authentication/hardwareOathMethods/{id}/deactivate"),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, tokens) = g
        .get(&format!("/beta/users/{GRADY}/authentication/hardwareOathMethods"))
        .await;
    assert_eq!(tokens["value"][0]["status"], "assigned");
    let (_, row) = g
        .get(&format!(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails/{GRADY}"
        ))
        .await;
    assert!(
        !row["methodsRegistered"]
            .as_array()
            .unwrap()
            .contains(&json!("hardwareOneTimePasscode")),
        "{row}"
    );
}

#[tokio::test]
async fn a_tap_is_returned_once_and_a_new_one_replaces_the_old() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, first) = g
        .create_tap(ALEX, json!({"lifetimeInMinutes": 120, "isUsableOnce": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let pass = first["temporaryAccessPass"].as_str().unwrap();
    assert_eq!(pass.len(), 8, "the policy's defaultLength");
    assert_eq!(first["lifetimeInMinutes"], 120);
    assert_eq!(first["isUsableOnce"], true);
    assert_eq!(first["isUsable"], true);
    assert_eq!(first["methodUsabilityReason"], "EnabledByPolicy");
    let list_path = format!("/v1.0/users/{ALEX}/authentication/temporaryAccessPassMethods");
    let (_, list) = g.get(&list_path).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["value"][0]["temporaryAccessPass"],
        Value::Null,
        "the pass is only in the create response"
    );
    let (_, one) = g.get(&format!("{list_path}/{}", first["id"].as_str().unwrap())).await;
    assert_eq!(one["temporaryAccessPass"], Value::Null);
    let (status, second) = g.create_tap(ALEX, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["lifetimeInMinutes"], 60, "the policy's default lifetime");
    let (_, list) = g.get(&list_path).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "one TAP per user");
    assert_eq!(list["value"][0]["id"], second["id"]);
    let (status, _) = g
        .delete(&format!("{list_path}/{}", second["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = g.get(&list_path).await;
    assert_eq!(list["value"], json!([]));
}

#[tokio::test]
async fn a_tap_starting_later_is_not_yet_usable() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, tap) = g
        .create_tap(ALEX, json!({"startDateTime": "2099-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (tap["isUsable"].as_bool(), tap["methodUsabilityReason"].as_str()),
        (Some(false), Some("NotYetValid"))
    );
}

#[tokio::test]
async fn tap_creation_follows_the_policy_scope() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    // Outside the included group, and included but excluded.
    for user in [LYNNE, MIRIAM] {
        let (status, body) = g.create_tap(user, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{user}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Converged UserCredentialPolicy"),
            "{body}"
        );
    }
    // In scope only through a nested group.
    assert_eq!(g.create_tap(LEE, json!({})).await.0, StatusCode::CREATED);
    // A guest is refused even inside the group.
    let (status, body) = g.create_tap(PAT_GUEST, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("guest"), "{body}");
    // Graph does not refuse a disabled account (the function set must check it itself).
    assert_eq!(g.create_tap(DIEGO_DISABLED, json!({})).await.0, StatusCode::CREATED);
    // Nothing was created for the refused users.
    let (_, list) = g
        .get(&format!(
            "/v1.0/users/{LYNNE}/authentication/temporaryAccessPassMethods"
        ))
        .await;
    assert_eq!(list["value"], json!([]));
}

#[tokio::test]
async fn tap_lifetime_must_be_within_the_policy() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    for minutes in [30, 481, 5, 50000] {
        let (status, body) = g.create_tap(ALEX, json!({"lifetimeInMinutes": minutes})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{minutes}: {body}");
    }
    for minutes in [60, 480] {
        assert_eq!(
            g.create_tap(ALEX, json!({"lifetimeInMinutes": minutes})).await.0,
            StatusCode::CREATED,
            "{minutes}"
        );
    }
}

#[tokio::test]
async fn a_disabled_policy_refuses_every_tap_and_a_one_time_policy_refuses_multi_use() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let admin = Graph::with_token(&sim, graph_token_with(&sim, &["Policy.ReadWrite.AuthenticationMethod"]));
    let (status, policy) = g.get(TAP_POLICY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(policy["id"], "TemporaryAccessPass");
    assert_eq!(policy["state"], "enabled");
    assert_eq!(policy["maximumLifetimeInMinutes"], 480);

    assert_eq!(
        admin.patch(TAP_POLICY, json!({"isUsableOnce": true})).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = g.create_tap(ALEX, json!({"isUsableOnce": false})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, tap) = g.create_tap(ALEX, json!({})).await;
    assert_eq!(
        (status, tap["isUsableOnce"].as_bool()),
        (StatusCode::CREATED, Some(true))
    );

    assert_eq!(
        admin.patch(TAP_POLICY, json!({"state": "disabled"})).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = g.create_tap(ALEX, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The pass created before is now unusable by policy.
    let (_, list) = g
        .get(&format!("/v1.0/users/{ALEX}/authentication/temporaryAccessPassMethods"))
        .await;
    assert_eq!(list["value"][0]["methodUsabilityReason"], "DisabledByPolicy");

    let (status, _) = admin.patch(TAP_POLICY, json!({"minimumLifetimeInMinutes": 500})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "minimum above maximum");
}
