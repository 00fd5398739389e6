//! The fuzz targets' entry points: each takes the fuzzer's bytes, hands them to the real public
//! functions that read untrusted input, and checks what must hold whatever the bytes are (no panic;
//! where something was accepted, that it reads back the same). Each answers whether the input was
//! accepted, so that `backend/tests/fuzz_seeds.rs` (which compiles this very file) can replay the
//! seed corpora in the ordinary `cargo test` and insist that the valid seeds still are.
//!
//! Input layouts (the seeds under `fuzz/corpus/<target>/` follow them):
//! - `event_decode`: `<event type>\n<schema version>\n<payload JSON>`;
//! - `jsonl_import`: an export file (`ducha export`), SHA-256 chain;
//! - `ledger_xlsx`: an XLSX workbook;
//! - `ledger_plan`: the cells of one sheet as tab-separated lines (what `ledger_xlsx` rarely reaches
//!   past the zip's checksums);
//! - `evidence_multipart`: `<Content-Type header value>\n<multipart body>`;
//! - `query_params`: a query string;
//! - `headers`: three lines, the values of `If-Match`, `Idempotency-Key` and `Authorization`;
//! - `jwt`: a bearer token, or `{header JSON}\n{claims JSON}` which is signed with the fixed key
//!   first so that the claims' checks are reached.

use chrono::NaiveDate;
use ducha::api::extract::{AsOfQuery, IdempotencyKey, IfMatch};
use ducha_events::Event;
use ducha_events::event::{CommunityAdded, FindingCategoryAdded, InspectionMethod, TenantCreated, Term};
use ducha_events::ids::{CommunityId, DistrictId, FindingId, InspectionId, TenantId};
use ducha_events::ledger_import::{Cell, Existing, ImportFile, SheetInput};
use ducha_events::tenant::TenantState;

/// `<event type>\n<schema version>\n<payload>` → [`Event::decode`] and [`ducha_events::event::upcast`].
/// An accepted payload must encode and decode back to the same event.
pub fn event_decode(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let mut parts = text.splitn(3, '\n');
    let (Some(event_type), Some(version), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(version) = version.trim().parse::<u32>() else { return false };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) {
        let _ = ducha_events::event::upcast(event_type, version, value);
    }
    match Event::decode(event_type, version, payload) {
        Ok(event) => {
            let again = Event::decode(event.event_type(), event.schema_version(), &event.payload_json());
            assert_eq!(again.as_ref().ok(), Some(&event), "an accepted event must round-trip: {payload}");
            true
        }
        Err(_) => false,
    }
}

/// An export file → [`ducha::exchange::read_export`] (what `ducha import` checks before it
/// writes anything).
pub fn jsonl_import(data: &[u8]) -> bool {
    match ducha::exchange::read_export(data, ducha_events::chain::ChainHash::Sha256) {
        Ok(events) => {
            assert!(!events.is_empty(), "an accepted export has events");
            true
        }
        Err(_) => false,
    }
}

/// The tenant imports are planned into: the sample report's six communities and five categories
/// (the demo's too).
pub fn tenant() -> TenantState {
    let id = |s: &str| s.to_owned();
    let mut events: Vec<Event> = vec![
        TenantCreated {
            tenant_id: TenantId::parse("xxjd").expect("a valid id"),
            district_id: DistrictId::parse("xxq").expect("a valid id"),
            name: "XX街道".to_owned(),
            methods: InspectionMethod::builtin_terms(),
            categories: Vec::<Term>::new(),
        }
        .into(),
    ];
    for (c, name) in [
        ("dongfeng", "东风社区"),
        ("xinhua", "新华社区"),
        ("chaoyang", "朝阳社区"),
        ("hongqi", "红旗社区"),
        ("minzhu", "民主社区"),
        ("heping", "和平社区"),
    ] {
        if let Ok(community_id) = CommunityId::parse(c) {
            events.push(CommunityAdded { community_id, name: id(name) }.into());
        }
    }
    for (code, name) in [
        ("theory", "理论学习"),
        ("self_check", "督查自查"),
        ("responsibility", "主体责任"),
        ("opinion", "舆情研判"),
        ("staffing", "队伍建设"),
    ] {
        events.push(FindingCategoryAdded { code: id(code), name: id(name) }.into());
    }
    events.iter().fold(TenantState::default(), ducha_events::tenant::evolve)
}

struct Nothing;
impl Existing for Nothing {
    fn has_inspection(&self, _: &InspectionId) -> bool {
        false
    }
    fn has_finding(&self, _: &FindingId) -> bool {
        false
    }
}

fn plan(sheets: &[SheetInput]) -> ducha_events::ledger_import::ImportPlan {
    let file = ImportFile { sha256: "ab".repeat(32), name: "台账.xlsx".to_owned() };
    let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap_or_default();
    ducha_events::ledger_import::plan(&tenant(), &Nothing, &file, sheets, None, today)
}

/// An XLSX workbook → [`ducha::ledger_import::read_xlsx`] → the planner. Accepted: read, with
/// rows planned and no problem.
pub fn ledger_xlsx(data: &[u8]) -> bool {
    match ducha::ledger_import::read_xlsx(data) {
        Ok(sheets) => {
            let p = plan(&sheets);
            p.problems.is_empty() && !p.rows.is_empty()
        }
        Err(_) => false,
    }
}

/// Tab-separated cells → the planner: a number when the cell reads as one, a date for `YYYY-MM-DD`,
/// else text. Accepted: rows planned and no problem.
pub fn ledger_plan(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let cell = |s: &str| {
        if s.is_empty() {
            Cell::Empty
        } else if let Ok(n) = s.parse::<f64>() {
            Cell::Number(n)
        } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Cell::Date(d)
        } else {
            Cell::Text(s.to_owned())
        }
    };
    let rows = text.lines().map(|l| l.split('\t').map(cell).collect()).collect();
    let p = plan(&[SheetInput { name: "整改台账".to_owned(), rows }]);
    p.problems.is_empty() && !p.rows.is_empty()
}

