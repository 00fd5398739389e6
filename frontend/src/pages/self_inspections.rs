//! 自查报告: a community's self-inspection reports (`GET /tenants/{t}/self-inspections`), each
//! previewed in the official form (the server's HTML rendering) and downloaded as Word; community
//! officers write a new one as numbered sections (一、（一）1.) with the numbers shown as they will
//! print, checked in the browser by the same rules the server applies
//! (`ducha_events::self_inspection::check_sections`), and submit it.

use crate::components::{Empty, ErrorBox, Loading, Writable};
use crate::format;
use crate::inspection_form as check;
use crate::pages::inspections::today;
use crate::problem::ApiError;
use crate::state::use_app;
use chrono::{Datelike, NaiveDate};
use ducha_events::api::CommandAccepted;
use ducha_events::event::ReportSection;
use ducha_events::numbering::outline_numbers;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
struct CommunityRef {
    community_id: Option<String>,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Item {
    self_inspection_id: String,
    community: CommunityRef,
    year: i32,
    title: String,
    inspection_id: Option<String>,
    submitted_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize)]
struct Answerable {
    inspection_id: String,
    year: i32,
    title: String,
    communities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct List {
    items: Vec<Item>,
    answerable: Vec<Answerable>,
}

/// One section being written: its level, title and text, each a signal; `key` keeps the row's
/// inputs when rows move.
#[derive(Debug, Clone, Copy)]
struct Draft {
    key: u32,
    level: RwSignal<u8>,
    title: RwSignal<String>,
    text: RwSignal<String>,
}

/// The outline most reports follow: 一、工作开展情况 / 二、存在的问题 / 三、下一步打算.
const COMMON_OUTLINE: [&str; 3] = ["工作开展情况", "存在的问题", "下一步打算"];

#[component]
pub fn SelfInspectionsPage(tenant: String) -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let t = tenant.clone();
    let data = LocalResource::new(move || {
        reload.track();
        st.api.get::<List>(&format!("/tenants/{t}/self-inspections"))
    });
    // The communities this user writes for (community officers of this tenant).
    let mine: Vec<(String, String)> = st
        .me
        .get_untracked()
        .map(|m| {
            m.grants
                .iter()
                .filter(|g| g.role == "community_officer" && g.scope.tenant_id.as_deref() == Some(tenant.as_str()))
                .filter_map(|g| {
                    let name = g.scope.name.rsplit(" / ").next().unwrap_or(&g.scope.name).to_owned();
                    g.scope.community_id.clone().map(|c| (c, name))
                })
                .collect()
        })
        .unwrap_or_default();
    let writing = RwSignal::new(false);
    let viewing = RwSignal::new(None::<String>);
    let submitted = RwSignal::new(None::<String>);
    let can_write = !mine.is_empty();
    let t2 = tenant.clone();
    view! {
        <section class="page" data-page="self-inspections">
            <div class="page-head">
                <h1>"自查报告"</h1>
                {can_write.then(|| view! {
                    <Writable>
                        <button type="button" class="button" data-testid="self-inspection-new"
                            on:click=move |_| writing.update(|w| *w = !*w)>
                            {move || if writing.get() { "收起" } else { "撰写自查报告" }}
                        </button>
                    </Writable>
                })}
            </div>
            <p class="muted">"社区对照考核细则开展自查，按“一、（一）1.”的公文格式分部分撰写，提交后可预览并下载 Word 文件；对应督查的自查报告会在督查报告中引用。"</p>
            {move || submitted.get().map(|title| view! {
                <p class="notice" role="status" data-testid="self-inspection-submitted">{format!("已提交《{title}》。")}</p>
            })}
            {move || {
                let answerable = match data.get() {
                    Some(Ok(l)) => l.answerable,
                    _ => Vec::new(),
                };
                writing.get().then(|| view! {
                    <Editor tenant=t2.clone() communities=mine.clone() answerable=answerable
                        on_done=Callback::new(move |(id, title): (String, String)| {
                            writing.set(false);
                            submitted.set(Some(title));
                            viewing.set(Some(id));
                            reload.update(|n| *n += 1);
                        })/>
                })
            }}
            {move || match data.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(l)) if l.items.is_empty() => view! {
                    <Empty message="还没有自查报告" hint="社区提交自查报告后会出现在这里。"/>
                }.into_any(),
                Some(Ok(l)) => view! { {table(&tenant, l.items, viewing)} }.into_any(),
            }}
        </section>
    }
}

