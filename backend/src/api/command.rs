//! The write path of the API: one helper, [`Write::run`], that every command endpoint goes through.
//!
//! It builds `commands::Meta` from the authenticated actor, `If-Match`, `Idempotency-Key` and the
//! request id; replays the first answer to a retried `Idempotency-Key`; runs the command; waits until
//! the live read model has folded the new events (so the caller's next read sees its write); and
//! stores the answer for later retries. Handlers only say which command to run and what to answer.
//!
//! Every successful write answers `X-Ducha-Position: N`, the log position it reached: a read sent to
//! any replica with `X-Ducha-Min-Position: N` (or `min_position=N`) waits until that replica has
//! applied N (see `api::consistency`).

use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::extract::{IdempotencyKey, IfMatch, RequestId, etag};
use crate::api::state::AppState;
use crate::commands::{CommandError, Executed, Meta};
use crate::server_state::StoredReply;
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use ducha_events::ids::TenantId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;

/// The response header carrying the log position a write reached.
pub const POSITION_HEADER: &str = "x-ducha-position";

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

    fn into_response(self, replayed: bool, position: u64) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((POSITION_HEADER, position.to_string()));
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
    client_addr: String,
    user_agent: String,
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
        let trust = req.app_data::<actix_web::web::Data<AppState>>().is_some_and(|s| s.config.trust_forwarded_for);
        let from = crate::api::extract::origin(req, trust);
        Box::pin(async move {
            Ok(Write {
                who: who.await?,
                if_match: if_match.await?,
                key: key.await?,
                request_id: request_id.await?,
                method,
                path,
                client_addr: from.client_addr,
                user_agent: from.user_agent,
            })
        })
    }
}

impl Write {
    /// The command metadata: actor with current grants, now, correlation = request id.
    pub fn meta(&self) -> Meta {
        let mut meta = Meta::new(self.who.actor.clone(), crate::clock::now());
        meta.correlation_id = Some(self.request_id.0.clone());
        meta.idempotency_key = self.key.0.clone();
        meta.expected_version = self.if_match.0;
        meta
    }

    /// Where the request came from, for the security audit log (`trust_forwarded_for` was applied
    /// when the request was read).
    pub fn origin(&self, _trust_forwarded_for: bool) -> crate::security_log::Origin {
        crate::security_log::Origin {
            client_addr: self.client_addr.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.0.clone(),
        }
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
        self.run_inner(state, tenant, request, None, command, reply).await
    }

