//! Platform, sub-district and user administration through the REST API only, against the real
//! `ducha serve --demo`: districts and tenants, communities, categories and checklists, and user
//! accounts (create, log in, disable, enable, reset, grant, revoke), with tenant isolation.

use ducha_tests::{Response, Server};
use serde_json::{Value, json};

fn post(s: &Server, path: &str, token: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    s.request("POST", path, Some(token), &all, Some(body.to_string().as_bytes()))
}

fn expect(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

/// The problem document, after checking its media type and status.
fn problem(r: &Response, status: u16) -> Value {
    let p = expect(r, status);
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.text());
    assert_eq!(p["status"], status);
    p
}

fn login(s: &Server, username: &str, password: &str) -> Response {
    s.post_json("/api/v1/auth/login", None, &json!({"username": username, "password": password}))
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array().into_iter().flatten().filter_map(|v| v[key].as_str().map(str::to_owned)).collect()
}

#[test]
fn platform_admins_create_districts_and_tenants() {
    let s = Server::demo();
    let root = s.login("admin");
    let r = post(&s, "/api/v1/districts", &root, &[], &json!({"district_id": "yyq", "name": "YY区"}));
    let created = expect(&r, 201);
    assert_eq!((created["id"].as_str(), r.header("location")), (Some("yyq"), Some("/api/v1/districts/yyq/tenants")));
    assert_eq!(r.header("etag"), Some("\"1\""));
    let p = problem(&post(&s, "/api/v1/districts", &root, &[], &json!({"district_id": "yyq", "name": "YY区"})), 409);
    assert_eq!(p["code"], "already_exists");

    let r = post(&s, "/api/v1/districts/yyq/tenants", &root, &[], &json!({"tenant_id": "aajd", "name": "AA街道"}));
    expect(&r, 201);
    assert_eq!(r.header("location"), Some("/api/v1/tenants/aajd"));
    problem(
        &post(&s, "/api/v1/districts/nod/tenants", &root, &[], &json!({"tenant_id": "bbjd", "name": "BB街道"})),
        404,
    );

    let districts = expect(&s.get("/api/v1/districts", Some(&root)), 200);
    assert_eq!(ids(&districts, "district_id"), ["xxq", "yyq"]);
    let tenants = expect(&s.get("/api/v1/districts/yyq/tenants", Some(&root)), 200);
    assert_eq!(ids(&tenants, "tenant_id"), ["aajd"]);
    assert_eq!(tenants[0]["name"], "AA街道");
    let new_tenant = expect(&s.get("/api/v1/tenants/aajd", Some(&root)), 200);
    assert_eq!(
        (new_tenant["district_name"].as_str(), new_tenant["communities"].as_array().map(Vec::len)),
        (Some("YY区"), Some(0))
    );

    // A sub-district admin: no platform writes, nothing appended; sees only its own district and
    // sub-district; another district is refused.
    let admin = s.login("xx-admin");
    let head = s.head_position();
    let p = problem(&post(&s, "/api/v1/districts", &admin, &[], &json!({"district_id": "zzq", "name": "ZZ区"})), 403);
    assert_eq!(p["code"], "forbidden");
    problem(
        &post(&s, "/api/v1/districts/xxq/tenants", &admin, &[], &json!({"tenant_id": "qqjd", "name": "QQ街道"})),
        403,
    );
    assert_eq!(s.head_position(), head);
    let mine = expect(&s.get("/api/v1/districts", Some(&admin)), 200);
    assert_eq!(ids(&mine, "district_id"), ["xxq"]);
    assert_eq!(mine[0]["tenants"], 1);
    assert_eq!(ids(&expect(&s.get("/api/v1/districts/xxq/tenants", Some(&admin)), 200), "tenant_id"), ["xxjd"]);
    problem(&s.get("/api/v1/districts/yyq/tenants", Some(&admin)), 403);
    // The district officer sees all three of XX区's sub-districts.
    let officer = s.login("qu-xcb");
    let all = expect(&s.get("/api/v1/districts/xxq/tenants", Some(&officer)), 200);
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    problem(&s.get("/api/v1/districts/nod/tenants", Some(&officer)), 404);
}