fn table(tenant: &str, mut items: Vec<Item>, viewing: RwSignal<Option<String>>) -> impl IntoView {
    items.reverse();
    let rows = items
        .into_iter()
        .map(|i| {
            let id = i.self_inspection_id.clone();
            let title = ducha_events::self_inspection::display_title(&i.community.name, i.year, &i.title);
            let base = format!("/tenants/{tenant}/self-inspections/{id}");
            let (open_id, row_id) = (id.clone(), id.clone());
            let is_open = move || viewing.get().as_deref() == Some(open_id.as_str());
            let toggle = {
                let id = id.clone();
                move |_| {
                    viewing.update(|v| *v = if v.as_deref() == Some(id.as_str()) { None } else { Some(id.clone()) })
                }
            };
            let open_now = is_open.clone();
            let community = i.community.community_id.clone().unwrap_or_default();
            view! {
                <tr data-testid="self-inspection-row" data-id=row_id data-community=community>
                    <td data-testid="self-inspection-title">{title.clone()}</td>
                    <td>{i.community.name.clone()}</td>
                    <td>{i.year}</td>
                    <td>{i.inspection_id.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>{i.submitted_on.map(format::date).unwrap_or_default()}</td>
                    <td>
                        <button type="button" class="link" data-testid="self-inspection-view" on:click=toggle>
                            {move || if is_open() { "收起" } else { "查看" }}
                        </button>
                    </td>
                </tr>
                {move || open_now().then(|| view! {
                    <tr class="detail-row"><td colspan="6"><Preview base=base.clone() title=title.clone()/></td></tr>
                })}
            }
        })
        .collect_view();
    view! {
        <table class="table" data-testid="self-inspection-list">
            <thead><tr><th>"标题"</th><th>"社区"</th><th>"年度"</th><th>"对应督查"</th><th>"提交日期"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// The report as the document prints it (the server's HTML, in a sandboxed frame) and its Word file.
#[component]
fn Preview(base: String, title: String) -> impl IntoView {
    let st = use_app();
    let html_path = format!("{base}/document?format=html");
    let html = LocalResource::new(move || st.api.get_text(&html_path));
    let dl_error = RwSignal::new(None::<ApiError>);
    let download = move |_| {
        let (path, name) = (format!("{base}/document"), format!("{title}.docx"));
        spawn_local(async move { dl_error.set(st.api.download(&path, &name).await.err()) });
    };
    view! {
        <div class="self-inspection-preview">
            <button type="button" class="button secondary" data-testid="self-inspection-download" on:click=download>
                "下载自查报告（Word）"
            </button>
            {move || dl_error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || match html.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(h)) => view! {
                    <iframe class="report-preview" sandbox="allow-same-origin" srcdoc=check::preview_html(&h)
                        title="自查报告预览" data-testid="self-inspection-preview"></iframe>
                }.into_any(),
            }}
        </div>
    }
}

#[component]
fn Editor(
    tenant: String,
    communities: Vec<(String, String)>,
    answerable: Vec<Answerable>,
    on_done: Callback<(String, String)>,
) -> impl IntoView {
    let st = use_app();
    let community = RwSignal::new(communities.first().map(|(c, _)| c.clone()).unwrap_or_default());
    let year = RwSignal::new(today().year().to_string());
    let title = RwSignal::new(String::new());
    let opening = RwSignal::new(String::new());
    let inspection = RwSignal::new(String::new());
    let next_key = StoredValue::new(0u32);
    let new_draft = move |level: u8, t: &str| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        Draft {
            key,
            level: RwSignal::new(level),
            title: RwSignal::new(t.to_owned()),
            text: RwSignal::new(String::new()),
        }
    };
    let drafts = RwSignal::new(Vec::<Draft>::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let fill = move |_| drafts.update(|d| d.extend(COMMON_OUTLINE.iter().map(|t| new_draft(1, t))));
    let add = move |level: u8| move |_| drafts.update(|d| d.push(new_draft(level, "")));

    let submit = {
        let tenant = tenant.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let sections: Vec<ReportSection> = drafts
                .get_untracked()
                .iter()
                .map(|d| ReportSection {
                    level: d.level.get_untracked(),
                    title: d.title.get_untracked(),
                    text: d.text.get_untracked(),
                })
                .collect();
            let Ok(y) = year.get_untracked().trim().parse::<i32>() else {
                error.set(Some(client_error("year", "年度应为四位数字，如 2025".into())));
                return;
            };
            // The server's own rules, here first: the message names the section at fault.
            if let Err(e) = ducha_events::self_inspection::check_sections(&opening.get_untracked(), &sections) {
                error.set(Some(client_error(e.field().unwrap_or_default(), e.to_string())));
                return;
            }
            let body = serde_json::json!({
                "community_id": community.get_untracked(),
                "year": y,
                "title": title.get_untracked().trim(),
                "text": opening.get_untracked(),
                "inspection_id": Some(inspection.get_untracked()).filter(|i| !i.is_empty()),
                "sections": sections,
            });
            busy.set(true);
            error.set(None);
            let path = format!("/tenants/{tenant}/self-inspections");
            let shown = match title.get_untracked().trim() {
                "" => format!("{y}年度自查报告"),
                t => t.to_owned(),
            };
            spawn_local(async move {
                let r = st.api.post::<_, CommandAccepted>(&path, &body).await;
                busy.set(false);
                match r {
                    Ok(done) => on_done.run((done.id, shown)),
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    let community_options =
        communities.iter().map(|(c, n)| view! { <option value=c.clone()>{n.clone()}</option> }).collect_view();
    let inspection_options = move || {
        let c = community.get();
        answerable
            .iter()
            .filter(|a| a.communities.contains(&c))
            .map(
                |a| view! { <option value=a.inspection_id.clone()>{format!("{}（{}年度）", a.title, a.year)}</option> },
            )
            .collect_view()
    };
    let field_error = move |field: String| {
        move || {
            error.get().filter(|e| e.field.as_deref() == Some(field.as_str())).map(|e| {
                view! { <p class="field-error" role="alert" data-testid="field-error" data-field=field.clone()>{e.detail}</p> }
            })
        }
    };
    let general_error = move || {
        error
            .get()
            .filter(|e| e.field.as_deref().is_none_or(|f| !(f.starts_with("sections[") || f == "year")))
            .map(|e| view! { <ErrorBox error=e/> })
    };
    let rows = move || {
        let list = drafts.get();
        let numbers = outline_numbers(list.iter().map(|d| d.level.get()));
        let count = list.len();
        list.into_iter()
            .zip(numbers)
            .enumerate()
            .map(|(i, (d, number))| {
                let remove = move |_| drafts.update(|v| v.retain(|x| x.key != d.key));
                let up = move |_| drafts.update(|v| if i > 0 && i < v.len() { v.swap(i - 1, i) });
                let down = move |_| drafts.update(|v| if i + 1 < v.len() { v.swap(i, i + 1) });
                view! {
                    <li class=format!("section-draft level-{}", d.level.get_untracked()) data-testid="section-draft">
                        <div class="section-head">
                            <span class="section-number" data-testid="section-number">{number}</span>
                            <select data-testid="section-level" aria-label="层级"
                                on:change=move |ev| d.level.set(event_target_value(&ev).parse().unwrap_or(1))
                                prop:value=move || d.level.get().to_string()>
                                <option value="1">"一级（一、）"</option>
                                <option value="2">"二级（（一））"</option>
                                <option value="3">"三级（1.）"</option>
                            </select>
                            <input type="text" data-testid="section-title" placeholder="标题，如：工作开展情况"
                                prop:value=move || d.title.get() on:input=move |ev| d.title.set(event_target_value(&ev))/>
                            <button type="button" class="link" on:click=up disabled=i == 0 title="上移">"↑"</button>
                            <button type="button" class="link" on:click=down disabled=i + 1 == count title="下移">"↓"</button>
                            <button type="button" class="link danger" data-testid="section-remove" on:click=remove>"删除"</button>
                        </div>
                        {field_error(format!("sections[{i}].level"))}
                        {field_error(format!("sections[{i}].title"))}
                        <textarea rows="4" data-testid="section-text" placeholder="正文（可分多段，每段一行；数字照实填写）"
                            prop:value=move || d.text.get() on:input=move |ev| d.text.set(event_target_value(&ev))></textarea>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <form class="panel form self-inspection-editor" data-testid="self-inspection-form" on:submit=submit>
            <h2>"撰写自查报告"</h2>
            <div class="grid2">
                <label>"社区"<select data-testid="self-inspection-community"
                    on:change=move |ev| community.set(event_target_value(&ev))>{community_options}</select></label>
                <label>"年度"<input type="number" min="2000" max="2100" data-testid="self-inspection-year"
                    prop:value=move || year.get() on:input=move |ev| year.set(event_target_value(&ev))/></label>
            </div>
            {field_error("year".to_owned())}
            <label>"标题（可不填，默认为“社区＋年度＋自查报告”）"
                <input type="text" data-testid="self-inspection-title-input" placeholder="如：东风社区2025年度意识形态工作自查报告"
                    prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/></label>
            <label>"对应督查（可不选）"
                <select data-testid="self-inspection-inspection" on:change=move |ev| inspection.set(event_target_value(&ev))>
                    <option value="">"不对应具体督查"</option>
                    {inspection_options}
                </select></label>
            <label>"开头（可不填）"
                <textarea rows="3" data-testid="self-inspection-opening" placeholder="如：按照街道党工委要求，社区党委对照考核细则开展了自查，现将有关情况报告如下："
                    prop:value=move || opening.get() on:input=move |ev| opening.set(event_target_value(&ev))></textarea></label>
            {field_error("text".to_owned())}
            <h3>"正文各部分"</h3>
            <p class="muted small">"编号按层级自动生成，与导出的 Word 文件一致；标题前无需输入编号。"</p>
            <ol class="plain section-drafts">{rows}</ol>
            {field_error("sections".to_owned())}
            <div class="actions">
                <button type="button" class="button secondary" data-testid="section-fill" on:click=fill>"插入常用提纲"</button>
                <button type="button" class="button secondary" data-testid="section-add-1" on:click=add(1)>"添加一级标题"</button>
                <button type="button" class="button secondary" data-testid="section-add-2" on:click=add(2)>"添加二级标题"</button>
                <button type="button" class="button secondary" data-testid="section-add-3" on:click=add(3)>"添加三级标题"</button>
            </div>
            {general_error}
            <div class="actions">
                <button type="submit" class="button" data-testid="self-inspection-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "正在提交…" } else { "提交自查报告" }}
                </button>
            </div>
        </form>
    }
}

fn client_error(field: &str, detail: String) -> ApiError {
    ApiError {
        status: 0,
        code: "client_validation".into(),
        title: "请检查填写的内容".into(),
        detail,
        field: Some(field.to_owned()),
    }
}