/// `<Content-Type>\n<body>` → actix-multipart's parser (the one the upload's form extractor runs),
/// then the upload's own checks of each part: [`ducha::api::evidence::clean_filename`],
/// [`ducha::api::evidence::accepted_type`] and [`ducha::api::evidence::looks_like`]. Accepted: a
/// part named `file` of an accepted type whose bytes look like it.
pub fn evidence_multipart(data: &[u8]) -> bool {
    use actix_web::http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
    use ducha::api::evidence::{accepted_type, clean_filename, looks_like};
    use futures_util::StreamExt;

    let Some(split) = data.iter().position(|b| *b == b'\n') else { return false };
    let Ok(content_type) = HeaderValue::from_bytes(data[..split].trim_ascii()) else { return false };
    let body = bytes::Bytes::copy_from_slice(&data[split + 1..]);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type);
    let stream = futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) });
    let mut multipart = actix_multipart::Multipart::new(&headers, stream);
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else { return false };
    runtime.block_on(async move {
        let mut accepted = false;
        while let Some(field) = multipart.next().await {
            let Ok(mut field) = field else { return false };
            let named_file = field.name() == Some("file");
            let file_name = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
            let declared = field.content_type().map(|m| m.essence_str().to_owned());
            let mut head = Vec::new();
            while let Some(chunk) = field.next().await {
                let Ok(chunk) = chunk else { return false };
                if head.len() < 8192 {
                    head.extend_from_slice(&chunk[..chunk.len().min(8192 - head.len())]);
                }
            }
            let name = clean_filename(file_name.as_deref());
            assert!(!name.is_empty() && name.chars().count() <= 255 && !name.contains(['/', '\\']), "{name:?}");
            if let Some(t) = accepted_type(declared.as_deref(), &name)
                && looks_like(t, &head)
                && named_file
            {
                accepted = true;
            }
        }
        accepted
    })
}

/// A query string → the "as of" parameters ([`AsOfQuery::parse`]), the ledger's filter and page
/// ([`ducha::api::ledger::LedgerParams::parse`]) and, for each value, the id, `year` and time
/// parsers that path and query parameters go through. Accepted: both parameter sets.
pub fn query_params(data: &[u8]) -> bool {
    let Ok(query) = std::str::from_utf8(data) else { return false };
    let as_of = AsOfQuery::parse(query);
    let ledger = actix_web::web::Query::<ducha::api::ledger::LedgerParams>::from_query(query)
        .map_err(|_| ())
        .and_then(|q| q.parse().map(|_| ()).map_err(|_| ()));
    for pair in query.split('&') {
        let value = pair.split_once('=').map_or(pair, |(_, v)| v);
        let _ = TenantId::parse(value);
        let _ = FindingId::parse(value);
        let _ = ducha::api::ledger::year_param(Some(value));
        let _ = ducha_events::time::parse(value);
        let _ = serde_json::from_value::<NaiveDate>(serde_json::Value::String(value.to_owned()));
    }
    as_of.is_ok() && ledger.is_ok()
}

/// `If-Match`, `Idempotency-Key` and `Authorization` values, one a line →
/// [`IfMatch::parse`], [`IdempotencyKey::parse`], [`ducha::api::auth::bearer_token`]. Accepted: all
/// three.
pub fn headers(data: &[u8]) -> bool {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let (if_match, key, auth) = (lines.next().unwrap_or(b""), lines.next().unwrap_or(b""), lines.next());
    let if_match = match std::str::from_utf8(if_match) {
        Ok(s) => IfMatch::parse(s),
        Err(_) => IfMatch::parse("\u{0}"),
    };
    if let Ok(IfMatch(Some(v))) = if_match {
        assert_eq!(IfMatch::parse(&format!("\"{v}\"")).ok(), Some(IfMatch(Some(v))));
    }
    let key = IdempotencyKey::parse(key);
    if let Ok(IdempotencyKey(Some(k))) = &key {
        assert!((1..=128).contains(&k.len()));
    }
    let token = auth.map(String::from_utf8_lossy).map(|a| ducha::api::auth::bearer_token(Some(&a)));
    if_match.is_ok() && key.is_ok() && token.is_some_and(|t| t.is_ok())
}

/// The fixed HS256 secret of the `jwt` target and its seeds.
pub const JWT_SECRET: &[u8] = b"ducha-fuzz-fixed-hs256-secret-0123456789";
pub const JWT_ISSUER: &str = "ducha";
pub const JWT_AUDIENCE: &str = "ducha-api";

/// A bearer token → [`ducha::auth::read_token`] with the fixed key; or `{header}\n{claims}` signed
/// with that key first. Accepted: the claims were read.
pub fn jwt(data: &[u8]) -> bool {
    use base64::Engine;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    let text = String::from_utf8_lossy(data);
    let token = match text.split_once('\n') {
        Some((header, claims)) if header.starts_with('{') => {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let message = format!("{}.{}", b64.encode(header), b64.encode(claims));
            let key = EncodingKey::from_secret(JWT_SECRET);
            match jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256) {
                Ok(signature) => format!("{message}.{signature}"),
                Err(_) => return false,
            }
        }
        _ => text.into_owned(),
    };
    let validation = ducha::auth::token_validation(Algorithm::HS256, JWT_ISSUER, JWT_AUDIENCE, 30);
    ducha::auth::read_token(&token, &DecodingKey::from_secret(JWT_SECRET), &validation).is_ok()
}