#[test]
fn sub_district_admins_manage_communities_categories_and_checklists() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    const T: &str = "/api/v1/tenants/xxjd";
    let r = s.get(T, Some(&admin));
    let t = expect(&r, 200);
    assert_eq!((t["name"].as_str(), t["district_name"].as_str()), (Some("XX街道"), Some("XX区")));
    assert_eq!(t["communities"].as_array().map(Vec::len), Some(6));
    assert_eq!(t["checklists"][0]["checklist_id"], "ideology-2023");
    let version = t["version"].as_u64().expect("version");
    let before_changes = s.head_position();
    assert_eq!(r.header("etag"), Some(format!("\"{version}\"").as_str()));

    // Add and rename a community, honouring If-Match.
    let if_match = format!("\"{version}\"");
    let r = post(
        &s,
        &format!("{T}/communities"),
        &admin,
        &[("If-Match", &if_match)],
        &json!({"community_id": "xinmin", "name": "新民社区"}),
    );
    expect(&r, 201);
    assert_eq!(r.header("location"), Some(format!("{T}/communities/xinmin").as_str()));
    let p = problem(
        &post(
            &s,
            &format!("{T}/communities/xinmin/rename"),
            &admin,
            &[("If-Match", &if_match)],
            &json!({"name": "新明社区"}),
        ),
        412,
    );
    assert_eq!(p["current_version"], version + 1);
    expect(&post(&s, &format!("{T}/communities/xinmin/rename"), &admin, &[], &json!({"name": "新明社区"})), 200);
    let c = expect(&s.get(&format!("{T}/communities/xinmin"), Some(&admin)), 200);
    assert_eq!(c["name"], "新明社区");
    assert_eq!(expect(&s.get(&format!("{T}/communities"), Some(&admin)), 200).as_array().map(Vec::len), Some(7));
    problem(&s.get(&format!("{T}/communities/nowhere"), Some(&admin)), 404);
    let p = problem(
        &post(&s, &format!("{T}/communities"), &admin, &[], &json!({"community_id": "xinmin", "name": "又一个"})),
        409,
    );
    assert_eq!(p["code"], "already_exists");

    // Categories and checklists.
    let r = post(&s, &format!("{T}/categories"), &admin, &[], &json!({"code": "culture", "name": "文化阵地"}));
    expect(&r, 201);
    assert_eq!(expect(&s.get(&format!("{T}/categories/culture"), Some(&admin)), 200)["name"], "文化阵地");
    let p = problem(&post(&s, &format!("{T}/categories"), &admin, &[], &json!({"code": "Bad Code", "name": "x"})), 422);
    assert_eq!((p["code"].as_str(), p["field"].as_str()), (Some("invalid"), Some("code")));
    let checklist = json!({
        "checklist_id": "ideology-2026",
        "title": "意识形态工作责任制检查考核细则（2026年版）",
        "items": [{"code": "B1", "title": "理论学习", "max_points": 50}, {"code": "B2", "title": "阵地管理", "max_points": 50}],
    });
    let r = post(&s, &format!("{T}/checklists"), &admin, &[], &checklist);
    expect(&r, 201);
    let c = expect(&s.get(&format!("{T}/checklists/ideology-2026"), Some(&admin)), 200);
    assert_eq!(c["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(expect(&s.get(&format!("{T}/checklists"), Some(&admin)), 200).as_array().map(Vec::len), Some(2));
    let cats = expect(&s.get(&format!("{T}/categories"), Some(&admin)), 200);
    assert!(ids(&cats, "code").contains(&"culture".to_owned()));

    // Unknown fields: 422 naming it.
    let p = problem(
        &post(&s, &format!("{T}/communities"), &admin, &[], &json!({"community_id": "a", "name": "b", "x": 1})),
        422,
    );
    assert_eq!(p["field"], "x");

    // Isolation: another sub-district's admin can neither write nor read; a community officer
    // does not read tenant-wide data; an inspector reads but does not manage.
    let head = s.head_position();
    let other = s.login("yy-admin");
    problem(&post(&s, &format!("{T}/communities"), &other, &[], &json!({"community_id": "evil", "name": "x"})), 403);
    problem(&s.get(T, Some(&other)), 403);
    let officer = s.login("xx-dongfeng");
    problem(&s.get(&format!("{T}/communities"), Some(&officer)), 403);
    let inspector = s.login("xx-duchazu1");
    expect(&s.get(&format!("{T}/checklists"), Some(&inspector)), 200);
    problem(&post(&s, &format!("{T}/categories"), &inspector, &[], &json!({"code": "zz", "name": "x"})), 403);
    assert_eq!(s.head_position(), head, "refused writes append nothing");
    problem(&s.get("/api/v1/tenants/nojd", Some(&admin)), 404);

    // As of before the changes: six communities, the old version.
    let r = s.get(&format!("{T}?at_position={before_changes}"), Some(&admin));
    let then = expect(&r, 200);
    assert_eq!(then["communities"].as_array().map(Vec::len), Some(6));
    assert_eq!((then["version"].as_u64(), r.header("etag")), (Some(version), Some(if_match.as_str())));
}

#[test]
fn user_administration() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    const U: &str = "/api/v1/tenants/xxjd/users";

    // Create an inspector; the answer and the lists never carry a password or hash.
    let new_user = json!({
        "username": "xx-wangfang",
        "display_name": "督查组 王芳",
        "password": "督查-secret-1",
        "role": "inspector",
    });
    let r = post(&s, U, &admin, &[], &new_user);
    let created = expect(&r, 201);
    assert_eq!(created["id"], "xx-wangfang");
    assert_eq!(created["events"], 3, "created, password set, role granted");
    assert_eq!(r.header("location"), Some(format!("{U}/xx-wangfang").as_str()));
    let list = s.get(U, Some(&admin));
    let users = expect(&list, 200);
    assert!(ids(&users, "username").contains(&"xx-wangfang".to_owned()));
    assert!(ids(&users, "username").contains(&"xx-admin".to_owned()));
    assert!(!list.text().contains("argon2") && !list.text().contains("password_hash"), "{}", list.text());
    let one = expect(&s.get(&format!("{U}/xx-wangfang"), Some(&admin)), 200);
    assert_eq!((one["grants"][0]["role"].as_str(), one["has_password"].as_bool()), (Some("inspector"), Some(true)));

    // They log in and work; disabled, their token stops working and they cannot log in.
    let r = login(&s, "xx-wangfang", "督查-secret-1");
    let token = expect(&r, 200)["access_token"].as_str().expect("token").to_owned();
    expect(&s.get("/api/v1/me", Some(&token)), 200);
    expect(&s.get("/api/v1/tenants/xxjd/inspections", Some(&token)), 200);
    expect(&post(&s, &format!("{U}/xx-wangfang/disable"), &admin, &[], &json!({"reason": "人员调离"})), 200);
    // Disabling ends the account's sessions at once (and the account itself is refused too).
    let p = problem(&s.get("/api/v1/me", Some(&token)), 401);
    assert_eq!(p["code"], "session_ended");
    problem(&login(&s, "xx-wangfang", "督查-secret-1"), 401);
    assert_eq!(expect(&s.get(&format!("{U}/xx-wangfang"), Some(&admin)), 200)["disabled"], true);
    // Enabled again, with a new password.
    let enable = s.request("POST", &format!("{U}/xx-wangfang/enable"), Some(&admin), &[], None);
    expect(&enable, 200);
    expect(&post(&s, &format!("{U}/xx-wangfang/password"), &admin, &[], &json!({"password": "new-password-2"})), 200);
    problem(&login(&s, "xx-wangfang", "督查-secret-1"), 401);
    expect(&login(&s, "xx-wangfang", "new-password-2"), 200);

    // Roles: a community officer needs a community of this sub-district.
    let p =
        problem(&post(&s, &format!("{U}/xx-wangfang/roles"), &admin, &[], &json!({"role": "community_officer"})), 422);
    assert_eq!(p["field"], "community_id");
    problem(
        &post(
            &s,
            &format!("{U}/xx-wangfang/roles"),
            &admin,
            &[],
            &json!({"role": "community_officer", "community_id": "nowhere"}),
        ),
        404,
    );
    let bind = json!({"role": "community_officer", "community_id": "heping"});
    expect(&post(&s, &format!("{U}/xx-wangfang/roles"), &admin, &[], &bind), 200);
    let one = expect(&s.get(&format!("{U}/xx-wangfang"), Some(&admin)), 200);
    assert_eq!(one["grants"].as_array().map(Vec::len), Some(2));
    assert_eq!(one["grants"][1]["scope"]["community_id"], "heping");
    expect(&post(&s, &format!("{U}/xx-wangfang/roles/revoke"), &admin, &[], &bind), 200);
    let p = problem(&post(&s, &format!("{U}/xx-wangfang/roles/revoke"), &admin, &[], &bind), 404);
    assert_eq!(p["code"], "not_found");
    // A sub-district admin grants only its business staff's roles (三员分立: the rest is the
    // security administrator's).
    for role in ["district_officer", "subdistrict_admin", "auditor"] {
        let p = problem(&post(&s, &format!("{U}/xx-wangfang/roles"), &admin, &[], &json!({"role": role})), 403);
        assert_eq!(p["code"], "role_not_grantable", "{role}");
    }

    // Usernames are unique across the deployment; passwords have a minimum length; ids are unique.
    let head = s.head_position();
    let mut dup = new_user.clone();
    dup["username"] = json!("yy-admin");
    let p = problem(&post(&s, U, &admin, &[], &dup), 409);
    assert_eq!((p["code"].as_str(), p["field"].as_str()), (Some("already_exists"), Some("username")));
    let mut dup_id = new_user.clone();
    dup_id["username"] = json!("someone-new");
    dup_id["user_id"] = json!("yy-admin");
    assert_eq!(problem(&post(&s, U, &admin, &[], &dup_id), 409)["field"], "user_id");
    let mut short = new_user.clone();
    short["username"] = json!("xx-short");
    short["password"] = json!("1234567");
    assert_eq!(problem(&post(&s, U, &admin, &[], &short), 422)["field"], "password");
    let mut officer_without_community = new_user.clone();
    officer_without_community["username"] = json!("xx-officer");
    officer_without_community["role"] = json!("community_officer");
    assert_eq!(problem(&post(&s, U, &admin, &[], &officer_without_community), 422)["field"], "community_id");
    let mut with_hash = new_user.clone();
    with_hash["password_hash"] = json!("$argon2id$v=19$x");
    problem(&post(&s, U, &admin, &[], &with_hash), 422);
    // Another sub-district's admin: 403 before anything is learnt or written.
    let other = s.login("yy-admin");
    let mut probe = new_user.clone();
    probe["username"] = json!("xx-admin");
    assert_eq!(problem(&post(&s, U, &other, &[], &probe), 403)["code"], "forbidden");
    problem(&post(&s, &format!("{U}/xx-duchazu1/disable"), &other, &[], &json!({"reason": "x"})), 403);
    problem(&s.get(U, Some(&other)), 403);
    // Not oneself, and not another tenant's user through this tenant.
    // (Its own account is an administrator's: not its to manage at all.)
    let p = problem(&post(&s, &format!("{U}/xx-admin/disable"), &admin, &[], &json!({"reason": "x"})), 403);
    assert_eq!(p["code"], "role_not_grantable");
    problem(&post(&s, &format!("{U}/yy-admin/disable"), &admin, &[], &json!({"reason": "x"})), 404);
    assert_eq!(s.head_position(), head, "nothing appended by refused requests");

    // A user with a Chinese username gets a generated id; an Idempotency-Key retry creates nothing more.
    let chinese =
        json!({"username": "李督查", "display_name": "李督查", "password": "long-enough-3", "role": "inspector"});
    let key = [("Idempotency-Key", "create-li-1")];
    let first = expect(&post(&s, U, &admin, &key, &chinese), 201);
    let head = s.head_position();
    assert_eq!(expect(&post(&s, U, &admin, &key, &chinese), 201), first);
    assert_eq!(s.head_position(), head);
    let id = first["id"].as_str().expect("id");
    assert_ne!(id, "李督查");
    expect(&login(&s, "李督查", "long-enough-3"), 200);
}

