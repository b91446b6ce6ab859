//! Simulated Microsoft Graph: `/users/{user}/revokeSignInSessions`, `/users/{user}/sendMail`: sessions and mail.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- sessions and mail

/// POST /users/{id}/revokeSignInSessions — https://learn.microsoft.com/graph/api/user-revokesigninsessions
/// Answers 200 `{"value": true}` (the documented known issue: it should be 204).
pub(crate) async fn revoke_sessions(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
) -> GraphResult {
    p.require(REVOKE)?;
    with_user_mut(&state, &key, |tenant, idx| {
        tenant.users[idx].sessions_revoked_at = Some(now_rfc3339());
        Ok(())
    })?;
    ok(json!({"@odata.context": context(&state, v, "Edm.Boolean"), "value": true}))
}

pub(crate) fn addresses(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// POST /users/{id}/sendMail — https://learn.microsoft.com/graph/api/user-sendmail (202, recorded in the outbox)
///
/// Authorized by the Entra application permission `Mail.Send` (any mailbox), or by Exchange Online
/// RBAC for Applications: an "Application Mail.Send" role assignment whose management scope holds
/// the sending mailbox (https://learn.microsoft.com/exchange/permissions-exo/application-rbac).
/// Neither: 403 `ErrorAccessDenied` "Access is denied. Check credentials and try again."
pub(crate) async fn send_mail(
    State(state): S,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult {
    if p.require(SEND_MAIL).is_err() {
        let mailbox = with_user(&state, &key, |u| (u.upn.clone(), u.mail.clone()))?;
        let app = p.app_id().unwrap_or_default().to_owned();
        let scoped = state.tenant().exchange_mail_send.iter().any(|(a, m)| {
            a.eq_ignore_ascii_case(&app)
                && (m.eq_ignore_ascii_case(&mailbox.0)
                    || mailbox.1.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(m)))
        });
        if !scoped {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
    }
    let body = json_body(&body)?;
    let from = with_user(&state, &key, |u| u.mail.clone())?.ok_or_else(|| {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    })?;
    let message = body.get("message").ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The message is missing.",
        )
    })?;
    let mut to = addresses(message.get("toRecipients"));
    to.extend(addresses(message.get("ccRecipients")));
    to.extend(addresses(message.get("bccRecipients")));
    if to.is_empty() {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid.",
        ));
    }
    let content = message
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    state.outbox.lock().unwrap().push(OutboxItem {
        id: uuid::Uuid::new_v4().to_string(),
        provider: "graph".into(),
        channel: "email".into(),
        from,
        to,
        subject: message.get("subject").and_then(Value::as_str).map(str::to_owned),
        body: content.to_owned(),
        at: now_rfc3339(),
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
