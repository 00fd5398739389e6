//! `GET /districts/{district_id}/rollup` and `GET /districts/{district_id}/rankings`: the district's
//! view (区委宣传部) of its sub-districts, as JSON or — with `Accept: text/csv` — as a CSV table that
//! Excel opens correctly (UTF-8 with a byte-order mark).
//!
//! Only callers whose grants cover the district read it (district officers and auditors of that
//! district, platform staff); a sub-district's own users get 403 and use their tenant's dashboard.

use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::ledger::{enum_param, year_param};
use crate::api::state::{AppState, LiveModel};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::NaiveDate;
use ducha_events::authz::{Action, Target, authorize};
use ducha_events::ids::DistrictId;
use ducha_events::ids::TenantId;
use ducha_events::projection::{
    DistrictRollup, RankEntry, ReadModel, RectificationStatus, RollupMetrics, RollupQuery, TenantRollup, WarningPolicy,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(district_rollup).service(district_rankings);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistrictPath {
    /// The district (区) id, e.g. `xxq`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub district_id: DistrictId,
}

/// Which breakdown a CSV roll-up lists (one table per file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row per sub-district, then the district's total.
    #[default]
    Subdistrict,
    /// One row per finding category.
    Category,
    /// One row per month (Asia/Shanghai): findings recorded, rectifications verified.
    Month,
    /// One row per community of every sub-district (全街道 rows for cross-cutting findings).
    Community,
}

