//! The write path of the API: one helper, [`Write::run`], that every command endpoint goes through.
//!
//! It builds `commands::Meta` from the authenticated actor, `If-Match`, `Idempotency-Key` and the
//! request id; replays the first answer to a retried `Idempotency-Key`; runs the command; waits until
//! the live read model has folded the new events (so the caller's next read sees its write); and
//! stores the answer for later retries. Handlers only say which command to run and what to answer.

use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::extract::{IdempotencyKey, IfMatch, RequestId, etag};
use crate::api::state::AppState;
use crate::commands::{CommandError, Executed, Meta};
use crate::serverdb::StoredReply;
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use ducha_events::ids::TenantId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;

/// What a command endpoint answers on success.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: serde_json::Value,
    /// The aggregate's version after the command, sent as `ETag`.
    pub version: Option<u64>,
    /// `Location` of a created resource.
    pub location: Option<String>,
}

impl Reply {
    pub fn ok(body: impl Serialize) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: serde_json::to_value(body).unwrap_or_default(),
            version: None,
            location: None,
        }
    }
    pub fn created(body: impl Serialize, location: impl Into<String>) -> Reply {
        Reply { status: StatusCode::CREATED, location: Some(location.into()), ..Reply::ok(body) }
    }
    pub fn version(mut self, version: u64) -> Reply {
        self.version = Some(version);
        self
    }

    fn into_response(self, replayed: bool) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(v) = self.version {
            res.insert_header(etag(v));
        }
        if let Some(l) = &self.location {
            res.insert_header((header::LOCATION, l.as_str()));
        }
        if replayed {
            res.insert_header(("idempotent-replayed", "true"));
        }
        res.json(self.body)
    }

    fn stored(&self, fingerprint: String) -> StoredReply {
        StoredReply {
            fingerprint,
            status: self.status.as_u16(),
            body: self.body.to_string(),
            version: self.version,
            location: self.location.clone(),
        }
    }

    fn from_stored(s: StoredReply) -> Reply {
        Reply {
            status: StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK),
            body: serde_json::from_str(&s.body).unwrap_or_default(),
            version: s.version,
            location: s.location,
        }
    }
}

/// Everything a write endpoint needs besides its path and body: take it as a handler argument.
#[derive(Debug, Clone)]
pub struct Write {
    pub who: Authenticated,
    pub if_match: IfMatch,
    pub key: IdempotencyKey,
    pub request_id: RequestId,
    method: Method,
    path: String,
}

impl FromRequest for Write {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Write, ApiError>>>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let who = Authenticated::from_request(req, payload);
        let if_match = IfMatch::from_request(req, payload);
        let key = IdempotencyKey::from_request(req, payload);
        let request_id = RequestId::from_request(req, payload);
        let (method, path) = (req.method().clone(), req.path().to_owned());
        Box::pin(async move {
            Ok(Write {
                who: who.await?,
                if_match: if_match.await?,
                key: key.await?,
                request_id: request_id.await?,
                method,
                path,
            })
        })
    }
}

impl Write {
    /// The command metadata: actor with current grants, now, correlation = request id.
    pub fn meta(&self) -> Meta {
        let mut meta = Meta::new(self.who.actor.clone(), chrono::Utc::now());
        meta.correlation_id = Some(self.request_id.0.clone());
        meta.idempotency_key = self.key.0.clone();
        meta.expected_version = self.if_match.0;
        meta
    }

    fn fingerprint(&self, request: &impl Serialize) -> String {
        let mut h = Sha256::new();
        for part in [self.method.as_str(), &self.path, self.who.actor.user_id.as_str()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(serde_json::to_vec(request).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// Runs a command for `tenant` (the tenant whose chain it appends to; `TenantId::platform()` for
    /// platform and district commands) and answers with `reply(&executed)`.
    ///
    /// `request` is the parsed body (with anything else that identifies the request); a retry with
    /// the same `Idempotency-Key` must send the same, or it gets 422 `idempotency_key_reused`.
    pub async fn run<F, Fut>(
        &self,
        state: &AppState,
        tenant: &TenantId,
        request: &impl Serialize,
        command: F,
        reply: impl FnOnce(&Executed) -> Reply,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(Meta) -> Fut,
        Fut: Future<Output = Result<Executed, CommandError>>,
    {
        let fingerprint = self.fingerprint(request);
        if let Some(key) = &self.key.0 {
            let (t, k) = (tenant.to_string(), key.clone());
            let stored = state.server_db.blocking(move |db| db.reply(&t, &k)).await;
            match stored {
                Ok(Some(stored)) if stored.fingerprint == fingerprint => {
                    return Ok(Reply::from_stored(stored).into_response(true));
                }
                Ok(Some(_)) => return Err(ApiError::idempotency_key_reused()),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read stored idempotent replies"),
            }
        }
        let executed = match command(self.meta()).await {
            Ok(done) => done,
            Err(e) => {
                state.metrics.command(false);
                return Err(ApiError::from_command(e, self.if_match.0.is_some()));
            }
        };
        state.metrics.command(true);
        state.metrics.appended(executed.events as u64);
        // Read-your-writes: the next read by this caller must see this write.
        if executed.outcome.last_position > 0 {
            state.live.catch_up_to(&*state.store, Some(executed.outcome.last_position)).await?;
        }
        let answer = reply(&executed);
        if let Some(key) = &self.key.0 {
            let (t, k, stored) = (tenant.to_string(), key.clone(), answer.stored(fingerprint));
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = state.server_db.blocking(move |db| db.save_reply(&t, &k, &stored, now)).await {
                // The store still deduplicates the retry; it then gets an answer rebuilt from the
                // first append's outcome, which has the same shape.
                tracing::warn!(error = %e, "cannot store the idempotent reply");
            }
        }
        Ok(answer.into_response(executed.outcome.deduplicated))
    }
}
