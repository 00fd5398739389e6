//! The isolation matrix, generated from the served OpenAPI document: every operation × every demo
//! role (and no token) × own and foreign tenant / district / community gets the allow or deny that
//! the rule table of `ducha_events::authz` predicts, and a denied write appends nothing.
//!
//! A new endpoint is covered without anyone remembering: it appears in the document, and the test
//! FAILS until its line is added to [`rule`] (its `Action` and scope). Request bodies are generated
//! from the request schema (its examples first), so they deserialize and reach the authorization.
//!
//! Deny = 401/403 (404 only for a foreign tenant/district where [`Rule`] says the API hides it);
//! allow = any other status (200, 201, 404 of a missing resource, 409, 412, 422 … are "allowed, but
//! refused by a rule").

use ducha_events::authz::{Action, Actor, Grant, Role, Scope, Target, authorize, role_allows};
use ducha_events::ids::{CommunityId, DistrictId, TenantId, UserId};
use ducha_tests::{Response, Server, http};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The demo accounts of the matrix. `yy-duchazu`, `xx-duchazu2` and `zz-duchazu` are left out on
/// purpose: they are the targets of user-administration calls (disable, password, roles).
const USERS: &[&str] = &[
    "admin",
    "sysadmin",
    "secadmin",
    "audadmin",
    "qu-xcb",
    "qu-jjw",
    "xx-admin",
    "xx-duchazu1",
    "xx-dongfeng",
    "xx-jiwei",
    "yy-admin",
    "yy-chaoyang",
    "zz-admin",
];

/// The second district, created by `admin` at the start.
const OTHER_DISTRICT: &str = "wwq";

/// Where an operation's target lies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum On {
    Platform,
    District,
    /// A district's list that shows each caller the tenants of it they may read (403 when none).
    DistrictOrAnyOfItsTenants,
    Tenant,
    /// A tenant-wide list or upload that a community officer may use for their own community
    /// (the answer is filtered to it).
    TenantOrOwnCommunity,
    /// The community in the path or the body.
    Community,
    /// The finding's community (none for a cross-cutting finding).
    Finding,
    /// The self-inspection's community.
    SelfInspection,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// No token needed.
    Public,
    /// Any valid token.
    AnyUser,
    /// Only a login step's token (a bearer token no matrix user holds: denied to all, 401).
    LoginStep,
    Do(Action, On),
    /// Either action suffices (the anchors' export: platform auditors and the audit administrator).
    Either(Action, Action, On),
}