impl GroupBy {
    fn code(self) -> &'static str {
        match self {
            GroupBy::Subdistrict => "subdistrict",
            GroupBy::Category => "category",
            GroupBy::Month => "month",
            GroupBy::Community => "community",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RollupParams {
    /// Only inspections planned for this year (and the findings they recorded).
    #[param(value_type = Option<i32>, minimum = 1000, maximum = 9999, example = 2023)]
    pub year: Option<String>,
    /// The breakdown of the CSV form (default `subdistrict`). The JSON form always carries every
    /// breakdown (`rows`, `by_category`, `by_month`, `by_community`, `by_year`) and the rankings.
    #[param(value_type = Option<GroupBy>, inline)]
    pub group_by: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub as_of: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub at_position: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RankingParams {
    /// Only inspections planned for this year (and the findings they recorded).
    #[param(value_type = Option<i32>, minimum = 1000, maximum = 9999, example = 2023)]
    pub year: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub as_of: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub at_position: Option<String>,
}

/// The sub-districts of a district ranked two ways. Ties share a rank (1, 1, 3); sub-districts
/// without a value come last, unranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DistrictRankings {
    #[schema(value_type = String)]
    pub district_id: DistrictId,
    pub district_name: String,
    pub year: Option<i32>,
    /// The date warning levels and overdue counts were computed on (Asia/Shanghai).
    pub today: NaiveDate,
    /// By checklist score: the mean community score over concluded inspections, highest first.
    pub by_score: Vec<RankEntry>,
    /// By completion: verified ÷ assigned rectifications in percent, highest first.
    pub by_completion: Vec<RankEntry>,
}

/// The district roll-up: every sub-district side by side (inspections, communities covered,
/// achievements, findings by category and status, completion rate, overdue, warning levels,
/// average score), the district's totals, breakdowns by year, month, category and community, and
/// the rankings.
///
/// With `Accept: text/csv` the `group_by` breakdown comes as CSV (UTF-8 with BOM, a Chinese header
/// row). With `as_of` or `at_position` the numbers are those of that point.
#[utoipa::path(
    tag = "districts",
    params(DistrictPath, RollupParams, AsOfParams),
    responses(
        (status = 200, description = "区级汇总 / the district roll-up",
         content((DistrictRollup = "application/json"), (String = "text/csv")),
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
        (status = 406, description = "只能提供 JSON 或 CSV / only JSON and CSV are offered",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/districts/{district_id}/rollup")]
pub async fn district_rollup(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<DistrictPath>,
    query: web::Query<RollupParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let district = path.into_inner().district_id;
    district_access(&state, &who, &district)?;
    let year = year_param(query.year.as_deref())?;
    let group_by: GroupBy =
        enum_param(query.group_by.as_deref(), "group_by", "subdistrict, category, month, community")?
            .unwrap_or_default();
    let format = Format::negotiate(&req)?;
    let (cached, position) = compute(&state, &as_of, &district, year, &state.policy).await?;
    match format {
        Format::Json => {
            let mut ok = HttpResponse::Ok();
            ok.insert_header(("x-ducha-position", position))
                .insert_header((header::VARY, "Accept, Accept-Encoding"))
                .content_type("application/json");
            if accepts_gzip(&req) {
                ok.insert_header((header::CONTENT_ENCODING, "gzip"));
                return Ok(ok.body(cached.gzip()?));
            }
            Ok(ok.body(cached.json()?))
        }
        Format::Csv => {
            let name = file_name(&district, year, group_by.code());
            csv_response(rollup_csv(&cached.rollup, group_by)?, &name, position)
        }
    }
}

/// The sub-districts of a district ranked by checklist score and by rectification completion.
///
/// With `Accept: text/csv` the same as a CSV table (UTF-8 with BOM). With `as_of` or `at_position`
/// the ranking of that point.
#[utoipa::path(
    tag = "districts",
    params(DistrictPath, RankingParams, AsOfParams),
    responses(
        (status = 200, description = "街道排名 / sub-district rankings",
         content((DistrictRankings = "application/json"), (String = "text/csv")),
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
        (status = 406, description = "只能提供 JSON 或 CSV / only JSON and CSV are offered",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/districts/{district_id}/rankings")]
pub async fn district_rankings(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<DistrictPath>,
    query: web::Query<RankingParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let district = path.into_inner().district_id;
    district_access(&state, &who, &district)?;
    let year = year_param(query.year.as_deref())?;
    let format = Format::negotiate(&req)?;
    let (cached, position) = compute(&state, &as_of, &district, year, &state.policy).await?;
    let r = &cached.rollup;
    let body = DistrictRankings {
        district_id: r.district_id.clone(),
        district_name: r.district_name.clone(),
        year: r.year,
        today: r.today,
        by_score: r.ranking_by_score.clone(),
        by_completion: r.ranking_by_completion.clone(),
    };
    match format {
        Format::Json => Ok(json(body, position)),
        Format::Csv => csv_response(rankings_csv(&body)?, &file_name(&district, year, "rankings"), position),
    }
}

/// 403 unless the caller's grants cover the district; then 404 for an unknown district.
fn district_access(state: &AppState, who: &Authenticated, district: &DistrictId) -> Result<(), ApiError> {
    authorize(&who.actor, Action::Read, &Target::district(district))?;
    if state.live.read().directory().district(district).is_none() {
        return Err(ApiError::not_found("该区", "district"));
    }
    Ok(())
}

/// Roll-ups of the live model, memoised per district, year and "today", each with its JSON (and
/// that JSON gzipped, for clients that accept it), until the log position moves on (any new event
/// invalidates them). A district officer's dashboard reads the same roll-up again and again between
/// writes. Under it, each sub-district's part ([`TenantRollup`]) is kept while the sub-district's
/// version stands, so after a write only the parts of the sub-districts that changed are computed
/// again (a district of 1,000 sub-districts would otherwise read every finding of all of them on
/// each new position). As-of reads are not cached (they fold a prefix of the log anyway).
#[derive(Default)]
pub struct RollupCache {
    entries: Mutex<HashMap<RollupKey, CachedRollup>>,
    parts: Mutex<HashMap<PartKey, KeptPart>>,
    /// Held while a roll-up missing from `entries` is assembled: the requests that arrive
    /// meanwhile for the same position wait and share it (and its JSON and gzip) instead of each
    /// assembling, serialising and compressing its own copy — 2.7 MB of JSON at 1,000
    /// sub-districts, for every request that came in after a write.
    building: Mutex<()>,
    /// Roll-ups assembled (not served from `entries`), for the tests.
    assembled: std::sync::atomic::AtomicU64,
}

type RollupKey = (DistrictId, Option<i32>, NaiveDate);
/// One part per sub-district and year filter: a part for another day replaces it (the live
/// roll-up is always "today"), so the parts of past days do not pile up.
type PartKey = (TenantId, Option<i32>);

/// A sub-district's part with what it was computed from: the live model's generation (it starts
/// over after an erasure), the tenant's `ReadModel::rollup_version` and the day.
struct KeptPart {
    generation: u64,
    version: (u64, u64),
    today: NaiveDate,
    part: Arc<TenantRollup>,
}

/// A roll-up with its JSON and gzip, each made once by the first request that needs it (the
/// others wait for it: `OnceLock::get_or_init`).
#[derive(Clone)]
pub struct CachedRollup {
    position: u64,
    pub rollup: Arc<DistrictRollup>,
    json: Arc<OnceLock<Result<web::Bytes, String>>>,
    gzip: Arc<OnceLock<Result<web::Bytes, String>>>,
}

impl CachedRollup {
    fn new(position: u64, rollup: DistrictRollup) -> CachedRollup {
        CachedRollup { position, rollup: Arc::new(rollup), json: Arc::default(), gzip: Arc::default() }
    }

    /// The roll-up as JSON, serialised once per cached value.
    fn json(&self) -> Result<web::Bytes, ApiError> {
        self.json
            .get_or_init(|| {
                serde_json::to_vec(&*self.rollup).map(web::Bytes::from).map_err(|e| format!("roll-up to JSON: {e}"))
            })
            .clone()
            .map_err(ApiError::internal)
    }

    /// The JSON gzipped, once per cached value: a district of 1,000 sub-districts is about 2.7 MB
    /// of JSON (mostly the community rows), and copying that for each request is what bounds the
    /// roll-up's rate; gzipped it is a tenth of that or less.
    fn gzip(&self) -> Result<web::Bytes, ApiError> {
        let json = self.json()?;
        self.gzip
            .get_or_init(|| gzip(&json).map(web::Bytes::from).map_err(|e| format!("gzip the roll-up: {e}")))
            .clone()
            .map_err(ApiError::internal)
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut out = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    out.write_all(bytes)?;
    out.finish()
}

/// Whether `Accept-Encoding` admits gzip (named or `*`, with a `q` above 0; a `gzip;q=0` refuses
/// it even when `*` is there).
fn accepts_gzip(req: &HttpRequest) -> bool {
    let mut named = None;
    let mut any = None;
    for value in req.headers().get_all(header::ACCEPT_ENCODING).filter_map(|v| v.to_str().ok()) {
        for coding in value.split(',') {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q = q_value(parts);
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                named = Some(q > 0.0);
            } else if name == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    named.or(any).unwrap_or(false)
}

/// At most this many roll-ups are kept (districts × years × days); beyond it the cache starts over.
const CACHE_ENTRIES: usize = 512;
/// At most this many sub-district parts (sub-districts × year filters).
const CACHE_PARTS: usize = 50_000;

impl RollupCache {
    fn get(&self, key: &RollupKey, position: u64) -> Option<CachedRollup> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|c| c.position == position).cloned()
    }

    fn put(&self, key: RollupKey, value: CachedRollup) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, value);
    }

    /// The live roll-up: the cached one at the model's position, or assembled once for all the
    /// requests that ask for it at the same time. CPU-bound: call it on a blocking thread.
    fn current(&self, live: &LiveModel, key: RollupKey, policy: &WarningPolicy) -> CachedRollup {
        if let Some(hit) = self.get(&key, live.position()) {
            return hit;
        }
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        // Assembled by the request this one waited for.
        if let Some(hit) = self.get(&key, live.position()) {
            return hit;
        }
        let (district, year, today) = &key;
        let (rollup, _, position) = self.assemble(live, district, &RollupQuery { year: *year }, *today, policy);
        self.assembled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = CachedRollup::new(position, rollup);
        self.put(key, value.clone());
        value
    }

    /// The roll-up of the live model, from the kept parts of the sub-districts whose version
    /// stands and fresh parts of the others. Returns it, how many parts were computed and the
    /// position it is the roll-up at.
    ///
    /// The fresh parts are computed without the model's lock, on every core, from what the
    /// sub-districts were when it was looked at (`ReadModel::rollup_source`, shared, not copied):
    /// after a start or on a new day a district of 1,000 sub-districts, packed, takes seconds, and
    /// the fold (and so every write waiting to read its own result) would wait for all of it.
    fn assemble(
        &self,
        live: &LiveModel,
        district: &DistrictId,
        query: &RollupQuery,
        today: NaiveDate,
        policy: &WarningPolicy,
    ) -> (DistrictRollup, usize, u64) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // One computation at a time: concurrent requests after a write wait for the parts the
            // first one computes instead of computing them again.
            let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
            // The platform's events move every part's version: should they keep coming, the third
            // attempt holds the lock throughout, as it always did.
            if attempt > 2 {
                let model = live.read();
                let (rollup, fresh) =
                    self.assemble_under(&model, live.generation(), &mut parts, district, query, today, policy);
                return (rollup, fresh, model.position());
            }
            let (position, generation, platform, mut chosen, todo) = {
                let model = live.read();
                let generation = live.generation();
                let mut chosen: Vec<Option<Arc<TenantRollup>>> = Vec::new();
                let mut todo = Vec::new();
                for (i, tenant) in model.rollup_tenants(district).enumerate() {
                    let version = model.rollup_version(tenant);
                    match parts.get(&(tenant.clone(), query.year)) {
                        Some(k) if k.generation == generation && k.version == version && k.today == today => {
                            chosen.push(Some(k.part.clone()))
                        }
                        _ => {
                            chosen.push(None);
                            todo.push((i, tenant.clone(), version, model.rollup_source(tenant)));
                        }
                    }
                }
                let platform = model.audit_log().last_position(&TenantId::platform());
                (model.position(), generation, platform, chosen, todo)
            };
            let fresh = crate::model_checkpoint::par_map(&todo, |(_, _, _, source)| {
                Arc::new(source.part(query, today, policy))
            });
            for ((i, tenant, version, _), part) in todo.iter().zip(fresh) {
                let key = (tenant.clone(), query.year);
                if parts.len() >= CACHE_PARTS && !parts.contains_key(&key) {
                    parts.clear();
                }
                parts.insert(key, KeptPart { generation, version: *version, today, part: part.clone() });
                chosen[*i] = Some(part);
            }
            drop(parts);
            // Put together under the lock again, with the directory the parts were chosen by: if
            // the platform's events (districts, sub-districts, names) or the generation moved
            // meanwhile, look again (the parts computed are kept).
            let model = live.read();
            if model.audit_log().last_position(&TenantId::platform()) != platform || live.generation() != generation {
                continue;
            }
            let chosen: Vec<Arc<TenantRollup>> = chosen.into_iter().flatten().collect();
            let rollup = model.rollup_from_parts(district, query, today, chosen.iter().map(|p| &**p));
            return (rollup, todo.len(), position);
        }
    }

    /// [`Self::assemble`] with the model's lock held throughout.
    #[allow(clippy::too_many_arguments)]
    fn assemble_under(
        &self,
        model: &ReadModel,
        generation: u64,
        parts: &mut HashMap<PartKey, KeptPart>,
        district: &DistrictId,
        query: &RollupQuery,
        today: NaiveDate,
        policy: &WarningPolicy,
    ) -> (DistrictRollup, usize) {
        let mut fresh = 0;
        let mut chosen = Vec::new();
        for tenant in model.rollup_tenants(district) {
            let version = model.rollup_version(tenant);
            let key = (tenant.clone(), query.year);
            match parts.get(&key) {
                Some(k) if k.generation == generation && k.version == version && k.today == today => {
                    chosen.push(k.part.clone())
                }
                _ => {
                    fresh += 1;
                    let part = Arc::new(model.rollup_part(tenant, query, today, policy));
                    if parts.len() >= CACHE_PARTS && !parts.contains_key(&key) {
                        parts.clear();
                    }
                    parts.insert(key, KeptPart { generation, version, today, part: part.clone() });
                    chosen.push(part);
                }
            }
        }
        (model.rollup_from_parts(district, query, today, chosen.iter().map(|p| &**p)), fresh)
    }
}

async fn compute(
    state: &AppState,
    as_of: &AsOf,
    district: &DistrictId,
    year: Option<i32>,
    policy: &WarningPolicy,
) -> Result<(CachedRollup, u64), ApiError> {
    if as_of.is_now() {
        let key = (district.clone(), year, as_of.today);
        let (rollups, live, policy) = (state.rollups.clone(), state.live.clone(), *policy);
        // Off the server's workers: a roll-up whose parts must be computed again can take seconds.
        let value = web::block(move || rollups.current(&live, key, &policy))
            .await
            .map_err(|e| ApiError::internal(format!("roll-up stopped: {e}")))?;
        let position = value.position;
        return Ok((value, position));
    }
    let view = state.view(as_of, None).await?;
    let body = view.rollup(district, &RollupQuery { year }, as_of.today, policy);
    let position = view.position();
    Ok((CachedRollup::new(position, body), position))
}

fn json(body: impl Serialize, position: u64) -> HttpResponse {
    HttpResponse::Ok().insert_header(("x-ducha-position", position)).insert_header((header::VARY, "Accept")).json(body)
}

// ------------------------------------------------------------------ content negotiation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

impl Format {
    /// JSON unless `Accept` prefers `text/csv`; 406 when it accepts neither.
    fn negotiate(req: &HttpRequest) -> Result<Format, ApiError> {
        let accept: Vec<&str> =
            req.headers().get_all(header::ACCEPT).filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        if accept.is_empty() {
            return Ok(Format::Json);
        }
        Format::choose(&accept.join(","))
    }

    fn choose(accept: &str) -> Result<Format, ApiError> {
        let (json, json_exact) = quality(accept, "application", "json");
        let (csv, csv_exact) = quality(accept, "text", "csv");
        if json <= 0.0 && csv <= 0.0 {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                "只能提供 application/json 或 text/csv 格式",
                "only application/json and text/csv are offered",
            )
            .with_field("Accept"));
        }
        Ok(if csv > json || (csv == json && csv_exact && !json_exact) { Format::Csv } else { Format::Json })
    }
}

/// The `q` of one element of an `Accept` or `Accept-Encoding` list, from its parameters: 1 when
/// absent, 0 when unreadable or out of 0..=1 (refused rather than guessed).
fn q_value<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
        .map_or(1.0, |(_, v)| v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0))
}

