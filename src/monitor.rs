//! The Azure Monitor Logs Ingestion API: rows to a data collection rule's stream, with the
//! managed identity's token for `https://monitor.azure.com` (Monitoring Metrics Publisher on the
//! rule). Implements `vocab::ports::LogSink`; the audit trail's export decides what to send.
//! https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;

use crate::vocab::ports::{IngestError, Ingested, LogSink};

pub struct LogsIngestion {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: url::Url,
}

impl LogsIngestion {
    /// A client for `{endpoint}/dataCollectionRules/{rule}/streams/{stream}?api-version=2023-01-01`.
    ///
    /// # Errors
    /// The endpoint cannot take a path.
    pub fn new(
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        endpoint: &url::Url,
        rule: &str,
        stream: &str,
    ) -> anyhow::Result<LogsIngestion> {
        let mut url = endpoint.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("AUDIT_EXPORT_ENDPOINT cannot take a path"))?
            .pop_if_empty()
            .extend(["dataCollectionRules", rule, "streams", stream]);
        url.query_pairs_mut().append_pair("api-version", "2023-01-01");
        Ok(LogsIngestion { http, credential, url })
    }
}

#[async_trait]
impl LogSink for LogsIngestion {
    async fn ingest(&self, body: Vec<u8>) -> Result<Ingested, IngestError> {
        let token = self
            .credential
            .get_token(&["https://monitor.azure.com/.default"], None)
            .await
            .map_err(|e| IngestError::Retry {
                after: None,
                why: format!("no token for Azure Monitor: {e}"),
            })?;
        let sent = self
            .http
            .post(self.url.clone())
            .bearer_auth(token.token.secret())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => {
                return Err(IngestError::Retry {
                    after: None,
                    why: format!("the Logs Ingestion API could not be reached: {e}"),
                });
            }
        };
        let status = r.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Ingested::Accepted);
        }
        // 413: over 1 MB; 429 and 5xx: throttled or failing (the docs' `Retry-After`).
        if status == 413 {
            return Ok(Ingested::TooLarge);
        }
        if status == 429 || status >= 500 {
            let after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            return Err(IngestError::Retry {
                after,
                why: format!("the Logs Ingestion API answered {status}"),
            });
        }
        Err(IngestError::Refused(format!(
            "the Logs Ingestion API refused the records ({status}): check the rule, the stream and Monitoring Metrics Publisher (docs/audit.md)"
        )))
    }
}