    /// [`Write::run`] for a security-relevant command: `audit` is recorded in the security audit
    /// log after the command is decided and before its events are appended — if it cannot be
    /// written, nothing is appended (503 `audit_unavailable`). A refused command is recorded after
    /// the fact with its error code.
    pub async fn run_audited<F, Fut>(
        &self,
        state: &AppState,
        tenant: &TenantId,
        request: &impl Serialize,
        audit: crate::security_log::Entry,
        command: F,
        reply: impl FnOnce(&Executed) -> Reply,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(Meta) -> Fut,
        Fut: Future<Output = Result<Executed, CommandError>>,
    {
        self.run_inner(state, tenant, request, Some(audit), command, reply).await
    }

    async fn run_inner<F, Fut>(
        &self,
        state: &AppState,
        tenant: &TenantId,
        request: &impl Serialize,
        audit: Option<crate::security_log::Entry>,
        command: F,
        reply: impl FnOnce(&Executed) -> Reply,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(Meta) -> Fut,
        Fut: Future<Output = Result<Executed, CommandError>>,
    {
        let fingerprint = self.fingerprint(request);
        if let Some(key) = &self.key.0 {
            let stored = state.server.replies.reply(tenant.as_str(), key).await;
            match stored {
                Ok(Some(stored)) if stored.fingerprint == fingerprint => {
                    // The first answer's write is at or before the log's head now.
                    let position = state.store.head().await?;
                    return Ok(Reply::from_stored(stored).into_response(true, position));
                }
                Ok(Some(_)) => return Err(ApiError::idempotency_key_reused()),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read stored idempotent replies"),
            }
        }
        let mut meta = self.meta();
        if let Some(entry) = &audit {
            let (store, entry) = (state.store.clone(), entry.clone());
            meta.gate = Some(crate::commands::Gate::new(move || {
                let (store, entry) = (store.clone(), entry.clone());
                Box::pin(async move {
                    crate::security_log::record(&*store, entry).await.map(drop).map_err(|e| match e {
                        // A full disk is said as such (503 storage_full), not as an audit failure.
                        crate::store::StoreError::StorageFull(_) => CommandError::Store(e),
                        e => CommandError::Gate(e.to_string()),
                    })
                })
            }));
        }
        let gate = meta.gate.clone();
        let executed = match command(meta).await {
            Ok(done) => done,
            Err(e) => {
                state.metrics.command(false);
                let error = ApiError::from_command(e, self.if_match.0.is_some());
                // Refused before anything was recorded: record the refusal (best effort; nothing
                // happened either way).
                if let Some(mut entry) = audit
                    && !gate.as_ref().is_some_and(crate::commands::Gate::passed)
                {
                    entry.result = if error.status.is_client_error() {
                        crate::security_log::REFUSED
                    } else {
                        crate::security_log::FAILURE
                    };
                    entry.detail = format!("{} {}", entry.detail, error.code).trim().to_owned();
                    crate::api::auth::audit_after(state, entry).await;
                }
                return Err(error);
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
            let stored = answer.stored(fingerprint);
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = state.server.replies.save_reply(tenant.as_str(), key, &stored, now).await {
                // The store still deduplicates a retry (nothing is appended twice); it is then
                // answered from the current state instead of with this answer.
                tracing::warn!(error = %e, "cannot store the idempotent reply");
            }
        }
        let position = match executed.outcome.last_position {
            0 => state.live.position(),
            p => p,
        };
        Ok(answer.into_response(executed.outcome.deduplicated, position))
    }
}

#[cfg(test)]
mod tests {
    //! The write helper in-process, with a throw-away endpoint and no log follower, so that only
    //! [`Write::run`] can bring the read model up to date.
    use super::*;
    use crate::api::error::extractor_configs;
    use actix_web::{App, test, web};
    use ducha_events::api::AddCommunityRequest;
    use ducha_events::ids::{CommunityId, DistrictId};
    use ducha_events::tenant::TenantCommand;

    async fn add_community(
        state: web::Data<AppState>,
        write: Write,
        body: web::Json<AddCommunityRequest>,
    ) -> Result<HttpResponse, ApiError> {
        let body = body.into_inner();
        let (store, cmd) = (state.store.clone(), body.clone());
        let tenant = TenantId::parse("xxjd").unwrap();
        let t = tenant.clone();
        write
            .run(
                &state,
                &tenant,
                &body,
                move |meta| async move {
                    let d = DistrictId::parse("xxq").unwrap();
                    let cmd = TenantCommand::AddCommunity { community_id: cmd.community_id, name: cmd.name };
                    crate::commands::tenant(&*store, &meta, &d, &t, cmd).await
                },
                |done| {
                    Reply::created(json_id(&body.community_id), format!("/communities/{}", body.community_id))
                        .version(done.outcome.stream_version)
                },
            )
            .await
    }

    fn json_id(id: &CommunityId) -> serde_json::Value {
        serde_json::json!({ "community_id": id })
    }

    #[actix_web::test]
    async fn replays_refuses_stale_versions_and_reads_its_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let bearer = demo.bearer("xx-admin").await;
        let (state, store) = (demo.state.clone(), demo.store.clone());
        let (events, live) = (state.store.clone(), state.live.clone());
        let (json, ..) = extractor_configs(4096);
        let app = test::init_service(
            App::new().app_data(web::Data::new(state)).app_data(json).route("/c", web::post().to(add_community)),
        )
        .await;
        let post = |body: serde_json::Value, headers: Vec<(&'static str, String)>| {
            let mut req = test::TestRequest::post().uri("/c").insert_header(("authorization", bearer.clone()));
            for h in headers {
                req = req.insert_header(h);
            }
            req.set_json(body).to_request()
        };
        let community = |id: &str| serde_json::json!({ "community_id": id, "name": format!("{id}社区") });
        let key = || vec![("idempotency-key", "k-1".to_owned())];

        // First write: 201 with ETag, and the read model already shows it.
        let res = test::call_service(&app, post(community("xinhua"), key())).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let etag = res.headers().get("etag").unwrap().to_str().unwrap().to_owned();
        assert!(res.headers().get("idempotent-replayed").is_none());
        let first: serde_json::Value = test::read_body_json(res).await;
        let xxjd = TenantId::parse("xxjd").unwrap();
        let has = |id: &str| {
            live.read().directory().tenant(&xxjd).unwrap().communities.iter().any(|c| c.community_id.as_str() == id)
        };
        assert!(has("xinhua"), "read-your-writes");
        let head = events.head().await.unwrap();

        // The retry gets the first answer and appends nothing.
        let res = test::call_service(&app, post(community("xinhua"), key())).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers().get("etag").unwrap().to_str().unwrap(), etag);
        assert_eq!(res.headers().get("idempotent-replayed").unwrap(), "true");
        let again: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(again, first);
        assert_eq!(events.head().await.unwrap(), head);

        // The same key for another request is refused.
        let res = test::call_service(&app, post(community("other"), key())).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!has("other"));

        // A stale If-Match: 412 with the current version; nothing written.
        let version: u64 = etag.trim_matches('"').parse().unwrap();
        let res = test::call_service(&app, post(community("jiefang"), vec![("if-match", "\"1\"".into())])).await;
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
        let problem: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(problem["current_version"], version);
        assert_eq!(problem["code"], "version_mismatch");
        assert!(!has("jiefang"));
        // The current version: accepted, and the ETag moves on.
        let res =
            test::call_service(&app, post(community("jiefang"), vec![("if-match", format!("W/\"{version}\""))])).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers().get("etag").unwrap().to_str().unwrap(), format!("\"{}\"", version + 1));
        assert!(has("jiefang"));

        // Without a key, a duplicate is the domain's 409; a malformed If-Match is 400.
        let res = test::call_service(&app, post(community("xinhua"), vec![])).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = test::call_service(&app, post(community("x2"), vec![("if-match", "\"abc\"".into())])).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = test::call_service(&app, post(community("x2"), vec![("idempotency-key", "has space".into())])).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        store.close().await;
    }
}
