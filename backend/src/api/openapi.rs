//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` annotations of the handlers as they
//! are registered (utoipa-actix-web collects them); [`finalize`] then makes the contract uniform, so
//! no endpoint can forget it:
//!
//! - every operation without its own `security` requires the bearer token (public ones say
//!   `security(())`), and gets 401 and 403 problem responses;
//! - every operation gets 400 and 500; those with path parameters 404; those with a body 413, 415
//!   and 422; every authenticated write (POST/PUT/PATCH/DELETE outside `/auth/`) the `If-Match` and
//!   `Idempotency-Key` headers and 409, 412 and 422;
//! - all of them are `application/problem+json` with the `Problem` schema;
//! - every `201 Created` answer links (OpenAPI `links`) to the operations on what it created: the
//!   resource's own path and everything under it, with the new id from `$response.body#/id` and
//!   the rest of the path from the request, so stateful clients and testers (schemathesis'
//!   stateful phase in CI) can follow create → read → act.

use crate::api::error::{PROBLEM_JSON, Problem};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};

pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ducha 督查 API",
        description = "街道意识形态工作责任制督查系统的 REST API。错误一律为 RFC 9457 application/problem+json；\
写操作支持 If-Match（乐观并发）与 Idempotency-Key（幂等重试）；读操作支持 as_of / at_position（历史视图）。\
详见仓库中的 docs/API.md。\n\nThe REST API of Ducha. Errors are RFC 9457 problem+json; writes take If-Match and \
Idempotency-Key; reads take as_of / at_position. See docs/API.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem)),
    tags(
        (name = "auth", description = "登录、退出、当前用户 / login, logout, the current user"),
        (name = "dashboard", description = "街道首页统计 / tenant dashboards"),
        (name = "ops", description = "健康检查与监控 / health and metrics"),
        (name = "platform", description = "区与街道（租户）/ districts and tenants (sub-districts)"),
        (name = "tenants", description = "社区、问题类别、检查清单 / communities, finding categories, checklists"),
        (name = "users", description = "用户与角色 / users and their roles"),
        (name = "inspections", description = "督查：计划、实施、评分、成效、问题、结论 / inspections"),
        (name = "findings", description = "问题与整改 / findings and their rectifications"),
        (name = "evidence", description = "佐证材料（按 SHA-256 存储）/ evidence files, stored by SHA-256"),
        (name = "self-inspections", description = "社区自查报告 / self-inspection reports"),
        (name = "ledger", description = "整改台账 / the rectification ledger"),
        (name = "scorecards", description = "社区评分 / community scorecards"),
        (name = "districts", description = "区级汇总与排名 / district roll-ups and rankings"),
        (name = "audit", description = "审计：事件日志、哈希链校验、差异 / event log, chain verification, diff"),
        (name = "live", description = "实时更新（SSE）/ live updates by server-sent events"),
        (name = "documents", description = "督查报告、整改台账、通报 / reports, ledger workbooks, circulars"),
        (name = "notifications", description = "消息中心、提醒设置、推送渠道与推送记录 / notifications, reminder settings, outbound channels, delivery log"),
    )
)]
pub struct ApiDoc;

/// Shared problem responses: (status, component name, description).
const PROBLEMS: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "请求格式错误 / malformed request, header or parameter"),
    ("401", "Unauthorized", "未登录或令牌无效 / missing, invalid, expired or revoked token"),
    ("403", "Forbidden", "没有权限 / not allowed in this scope"),
    ("404", "NotFound", "未找到 / no such resource"),
    ("409", "Conflict", "与当前状态冲突 / conflicts with the current state"),
    ("412", "PreconditionFailed", "If-Match 版本已过期 / stale If-Match; body has current_version"),
    ("413", "PayloadTooLarge", "请求内容过大 / body too large"),
    ("415", "UnsupportedMediaType", "内容类型不受支持 / wrong Content-Type"),
    ("422", "UnprocessableEntity", "请求内容有误 / invalid body or broken rule; see field"),
    ("429", "TooManyRequests", "请求过于频繁 / too many attempts; see Retry-After"),
    ("500", "InternalError", "服务器内部错误 / internal error"),
    ("503", "ServiceUnavailable", "暂不可用或尚未同步到 min_position / unavailable, or not caught up; see Retry-After"),
];

fn header_param(name: &str, description: &str, example: &str) -> RefOr<Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(RefOr::T(Schema::Object(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .examples([serde_json::Value::String(example.into())])
                    .build(),
            ))))
            .build(),
    )
}

fn query_param_u64(name: &str, description: &str) -> RefOr<Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(RefOr::T(Schema::Object(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
                    .minimum(Some(0))
                    .build(),
            ))))
            .build(),
    )
}