/// The `q` of the most specific media range in `accept` that matches `kind/sub`, and whether that
/// range names the type exactly.
fn quality(accept: &str, kind: &str, sub: &str) -> (f32, bool) {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let Some((t, s)) = media.split_once('/') else { continue };
        let specificity = if t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) {
            2
        } else if t.eq_ignore_ascii_case(kind) && s == "*" {
            1
        } else if t == "*" && s == "*" {
            0
        } else {
            continue;
        };
        let q = q_value(parts);
        if best.is_none_or(|(b, _)| specificity > b) {
            best = Some((specificity, q));
        }
    }
    best.map_or((0.0, false), |(s, q)| (q, s == 2))
}

// ------------------------------------------------------------------ CSV

/// `rollup-xxq-2023-subdistrict.csv` (ids are ASCII, so the name needs no encoding).
fn file_name(district: &DistrictId, year: Option<i32>, what: &str) -> String {
    match year {
        Some(y) => format!("rollup-{district}-{y}-{what}.csv"),
        None => format!("rollup-{district}-{what}.csv"),
    }
}

fn csv_response(bytes: Vec<u8>, file_name: &str, position: u64) -> Result<HttpResponse, ApiError> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .map_err(|e| ApiError::internal(format!("file name header: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::VARY, "Accept"))
        .insert_header(("x-ducha-position", position))
        .body(bytes))
}

/// Writes rows after a UTF-8 byte-order mark (without it Excel reads the Chinese as GBK), lines
/// ending in CRLF (RFC 4180).
fn write_csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<u8>, ApiError> {
    let fail = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer("\u{feff}".as_bytes().to_vec());
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(&row).map_err(fail)?;
    }
    w.into_inner().map_err(|e| ApiError::internal(format!("writing CSV: {e}")))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

const SUBDISTRICT_HEAD: [&str; 6] = ["街道编号", "街道", "督查次数", "覆盖社区数", "主要工作成效", "问题总数"];
const SUBDISTRICT_TAIL: [&str; 8] = ["整改完成率(%)", "超期", "红灯", "黄灯", "蓝灯", "绿灯", "平均得分", "计分次数"];

fn metrics_cells(id: &str, name: &str, m: &RollupMetrics) -> Vec<String> {
    let mut cells = vec![
        id.to_owned(),
        name.to_owned(),
        m.inspections.to_string(),
        m.communities_covered.to_string(),
        m.achievements.to_string(),
        m.findings.to_string(),
    ];
    for status in RectificationStatus::ALL {
        let n = m.rectifications_by_status.iter().find(|s| s.status == status).map_or(0, |s| s.count);
        cells.push(n.to_string());
    }
    cells.extend([
        opt(m.completion_rate.percent),
        m.overdue.to_string(),
        m.warnings.red.to_string(),
        m.warnings.yellow.to_string(),
        m.warnings.blue.to_string(),
        m.warnings.green.to_string(),
        opt(m.average_score),
        m.scores_counted.to_string(),
    ]);
    cells
}

/// The CSV table of one breakdown of the roll-up.
pub fn rollup_csv(r: &DistrictRollup, group_by: GroupBy) -> Result<Vec<u8>, ApiError> {
    match group_by {
        GroupBy::Subdistrict => {
            let mut header: Vec<&str> = SUBDISTRICT_HEAD.to_vec();
            header.extend(RectificationStatus::ALL.iter().map(|s| s.name_zh()));
            header.extend(SUBDISTRICT_TAIL);
            let rows = r.rows.iter().map(|s| metrics_cells(s.tenant_id.as_str(), &s.name, &s.metrics));
            write_csv(&header, rows.chain([metrics_cells("", "合计", &r.totals)]))
        }
        GroupBy::Category => write_csv(
            &["类别编号", "问题类别", "问题数", "未销号", "已销号", "超期"],
            r.by_category.iter().map(|c| {
                vec![
                    c.code.clone(),
                    c.name.clone(),
                    c.findings.to_string(),
                    c.open.to_string(),
                    c.verified.to_string(),
                    c.overdue.to_string(),
                ]
            }),
        ),
        GroupBy::Month => write_csv(
            &["月份", "新增问题", "销号"],
            r.by_month
                .iter()
                .map(|m| vec![m.month.clone(), m.findings_recorded.to_string(), m.rectifications_verified.to_string()]),
        ),
        GroupBy::Community => write_csv(
            &["街道编号", "街道", "社区编号", "社区", "问题数", "未销号", "超期", "已销号", "平均得分"],
            r.by_community.iter().map(|c| {
                vec![
                    c.tenant_id.to_string(),
                    c.tenant_name.clone(),
                    opt(c.community.community_id.as_ref()),
                    c.community.name.clone(),
                    c.findings.to_string(),
                    c.open.to_string(),
                    c.overdue.to_string(),
                    c.verified.to_string(),
                    opt(c.average_score),
                ]
            }),
        ),
    }
}

/// The rankings as one CSV table: both rankings, one after the other.
pub fn rankings_csv(r: &DistrictRankings) -> Result<Vec<u8>, ApiError> {
    let rows = |by: &'static str, entries: &[RankEntry]| {
        entries
            .iter()
            .map(|e| vec![by.to_owned(), opt(e.rank), e.tenant_id.to_string(), e.name.clone(), opt(e.value)])
            .collect::<Vec<_>>()
    };
    let mut all = rows("平均得分", &r.by_score);
    all.extend(rows("整改完成率(%)", &r.by_completion));
    write_csv(&["排名依据", "名次", "街道编号", "街道", "数值"], all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let f = |a: &str| Format::choose(a).map_err(|e| e.status.as_u16());
        assert_eq!(f("text/csv"), Ok(Format::Csv));
        assert_eq!(f("text/csv; charset=utf-8"), Ok(Format::Csv));
        assert_eq!(f("application/json"), Ok(Format::Json));
        assert_eq!(f("*/*"), Ok(Format::Json));
        assert_eq!(f("text/csv, */*;q=0.1"), Ok(Format::Csv));
        assert_eq!(f("text/csv, */*"), Ok(Format::Csv));
        assert_eq!(f("application/json, text/csv"), Ok(Format::Json));
        assert_eq!(f("application/json;q=0.5, text/csv"), Ok(Format::Csv));
        assert_eq!(f("text/*"), Ok(Format::Csv));
        assert_eq!(f("text/html,application/xhtml+xml,*/*;q=0.8"), Ok(Format::Json));
        assert_eq!(f("text/html"), Err(406));
        assert_eq!(f("text/csv;q=0, application/json;q=0"), Err(406));
        assert_eq!(f("garbage"), Err(406));
    }

    /// A sub-district's kept part is used again until its version, the day or the model's
    /// generation changes; parts of another day replace it rather than pile up.
    #[actix_web::test]
    async fn kept_parts_are_reused_until_their_tenant_the_day_or_the_generation_changes() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let cache = RollupCache::default();
        let (d, q, p) = (DistrictId::parse("xxq").unwrap(), RollupQuery::default(), WarningPolicy::default());
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let live = &demo.state.live;
        let model = live.read();
        let n = model.rollup_tenants(&d).count();
        assert!(n >= 3);
        drop(model);
        let (first, fresh, position) = cache.assemble(live, &d, &q, day, &p);
        assert_eq!((fresh, position), (n, live.position()));
        assert_eq!(first, live.read().rollup(&d, &q, day, &p));
        let (again, fresh, _) = cache.assemble(live, &d, &q, day, &p);
        assert_eq!((fresh, &again), (0, &first));
        let next = day.succ_opt().unwrap();
        let (later, fresh, _) = cache.assemble(live, &d, &q, next, &p);
        assert_eq!(fresh, n, "a new day");
        assert_eq!(later, live.read().rollup(&d, &q, next, &p));
        live.bump_generation();
        let (_, fresh, _) = cache.assemble(live, &d, &q, next, &p);
        assert_eq!(fresh, n, "a new generation");
        // The same under the lock throughout (what a third attempt does).
        let mut parts = HashMap::new();
        let model = live.read();
        let (under, fresh) = cache.assemble_under(&model, live.generation(), &mut parts, &d, &q, next, &p);
        assert_eq!((under, fresh, parts.len()), (later, n, n));
        drop(model);
        assert_eq!(cache.parts.lock().unwrap().len(), n, "one part per sub-district and year filter");
    }

    /// Requests that arrive together at a new position share one roll-up: one assembly, one
    /// JSON, one gzip (each of them waited for the first instead of making its own).
    #[actix_web::test]
    async fn requests_at_the_same_position_share_one_rollup_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let cache = RollupCache::default();
        let (d, p) = (DistrictId::parse("xxq").unwrap(), WarningPolicy::default());
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let live = &demo.state.live;
        let start = std::sync::Barrier::new(8);
        let got: Vec<(CachedRollup, web::Bytes, web::Bytes)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let c = cache.current(live, (d.clone(), None, day), &p);
                        let (json, gzip) = (c.json().unwrap(), c.gzip().unwrap());
                        (c, json, gzip)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(cache.assembled.load(std::sync::atomic::Ordering::Relaxed), 1);
        let (first, json, gzip) = &got[0];
        assert_eq!(*first.rollup, live.read().rollup(&d, &RollupQuery::default(), day, &p));
        for (c, j, g) in &got {
            assert!(Arc::ptr_eq(&c.rollup, &first.rollup));
            // The same bytes, not equal copies.
            assert_eq!((j.as_ptr(), g.as_ptr()), (json.as_ptr(), gzip.as_ptr()));
        }
        // Another year filter is another roll-up.
        cache.current(live, (d.clone(), Some(2023), day), &p);
        assert_eq!(cache.assembled.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn csv_starts_with_a_bom_and_quotes_what_needs_it() {
        let bytes = write_csv(&["街道", "备注"], [vec!["XX街道".to_owned(), "a,\"b\"".to_owned()]]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text, "\u{feff}街道,备注\r\nXX街道,\"a,\"\"b\"\"\"\r\n");
    }
}
