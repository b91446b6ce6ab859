//! Simulated Microsoft Graph: `/$batch`: JSON batching.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- $batch

/// Marks a `$batch` sub-request dispatched through the router, for the request log (not a
/// round trip of its own); never sent by a client.
pub(crate) const BATCH_ITEM: &str = "x-sim-batch-item";

/// POST /$batch — up to 20 requests, unique ids, `dependsOn` (a failed dependency answers 424).
/// https://learn.microsoft.com/graph/json-batching
pub(crate) async fn batch(
    State(state): S,
    Extension(v): Extension<Version>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> GraphResult {
    let body = json_body(&body)?;
    let requests = body.get("requests").and_then(Value::as_array).ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The batch request must contain a 'requests' array.",
        )
    })?;
    if requests.len() > 20 {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The number of batch requests exceeds the limit of 20.",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::bad_request("Each request needs an id."))?;
        if !ids.insert(id.to_owned()) {
            return Err(GraphError::bad_request(format!(
                "The batch request contains duplicate id '{id}'."
            )));
        }
        if r.get("body").is_some()
            && r.pointer("/headers/Content-Type")
                .or_else(|| r.pointer("/headers/content-type"))
                .is_none()
        {
            return Err(GraphError::bad_request(format!(
                "Request '{id}' has a body but no Content-Type header."
            )));
        }
    }
    let router = state.router.get().expect("router is set at start-up").clone();
    let auth = headers.get("authorization").cloned();
    let mut statuses: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let failed_dep = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|d| statuses.get(d).is_none_or(|s| !(200..300).contains(s)));
        if failed_dep {
            statuses.insert(id.clone(), 424);
            responses.push(json!({"id": id, "status": 424, "body": crate::error::graph_body("failedDependency", "A request this one depends on failed.")}));
            continue;
        }
        let method = r.get("method").and_then(Value::as_str).unwrap_or("GET");
        let url = r.get("url").and_then(Value::as_str).unwrap_or("/");
        let path = format!("/{}/{}", v.segment(), url.trim_start_matches('/'));
        let mut builder = Request::builder()
            .method(HttpMethod::from_bytes(method.as_bytes()).unwrap_or(HttpMethod::GET))
            .uri(path);
        if let Some(a) = &auth {
            builder = builder.header("authorization", a);
        }
        builder = builder.header(BATCH_ITEM, "1");
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, val) in h {
                if let Some(s) = val.as_str() {
                    builder = builder.header(k.as_str(), s);
                }
            }
        }
        let inner_body = r.get("body").map(|b| b.to_string()).unwrap_or_default();
        let request = builder
            .body(Body::from(inner_body))
            .map_err(|_| GraphError::bad_request(format!("Request '{id}' is not valid.")))?;
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let mut out_headers = Map::new();
        for (k, val) in response.headers() {
            if let Ok(s) = val.to_str() {
                out_headers.insert(k.to_string(), json!(s));
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        statuses.insert(id.clone(), status);
        let mut item = json!({"id": id, "status": status, "headers": out_headers});
        if !body.is_null() {
            item["body"] = body;
        }
        responses.push(item);
    }
    ok(json!({"responses": responses}))
}