/// The mapping of every operation (method + path as in the document) to its action and scope.
fn rule(method: &str, path: &str) -> Option<Rule> {
    use Action::*;
    use On::*;
    let p = path.strip_prefix("/api/v1").unwrap_or(path);
    let r = match (method, p) {
        ("get", "/healthz" | "/readyz" | "/metrics") => Rule::Public,
        ("post", "/auth/login") => Rule::Public,
        ("post", "/auth/login/second-factor") => Rule::LoginStep,
        ("post", "/auth/logout") | ("get", "/me") => Rule::AnyUser,
        // One's own account (an access token, or the login step's token).
        ("post", "/auth/password" | "/auth/second-factor/enrol" | "/auth/second-factor/confirm")
        | ("get", "/auth/second-factor") => Rule::AnyUser,
        // The security policy and the security audit log (三员分立).
        ("get", "/security/policy") => Rule::AnyUser,
        ("post", "/security/policy") => Rule::Do(ManageSecurityPolicy, Platform),
        ("get", "/security/audit" | "/security/audit.xlsx") => Rule::Do(ReadSecurityAudit, Platform),
        ("get", "/security/personal-data" | "/security/personal-data/erasures") => {
            Rule::Either(ManageSecurityPolicy, ReadSecurityAudit, Platform)
        }
        ("post", "/security/personal-data/erasures") => Rule::Do(ManageSecurityPolicy, Platform),
        // Signed checkpoints: the public key is published; every tenant's anchors are for
        // platform-wide auditors and the audit administrator.
        ("get", "/anchors/public-key") => Rule::Public,
        ("get", "/anchors") => Rule::Either(ReadAudit, ReadSecurityAudit, Platform),
        // Platform accounts.
        ("get", "/platform/users" | "/platform/users/{user_id}") => Rule::Do(ReadDirectory, Platform),
        ("post", p) if p.starts_with("/platform/users") => Rule::Do(account_action(p), Platform),
        // Platform: districts and tenants.
        ("post", "/districts") | ("post", "/districts/{district_id}/tenants") => Rule::Do(ManagePlatform, Platform),
        ("get", "/districts") => Rule::AnyUser,
        // The directory (districts, sub-districts and their master data) is readable by the system
        // and security administrators too, who place accounts in it; business data is not.
        ("get", "/districts/{district_id}/tenants") => Rule::Do(ReadDirectory, DistrictOrAnyOfItsTenants),
        ("get", "/districts/{district_id}/rollup" | "/districts/{district_id}/rankings") => Rule::Do(Read, District),
        // District users.
        ("get", "/districts/{district_id}/users" | "/districts/{district_id}/users/{user_id}") => {
            Rule::Do(ReadDirectory, District)
        }
        ("post", p) if p.starts_with("/districts/{district_id}/users") => Rule::Do(account_action(p), District),
        // Tenant users.
        ("get", "/tenants/{tenant_id}/users" | "/tenants/{tenant_id}/users/{user_id}") => {
            Rule::Do(ReadDirectory, Tenant)
        }
        ("post", p) if p.starts_with("/tenants/{tenant_id}/users") => Rule::Do(account_action(p), Tenant),
        // Tenant master data.
        ("get", "/tenants/{tenant_id}/dashboard") => Rule::Do(Read, Tenant),
        ("get", "/tenants/{tenant_id}") => Rule::Do(ReadDirectory, Tenant),
        ("get", "/tenants/{tenant_id}/communities" | "/tenants/{tenant_id}/communities/{community_id}") => {
            Rule::Do(ReadDirectory, Tenant)
        }
        ("get", p)
            if p.starts_with("/tenants/{tenant_id}/categories")
                || p.starts_with("/tenants/{tenant_id}/checklists")
                || p.starts_with("/tenants/{tenant_id}/methods") =>
        {
            Rule::Do(ReadDirectory, Tenant)
        }
        ("post", "/tenants/{tenant_id}/communities" | "/tenants/{tenant_id}/communities/{community_id}/rename")
        | ("post", "/tenants/{tenant_id}/categories" | "/tenants/{tenant_id}/checklists") => {
            Rule::Do(ManageTenant, Tenant)
        }
        // The sub-district's vocabulary (issue 14): methods, and renaming or retiring either.
        ("post", p)
            if p.starts_with("/tenants/{tenant_id}/methods")
                || p.starts_with("/tenants/{tenant_id}/categories/{code}/") =>
        {
            Rule::Do(ManageTenant, Tenant)
        }
        // Importing an existing 整改台账 (a dry run by default).
        ("post", "/tenants/{tenant_id}/ledger/import") => Rule::Do(ManageTenant, Tenant),
        // Read models.
        ("get", "/tenants/{tenant_id}/ledger" | "/tenants/{tenant_id}/scorecards" | "/tenants/{tenant_id}/live") => {
            Rule::Do(Read, TenantOrOwnCommunity)
        }
        // Documents.
        ("get", "/tenants/{tenant_id}/inspections/{inspection_id}/report") => Rule::Do(Read, Tenant),
        ("post", "/tenants/{tenant_id}/inspections/{inspection_id}/report/issue") => Rule::Do(ManageInspection, Tenant),
        ("get", "/tenants/{tenant_id}/ledger.xlsx") => Rule::Do(Read, TenantOrOwnCommunity),
        ("get", "/districts/{district_id}/circular") => Rule::Do(Read, District),
        // Audit.
        (
            "get",
            "/tenants/{tenant_id}/events"
            | "/tenants/{tenant_id}/streams/{stream}/events"
            | "/tenants/{tenant_id}/chain"
            | "/tenants/{tenant_id}/audit"
            | "/tenants/{tenant_id}/diff",
        ) => Rule::Do(ReadAudit, Tenant),
        // Evidence.
        ("post", "/tenants/{tenant_id}/evidence") => Rule::Do(ReportProgress, TenantOrOwnCommunity),
        // The hash names no stored file, so no community officer's finding holds it: only tenant-wide
        // readers get past authorization (to a 404).
        ("get", "/tenants/{tenant_id}/evidence/{sha256}") => Rule::Do(Read, Tenant),
        // Self-inspections.
        ("post", "/tenants/{tenant_id}/self-inspections") => Rule::Do(SubmitSelfInspection, Community),
        ("get", "/tenants/{tenant_id}/self-inspections") => Rule::Do(Read, TenantOrOwnCommunity),
        ("get", "/tenants/{tenant_id}/self-inspections/{self_inspection_id}") => Rule::Do(Read, SelfInspection),
        ("get", "/tenants/{tenant_id}/self-inspections/{self_inspection_id}/document") => {
            Rule::Do(Read, SelfInspection)
        }
        // Inspections.
        ("get", "/tenants/{tenant_id}/inspections" | "/tenants/{tenant_id}/inspections/{inspection_id}") => {
            Rule::Do(Read, Tenant)
        }
        ("post", "/tenants/{tenant_id}/inspections") => Rule::Do(ManageInspection, Tenant),
        (
            "post",
            "/tenants/{tenant_id}/inspections/{inspection_id}/scope"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/team"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/start"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/conclude"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/conclusion"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/reports",
        ) => Rule::Do(ManageInspection, Tenant),
        (
            "post",
            "/tenants/{tenant_id}/inspections/{inspection_id}/fieldwork"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/deductions"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/achievements"
            | "/tenants/{tenant_id}/inspections/{inspection_id}/findings",
        ) => Rule::Do(RecordInspection, Tenant),
        // One's own notifications (issue 14); the tenant's reminder settings, channels and deliveries.
        ("get", "/me/notifications" | "/me/notifications/unread-count")
        | ("post", "/me/notifications/read-all" | "/me/notifications/{notification_id}/read") => Rule::AnyUser,
        (_, p)
            if p.starts_with("/tenants/{tenant_id}/notification-")
                || p.starts_with("/tenants/{tenant_id}/deliveries") =>
        {
            Rule::Do(ManageTenant, Tenant)
        }
        // Findings and rectifications.
        ("get", "/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}") => Rule::Do(Read, Finding),
        ("post", p) if p.starts_with("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/") => {
            match p.rsplit('/').next() {
                Some("progress" | "submit") => Rule::Do(ReportProgress, Finding),
                Some("assign" | "verify" | "return" | "extend" | "remind" | "dismiss") => {
                    Rule::Do(ManageRectification, Finding)
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(r)
}

/// The action of an account administration call: grants are the security administrator's (and a
/// sub-district admin's for its staff), everything else about an account the system
/// administrator's.
fn account_action(path: &str) -> Action {
    if path.ends_with("/roles") || path.ends_with("/roles/revoke") {
        Action::ManageGrants
    } else {
        Action::ManageAccounts
    }
}

/// One set of path-parameter values: the sample tenant, a foreign tenant, a foreign community,
/// a foreign district.
#[derive(Debug, Clone)]
struct Variant {
    name: &'static str,
    values: BTreeMap<&'static str, String>,
    /// The community of the finding / self-inspection named in `values` (None: cross-cutting).
    finding_community: Option<&'static str>,
    self_inspection_community: Option<&'static str>,
    /// Path parameters whose value names nothing that exists in this variant: a denied request
    /// may answer 404 there (nothing is revealed about a thing that does not exist).
    missing: &'static [&'static str],
}

fn variants() -> Vec<Variant> {
    let base = |tenant: &str, community: &str, finding: &str, user: &str, district: &str| {
        let mut v = BTreeMap::new();
        v.insert("tenant_id", tenant.to_owned());
        v.insert("district_id", district.to_owned());
        v.insert("community_id", community.to_owned());
        v.insert("inspection_id", "2023-ideology".to_owned());
        v.insert("finding_id", finding.to_owned());
        v.insert("user_id", user.to_owned());
        v.insert("self_inspection_id", "2023-dongfeng".to_owned());
        v.insert("checklist_id", "ideology-2023".to_owned());
        v.insert("code", "theory".to_owned());
        v.insert("stream", format!("inspection-{tenant}-2023-ideology"));
        v.insert("sha256", "0".repeat(64));
        // No such notification, channel or delivery: allowed callers get 404.
        v.insert("notification_id", "999999".to_owned());
        v.insert("channel_id", "qa-channel".to_owned());
        v.insert("delivery_id", "999999".to_owned());
        v
    };
    vec![
        Variant {
            name: "own tenant xxjd",
            values: base("xxjd", "dongfeng", "xx-2023-f2", "xx-duchazu2", "xxq"),
            finding_community: None,
            self_inspection_community: Some("dongfeng"),
            missing: &["sha256"],
        },
        Variant {
            name: "foreign community heping",
            values: base("xxjd", "heping", "xx-2023-f2", "xx-duchazu2", "xxq"),
            finding_community: None,
            self_inspection_community: Some("dongfeng"),
            missing: &["sha256"],
        },
        Variant {
            name: "foreign tenant yyjd",
            values: base("yyjd", "chaoyang", "yy-2023-f1", "yy-duchazu", "xxq"),
            finding_community: Some("chaoyang"),
            self_inspection_community: None,
            missing: &["sha256", "self_inspection_id"],
        },
        Variant {
            name: "foreign district wwq",
            values: base("xxjd", "dongfeng", "xx-2023-f2", "xx-duchazu2", OTHER_DISTRICT),
            finding_community: None,
            self_inspection_community: Some("dongfeng"),
            missing: &["sha256"],
        },
    ]
}

/// The district of a tenant (all demo tenants are in `xxq`).
fn district_of(_tenant: &str) -> &'static str {
    "xxq"
}

fn target(on: On, v: &Variant) -> Target {
    let d = |s: &str| DistrictId::parse(s).expect("district id");
    let t = |s: &str| TenantId::parse(s).expect("tenant id");
    let c = |s: &str| CommunityId::parse(s).expect("community id");
    let tenant = &v.values["tenant_id"];
    let td = d(district_of(tenant));
    match on {
        On::Platform => Target::platform(),
        On::District | On::DistrictOrAnyOfItsTenants => Target::district(&d(&v.values["district_id"])),
        On::Tenant | On::TenantOrOwnCommunity => Target::tenant(&td, &t(tenant)),
        On::Community => Target::community(&td, &t(tenant), Some(&c(&v.values["community_id"]))),
        On::Finding => Target::community(&td, &t(tenant), v.finding_community.map(c).as_ref()),
        On::SelfInspection => Target::community(&td, &t(tenant), v.self_inspection_community.map(c).as_ref()),
    }
}

fn expected(rule: Rule, actor: Option<&Actor>, v: &Variant) -> bool {
    let Some(actor) = actor else { return rule == Rule::Public };
    match rule {
        Rule::Public | Rule::AnyUser => true,
        Rule::LoginStep => false,
        Rule::Either(a, b, on) => {
            let tgt = target(on, v);
            authorize(actor, a, &tgt).is_ok() || authorize(actor, b, &tgt).is_ok()
        }
        Rule::Do(action, on) => {
            let tgt = target(on, v);
            if authorize(actor, action, &tgt).is_ok() {
                return true;
            }
            if on == On::DistrictOrAnyOfItsTenants {
                let district = tgt.district_id.clone().expect("district");
                let tenants: &[&str] = if district.as_str() == "xxq" { &["xxjd", "yyjd", "zzjd"] } else { &[] };
                return tenants.iter().any(|t| {
                    authorize(actor, action, &Target::tenant(&district, &TenantId::parse(*t).expect("tenant"))).is_ok()
                });
            }
            on == On::TenantOrOwnCommunity
                && actor.grants.iter().any(|g| {
                    role_allows(g.role, action)
                        && matches!(&g.scope, Scope::Community { tenant_id, .. } if Some(tenant_id) == tgt.tenant_id.as_ref())
                })
        }
    }
}

/// The actor behind a token, from `GET /me` (grants as the server holds them now).
fn actor_from_me(me: &Value) -> Actor {
    let grants = me["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .map(|g| {
            let role = Role::from_code(g["role"].as_str().unwrap_or_default()).expect("role code");
            let s = &g["scope"];
            let d = || DistrictId::parse(s["district_id"].as_str().unwrap_or_default()).expect("district");
            let t = || TenantId::parse(s["tenant_id"].as_str().unwrap_or_default()).expect("tenant");
            let scope = match s["kind"].as_str().unwrap_or_default() {
                "platform" => Scope::Platform,
                "district" => Scope::District { district_id: d() },
                "tenant" => Scope::Tenant { district_id: d(), tenant_id: t() },
                "community" => Scope::Community {
                    district_id: d(),
                    tenant_id: t(),
                    community_id: CommunityId::parse(s["community_id"].as_str().unwrap_or_default()).expect("c"),
                },
                other => panic!("unknown scope kind {other}"),
            };
            Grant { role, scope }
        })
        .collect();
    Actor { user_id: UserId::parse(me["user_id"].as_str().expect("user_id")).expect("user id"), grants }
}

// ------------------------------------------------------------------------------------------------
// Request bodies from the schema.
// ------------------------------------------------------------------------------------------------

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A value for a property, by name, in a variant (ids must name real things of that variant).
fn named_value(name: &str, v: &Variant) -> Option<Value> {
    let s = |x: &str| Some(Value::String(x.to_owned()));
    match name {
        "community_id" => s(&v.values["community_id"]),
        "tenant_id" => s("qa-new-tenant"),
        "district_id" => s("qa-new-district"),
        "user_id" => s("qa-new-user"),
        "inspection_id" => s("qa-2099"),
        "finding_id" => s("qa-f1"),
        "self_inspection_id" => s("qa-self-1"),
        "achievement_id" => s("qa-a1"),
        "checklist_id" => s("ideology-2023"),
        "item_code" => s("A1"),
        "category" => s("theory"),
        "username" => s("qa-new-user"),
        "password" => s("qa-password-123456"),
        "role" => s("inspector"),
        "year" => Some(json!(2026)),
        _ => None,
    }
}

fn example_of(schema: &Value) -> Option<Value> {
    if let Some(e) = schema.get("example") {
        return Some(e.clone());
    }
    schema.get("examples").and_then(Value::as_array).and_then(|a| a.first()).cloned()
}

fn generate(doc: &Value, schema: &Value, name: Option<&str>, v: &Variant, depth: usize) -> Value {
    if let Some(n) = name.and_then(|n| named_value(n, v)) {
        return n;
    }
    let schema = resolve(doc, schema);
    if let Some(e) = example_of(schema) {
        return e;
    }
    if depth > 8 {
        return Value::Null;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|a| {
            a.iter().find(|s| resolve(doc, s).get("type").and_then(Value::as_str) != Some("null")).or(a.first())
        }) {
            if key == "allOf" {
                // Merge the objects of an allOf.
                let mut out = serde_json::Map::new();
                for part in schema[key].as_array().into_iter().flatten() {
                    if let Value::Object(m) = generate(doc, part, name, v, depth + 1) {
                        out.extend(m);
                    }
                }
                return Value::Object(out);
            }
            return generate(doc, first, name, v, depth + 1);
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array).and_then(|a| a.first()) {
        return e.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_owned()
        }
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ => "string".to_owned(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            let required: BTreeSet<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if required.contains(k.as_str()) {
                        out.insert(k.clone(), generate(doc, s, Some(k), v, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema.get("items").cloned().unwrap_or(json!({"type": "string"}));
            // One item even when none is required: lists such as communities or team must not be
            // empty for most commands.
            let n = min.max(1);
            Value::Array((0..n).map(|_| generate(doc, &item, name, v, depth + 1)).collect())
        }
        "integer" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            json!(min.max(1))
        }
        "number" => json!(1.0),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => {
            let format = schema.get("format").and_then(Value::as_str).unwrap_or_default();
            match format {
                "date" => json!("2026-12-31"),
                "date-time" => json!("2026-01-01T00:00:00Z"),
                "uuid" => json!("0b6e7c1e-5d2a-4c55-9a55-3f1c2b7d9e01"),
                _ => json!("qa-value"),
            }
        }
    }
}

/// The body of an operation: (content type, bytes), or an error naming what is missing.
fn body_for(doc: &Value, op: &Value, v: &Variant) -> Result<Option<(String, Vec<u8>)>, String> {
    let Some(rb) = op.get("requestBody") else { return Ok(None) };
    if op.get("operationId").and_then(Value::as_str) == Some("login") {
        // Real credentials: failed logins would lock the client address for the rest of the run.
        let body = json!({"username": "xx-admin", "password": "ducha-demo"});
        return Ok(Some(("application/json".into(), body.to_string().into_bytes())));
    }
    let content = rb["content"].as_object().ok_or("requestBody without content")?;
    if let Some(media) = content.get("application/json") {
        let schema = media.get("schema").ok_or("application/json without schema")?;
        let value = generate(doc, schema, None, v, 0);
        return Ok(Some(("application/json".into(), value.to_string().into_bytes())));
    }
    if content.contains_key("multipart/form-data") {
        let boundary = "qa-boundary-7d1f";
        let mut b = Vec::new();
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"qa.pdf\"\r\n\
                 Content-Type: application/pdf\r\n\r\n%PDF-1.4\n%qa evidence\n%%EOF\n\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        return Ok(Some((format!("multipart/form-data; boundary={boundary}"), b)));
    }
    Err(format!("no known body for content types {:?}", content.keys().collect::<Vec<_>>()))
}

/// Required query parameters get a plausible value.
fn query_for(doc: &Value, op: &Value) -> String {
    let mut parts = Vec::new();
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        let p = resolve(doc, p);
        if p["in"] == "query" && p["required"] == json!(true) {
            let name = p["name"].as_str().unwrap_or_default();
            let value = match name {
                "year" => "2023".to_owned(),
                "from" | "from_position" => "1".to_owned(),
                "to" | "to_position" => "2".to_owned(),
                _ => match generate(doc, &p["schema"], None, &variants()[0], 0) {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            };
            parts.push(format!("{name}={value}"));
        }
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

// ------------------------------------------------------------------------------------------------

/// GET that reads only the status line and headers (for the server-sent-events stream).
fn head_only(addr: &str, path: &str, token: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).ok();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n").expect("send");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

struct Case {
    user: Option<&'static str>,
    variant: Variant,
    url: String,
    body: Option<(String, Vec<u8>)>,
    allow: bool,
}

#[test]
fn every_operation_allows_and_denies_as_the_rule_table_says() {
    let server = Server::demo();
    let doc = server.get("/api/v1/openapi.json", None).json();
    assert!(doc["paths"].is_object(), "no OpenAPI document");

    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    let mut actors: BTreeMap<&str, Actor> = BTreeMap::new();
    for u in USERS {
        let token = server.login(u);
        let me = server.get("/api/v1/me", Some(&token));
        assert_eq!(me.status, 200, "{u}: /me {}", me.text());
        actors.insert(u, actor_from_me(&me.json()));
        tokens.insert(u, token);
    }
    // The foreign district.
    if doc["paths"]["/api/v1/districts"]["post"].is_object() {
        let r = server.post_json(
            "/api/v1/districts",
            Some(&tokens["admin"]),
            &json!({"district_id": OTHER_DISTRICT, "name": "WW区"}),
        );
        assert!(r.status == 201 || r.status == 200, "creating district {OTHER_DISTRICT}: {} {}", r.status, r.text());
    }

    let mut unmapped = Vec::new();
    let mut failures = Vec::new();
    let mut requests = 0usize;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let key = format!("{} {path}", method.to_uppercase());
            let Some(rule) = rule(method, path) else {
                unmapped.push(key);
                continue;
            };
            let public = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(serde_json::Map::is_empty)));
            if public != (rule == Rule::Public) {
                failures.push(format!("{key}: the document says public={public}, the rule table says {rule:?}"));
            }
            let params: Vec<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            let query = query_for(&doc, op);
            // Build the distinct requests (a variant that changes nothing in the request is skipped).
            let mut cases: Vec<Case> = Vec::new();
            let mut seen = BTreeSet::new();
            for v in variants() {
                let mut url = path.clone();
                for p in &params {
                    match v.values.get(p.as_str()) {
                        Some(val) => url = url.replace(&format!("{{{p}}}"), val),
                        None => {
                            failures.push(format!("{key}: no demo value for path parameter {{{p}}}"));
                        }
                    }
                }
                url.push_str(&query);
                let body = match body_for(&doc, op, &v) {
                    Ok(b) => b,
                    Err(e) => {
                        failures.push(format!("{key}: {e}"));
                        None
                    }
                };
                if !seen.insert((url.clone(), body.clone())) {
                    continue;
                }
                for user in std::iter::once(None).chain(USERS.iter().copied().map(Some)) {
                    let allow = expected(rule, user.map(|u| &actors[u]), &v);
                    cases.push(Case { user, variant: v.clone(), url: url.clone(), body: body.clone(), allow });
                }
            }
            // Denied first, so that the head is unchanged across them; then the allowed ones.
            cases.sort_by_key(|c| c.allow);
            let write = method != "get";
            let before = if write { server.head_position() } else { 0 };
            let mut checked_head = false;
            for case in &cases {
                if write && case.allow && !checked_head {
                    checked_head = true;
                    let after = server.head_position();
                    if after != before {
                        failures.push(format!("{key}: denied writes appended events ({before} → {after})"));
                    }
                }
                // Logout revokes the token: use a fresh one.
                let fresh;
                let token = match case.user {
                    Some(u) if path.ends_with("/auth/logout") => {
                        fresh = server.login(u);
                        Some(fresh.as_str())
                    }
                    Some(u) => Some(tokens[u].as_str()),
                    None => None,
                };
                requests += 1;
                let status = if path.ends_with("/live") {
                    head_only(&server.addr, &case.url, token)
                } else {
                    let mut headers = Vec::new();
                    if let Some((ct, _)) = &case.body {
                        headers.push(("Content-Type", ct.as_str()));
                    }
                    let auth = token.map(|t| format!("Bearer {t}"));
                    if let Some(a) = &auth {
                        headers.push(("Authorization", a.as_str()));
                    }
                    let r: Response = http(
                        &server.addr,
                        &method.to_uppercase(),
                        &case.url,
                        &headers,
                        case.body.as_ref().map(|b| &b.1[..]),
                    );
                    if r.status >= 500 {
                        failures.push(format!(
                            "{key} as {:?} ({}): {} {}",
                            case.user,
                            case.variant.name,
                            r.status,
                            r.text()
                        ));
                    }
                    r.status
                };
                let hidden = status == 404
                    && case.variant.missing.iter().any(|m| path.contains(&format!("{{{m}}}")))
                    && case.user.is_some();
                let denied = status == 401 || status == 403 || (!case.allow && hidden);
                let who = case.user.unwrap_or("(no token)");
                if case.allow && denied {
                    failures.push(format!("{key} [{}] as {who}: expected allow, got {status}", case.variant.name));
                } else if !case.allow && !denied {
                    failures.push(format!("{key} [{}] as {who}: expected deny, got {status}", case.variant.name));
                }
                if case.user.is_none() && rule != Rule::Public && status != 401 {
                    failures.push(format!("{key} [{}] without a token: expected 401, got {status}", case.variant.name));
                }
            }
            if write && !checked_head && server.head_position() != before {
                failures.push(format!("{key}: denied writes appended events"));
            }
        }
    }
    eprintln!("isolation matrix: {requests} requests over {} paths", paths.len());
    let mut report = String::new();
    if !unmapped.is_empty() {
        report.push_str(&format!(
            "operations missing from the rule table in tests/tests/api_isolation.rs (add each with its Action and scope):\n  {}\n",
            unmapped.join("\n  ")
        ));
    }
    if !failures.is_empty() {
        report.push_str(&format!("{} isolation failures:\n  {}\n", failures.len(), failures.join("\n  ")));
    }
    assert!(report.is_empty(), "{report}");
}