#[test]
fn district_users_are_managed_by_the_system_and_security_administrators() {
    let s = Server::demo();
    let sys = s.login("sysadmin");
    let sec = s.login("secadmin");
    let root = s.login("admin");
    const U: &str = "/api/v1/districts/xxq/users";
    let body = json!({"username": "qu-zhao", "display_name": "区委宣传部 赵干事", "password": "District-pass1"});
    // The platform administrator no longer manages accounts (三员分立); the system administrator
    // creates the account, but cannot give it a role …
    let head = s.head_position();
    assert_eq!(problem(&post(&s, U, &root, &[], &body), 403)["code"], "forbidden");
    let mut with_role = body.clone();
    with_role["role"] = json!("district_officer");
    assert_eq!(problem(&post(&s, U, &sys, &[], &with_role), 403)["code"], "forbidden");
    assert_eq!(s.head_position(), head);
    let r = post(&s, U, &sys, &[], &body);
    expect(&r, 201);
    assert_eq!(r.header("location"), Some(format!("{U}/qu-zhao").as_str()));
    // … which the security administrator grants (and who cannot create accounts).
    let role = json!({"role": "district_officer"});
    assert_eq!(problem(&post(&s, &format!("{U}/qu-zhao/roles"), &sys, &[], &role), 403)["code"], "forbidden");
    let mut other = body.clone();
    other["username"] = json!("qu-qian");
    assert_eq!(problem(&post(&s, U, &sec, &[], &other), 403)["code"], "forbidden");
    expect(&post(&s, &format!("{U}/qu-zhao/roles"), &sec, &[], &role), 200);
    let token =
        expect(&login(&s, "qu-zhao", "District-pass1"), 200)["access_token"].as_str().unwrap_or_default().to_owned();
    expect(&s.get("/api/v1/districts/xxq/tenants", Some(&token)), 200);
    let users = expect(&s.get(U, Some(&sys)), 200);
    assert_eq!(ids(&users, "username"), ["qu-jjw", "qu-xcb", "qu-zhao"]);
    // A district officer reads the district's users but does not manage them.
    let officer = s.login("qu-xcb");
    expect(&s.get(U, Some(&officer)), 200);
    let head = s.head_position();
    problem(&post(&s, &format!("{U}/qu-zhao/disable"), &officer, &[], &json!({"reason": "x"})), 403);
    let admin = s.login("xx-admin");
    problem(
        &post(&s, U, &admin, &[], &json!({"username": "qu-x", "display_name": "x", "password": "Abcdefg-12"})),
        403,
    );
    problem(&s.get(U, Some(&admin)), 403);
    assert_eq!(s.head_position(), head);
    // A tenant role cannot be given here.
    let p = problem(&post(&s, &format!("{U}/qu-zhao/roles"), &sec, &[], &json!({"role": "inspector"})), 422);
    assert_eq!(p["code"], "invalid");
    expect(&post(&s, &format!("{U}/qu-zhao/roles/revoke"), &sec, &[], &role), 200);
    expect(&post(&s, &format!("{U}/qu-zhao/roles"), &sec, &[], &json!({"role": "auditor"})), 200);
    expect(&post(&s, &format!("{U}/qu-zhao/disable"), &sys, &[], &json!({"reason": "调离"})), 200);
    problem(&s.get("/api/v1/me", Some(&token)), 401);
    problem(&s.get("/api/v1/districts/nod/users", Some(&sys)), 404);
}