fn has_param(op: &Operation, name: &str) -> bool {
    op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case(name)))
}

fn add_response(op: &mut Operation, status: &str) {
    if let Some((_, name, _)) = PROBLEMS.iter().find(|(s, ..)| *s == status) {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

/// Makes the error contract, security and write headers uniform over every operation.
pub fn finalize(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    for (_, name, description) in PROBLEMS {
        let response = ResponseBuilder::new()
            .description(*description)
            .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
            .build();
        components.responses.insert((*name).to_owned(), RefOr::T(response));
    }
    for (path, item) in api.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op.as_mut() else { continue };
            let secured = op.security.is_none();
            if secured {
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                add_response(op, "401");
                add_response(op, "403");
            }
            add_response(op, "400");
            add_response(op, "500");
            if secured {
                // Read-your-writes across replicas (api::consistency): every authenticated request.
                add_response(op, "503");
                let params = op.parameters.get_or_insert_with(Vec::new);
                params.push(header_param(
                    "X-Ducha-Min-Position",
                    "先等待本节点应用到该日志位置（上次写操作响应的 X-Ducha-Position）；超时返回 503 not_caught_up / \
                     wait until this replica has applied this log position (a write's X-Ducha-Position); 503 on timeout",
                    "42",
                ));
                if method == "get" {
                    params.push(query_param_u64(
                        "min_position",
                        "同 X-Ducha-Min-Position 请求头 / the same as the X-Ducha-Min-Position header",
                    ));
                }
            }
            if path.contains('{') {
                add_response(op, "404");
            }
            if op.request_body.is_some() {
                for s in ["413", "415", "422"] {
                    add_response(op, s);
                }
            }
            // Evidence uploads are content-addressed, unlocking is not an event, and notifications,
            // their settings, channels and deliveries are server state: none has an aggregate version.
            let versioned_write = secured
                && method != "get"
                && !path.starts_with("/api/v1/auth/")
                && !path.starts_with("/api/v1/me/notifications")
                && !path.contains("/notification-")
                && !path.contains("/deliveries")
                && !path.ends_with("/evidence")
                && !path.ends_with("/unlock");
            if versioned_write {
                let params = op.parameters.get_or_insert_with(Vec::new);
                let mut wanted = Vec::new();
                if !params.iter().any(|p| matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case("If-Match"))) {
                    wanted.push(header_param(
                        "If-Match",
                        "该资源的版本（上次响应的 ETag）；版本已变化时返回 412 / the version last seen (ETag); 412 when stale",
                        "\"3\"",
                    ));
                }
                if !params.iter().any(|p| matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case("Idempotency-Key"))) {
                    wanted.push(header_param(
                        "Idempotency-Key",
                        "幂等键（1–128 个可见 ASCII 字符）；重试时返回首次结果 / 1–128 visible ASCII; a retry gets the first answer",
                        "0b6e7c1e-5d2a-4c55-9a55-3f1c2b7d9e01",
                    ));
                }
                params.extend(wanted);
                for s in ["409", "412", "422"] {
                    add_response(op, s);
                }
            }
            debug_assert!(!versioned_write || has_param(op, "If-Match"));
        }
    }
    add_links(&mut api);
    api
}

/// The `{name}` parameters of a path template, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

/// Links every `201` answer of a `POST P` to the operations on `P/{id}` and below (see the module
/// documentation). An operation is linked only when each of its path parameters is known: one of
/// the request's own, or the new id.
fn add_links(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    // (path, operation id) of every operation.
    let mut ops: Vec<(String, String)> = Vec::new();
    for (path, item) in &api.paths.paths {
        for op in [&item.get, &item.post, &item.put, &item.patch, &item.delete].into_iter().flatten() {
            if let Some(id) = &op.operation_id {
                ops.push((path.clone(), id.clone()));
            }
        }
    }
    for (path, item) in api.paths.paths.iter_mut() {
        let Some(op) = item.post.as_mut() else { continue };
        let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") else { continue };
        let own = path_params(path);
        let prefix = format!("{path}/{{");
        for (target, operation_id) in &ops {
            let Some(rest) = target.strip_prefix(&prefix) else { continue };
            let Some((new_id, _)) = rest.split_once('}') else { continue };
            let mut link = LinkBuilder::new().operation_id(operation_id.clone());
            let mut known = true;
            for p in path_params(target) {
                if p == new_id {
                    link = link.parameter(p, "$response.body#/id");
                } else if own.contains(&p) {
                    link = link.parameter(p, format!("$request.path.{p}"));
                } else {
                    known = false;
                }
            }
            if known {
                created.links.insert(operation_id.clone(), RefOr::T(link.build()));
            }
        }
    }
}