/// Issue 14: inspection methods are the sub-district's own (added, renamed, retired), used by
/// plans and fieldwork and printed by name; a new tenant starts with the default methods and the
/// sample report's five categories.
#[test]
fn sub_district_admins_manage_their_own_inspection_methods() {
    let s = Server::demo();
    let root = s.login("admin");
    // A new tenant's starting vocabulary.
    expect(
        &post(&s, "/api/v1/districts/xxq/tenants", &root, &[], &json!({"tenant_id": "newjd", "name": "新街道"})),
        201,
    );
    let fresh = expect(&s.get("/api/v1/tenants/newjd", Some(&root)), 200);
    let methods = ids(&fresh["methods"], "name");
    for name in ["听取汇报", "座谈交流", "查阅资料", "实地查看", "个别访谈", "受理来信来访", "专题座谈会"]
    {
        assert!(methods.contains(&name.to_owned()), "{name} in {methods:?}");
    }
    assert_eq!(ids(&fresh["categories"], "name"), ["理论学习", "督查自查", "主体责任", "舆情研判", "队伍建设"]);

    const T: &str = "/api/v1/tenants/xxjd";
    let admin = s.login("xx-admin");
    let r = post(&s, &format!("{T}/methods"), &admin, &[], &json!({"code": "hearing", "name": "听证会"}));
    expect(&r, 201);
    assert_eq!(r.header("location"), Some(format!("{T}/methods/hearing").as_str()));
    assert_eq!(expect(&s.get(&format!("{T}/methods/hearing"), Some(&admin)), 200)["name"], "听证会");
    // Bad input: a clear 422 naming the field, nothing appended.
    let head = s.head_position();
    let p = problem(&post(&s, &format!("{T}/methods"), &admin, &[], &json!({"code": "听证", "name": "x"})), 422);
    assert_eq!(p["field"], "code");
    let p =
        problem(&post(&s, &format!("{T}/methods"), &admin, &[], &json!({"code": "hearing2", "name": "座谈交流"})), 422);
    assert_eq!(p["field"], "name");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("座谈交流")), "{p}");
    problem(&post(&s, &format!("{T}/methods"), &admin, &[], &json!({"code": "hearing", "name": "又一个"})), 409);
    problem(&post(&s, &format!("{T}/methods/nope/rename"), &admin, &[], &json!({"name": "无"})), 404);
    let inspector = s.login("xx-duchazu1");
    problem(&post(&s, &format!("{T}/methods"), &inspector, &[], &json!({"code": "zz", "name": "x"})), 403);
    assert_eq!(s.head_position(), head, "refused writes append nothing");

    // A plan with the new method; fieldwork with it; its name in the detail and the report.
    let day = chrono::Local::now().date_naive() - chrono::Days::new(1);
    let plan = json!({
        "year": chrono::Datelike::year(&day),
        "title": "听证会方式督查",
        "subject": "意识形态工作",
        "communities": ["dongfeng"],
        "team": [{"user_id": "xx-duchazu1", "leader": true}],
        "methods": ["hearing", "meeting"],
        "planned_start": day.to_string(),
        "planned_end": (day + chrono::Days::new(10)).to_string(),
    });
    let id = expect(&post(&s, &format!("{T}/inspections"), &admin, &[], &plan), 201)["id"].as_str().unwrap().to_owned();
    let base = format!("{T}/inspections/{id}");
    expect(&post(&s, &format!("{base}/start"), &admin, &[], &json!({"started_on": day})), 200);
    let fieldwork =
        json!({"community_id": "dongfeng", "method": "hearing", "held_on": day, "participants": "", "notes": "听证"});
    expect(&post(&s, &format!("{base}/fieldwork"), &inspector, &[], &fieldwork), 200);
    let d = expect(&s.get(&base, Some(&admin)), 200);
    assert_eq!(d["method_names"], json!(["听证会", "座谈交流"]));

    // Renamed: the detail and the report say the new name; retired: new plans cannot choose it.
    expect(&post(&s, &format!("{T}/methods/hearing/rename"), &admin, &[], &json!({"name": "专题听证会"})), 200);
    let d = expect(&s.get(&base, Some(&admin)), 200);
    assert_eq!(d["method_names"][0], "专题听证会");
    assert_eq!(d["fieldwork"][0]["records"][0]["method_name"], "专题听证会");
    let report = s.get(&format!("{base}/report?format=txt"), Some(&admin));
    assert_eq!(report.status, 200, "{}", report.text());
    assert!(report.text().contains("通过专题听证会、座谈交流等方式进行"), "{}", report.text());
    assert!(report.text().contains("专题听证会1次"), "{}", report.text());
    expect(&post(&s, &format!("{T}/methods/hearing/retire"), &admin, &[], &json!({})), 200);
    let list = expect(&s.get(&format!("{T}/methods"), Some(&admin)), 200);
    let hearing = list.as_array().unwrap().iter().find(|m| m["code"] == "hearing").cloned().unwrap();
    assert_eq!(hearing["retired"], true);
    let p = problem(&post(&s, &format!("{T}/inspections"), &admin, &[], &plan), 422);
    assert_eq!(p["field"], "methods");
    // The inspection that used it still shows it by name.
    assert_eq!(expect(&s.get(&base, Some(&admin)), 200)["method_names"][0], "专题听证会");
    // Adding the code again brings it back.
    expect(&post(&s, &format!("{T}/methods"), &admin, &[], &json!({"code": "hearing", "name": "听证会"})), 201);
    expect(&post(&s, &format!("{T}/inspections"), &admin, &[], &plan), 201);

    // Categories are renamed and retired the same way.
    expect(&post(&s, &format!("{T}/categories/staffing/rename"), &admin, &[], &json!({"name": "队伍建设与培训"})), 200);
    expect(&post(&s, &format!("{T}/categories/staffing/retire"), &admin, &[], &json!({})), 200);
    let cats = expect(&s.get(&format!("{T}/categories"), Some(&admin)), 200);
    let staffing = cats.as_array().unwrap().iter().find(|c| c["code"] == "staffing").cloned().unwrap();
    assert_eq!((staffing["name"].as_str(), staffing["retired"].as_bool()), (Some("队伍建设与培训"), Some(true)));
}
