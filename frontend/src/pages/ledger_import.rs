//! 导入整改台账 (issue 14): choose a workbook, check it (a dry run: what would be created and every
//! problem by sheet, row and column), map the columns of another layout to Ducha's fields, then
//! import. Sub-district admins (and the platform admin) only; the server checks again.

use crate::components::{ErrorBox, Link};
use crate::import_mapping::{mapping_json, mapping_of};
use crate::problem::ApiError;
use crate::route::Route;
use crate::state::use_app;
use ducha_events::ledger_import::{LedgerImportReport, Mapping};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn LedgerImportPage(tenant: String) -> impl IntoView {
    let st = use_app();
    let path = StoredValue::new(format!("/tenants/{tenant}/ledger/import"));
    let ledger = Route::Ledger { tenant: tenant.clone() }.path();
    let file_ref = NodeRef::<html::Input>::new();
    let report = RwSignal::new(None::<LedgerImportReport>);
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let mapping = RwSignal::new(Mapping::new());
    let use_mapping = RwSignal::new(false);
    let done = RwSignal::new(None::<LedgerImportReport>);

    let send = move |dry_run: bool| {
        let Some(file) = file_ref.get_untracked().and_then(|i| i.files()).and_then(|l| l.get(0)) else {
            error.set(Some(ApiError::local("file", "请选择要导入的 Excel 文件（.xlsx）")));
            return;
        };
        let parts = if use_mapping.get_untracked() { mapping_json(&mapping.get_untracked()) } else { None };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let url = format!("{}?dry_run={dry_run}", path.get_value());
            let extra: Vec<(&str, &str)> = parts.as_deref().map(|m| vec![("mapping", m)]).unwrap_or_default();
            let res = st.api.upload_with::<LedgerImportReport>(&url, &file, &extra).await;
            busy.set(false);
            match res {
                Ok(r) if dry_run => {
                    if !use_mapping.get_untracked() {
                        mapping.set(mapping_of(&r));
                    }
                    // A file whose headings are not recognised goes to the mapping step.
                    if r.header_row == 0 {
                        use_mapping.set(true);
                    }
                    report.set(Some(r));
                    done.set(None);
                }
                Ok(r) => {
                    report.set(None);
                    done.set(Some(r));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    view! {
        <section class="page" data-page="ledger-import">
            <div class="page-head">
                <h1>"导入整改台账"</h1>
                <Link to=ledger.clone() testid="import-back">"返回整改台账"</Link>
            </div>
            <p class="hint">"可导入本系统导出的整改台账，或其他格式的 Excel 台账（先检查，再指定各列对应的内容）。"
                "导入的问题保留原发现、交办、整改时限和销号日期；同一文件重复导入不会重复添加。"</p>
            <form class="admin-form" data-testid="import-form" on:submit=move |ev| { ev.prevent_default(); send(true) }>
                <label class="field"><span>"台账文件（.xlsx）"</span>
                    <input type="file" accept=".xlsx" data-testid="import-file" node_ref=file_ref
                        on:change=move |_| { report.set(None); done.set(None); use_mapping.set(false); mapping.set(Mapping::new()); }/>
                </label>
                <button type="submit" class="primary" data-testid="action-check" disabled=move || busy.get()>
                    {move || if busy.get() { "正在处理…" } else { "检查文件" }}
                </button>
            </form>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || done.get().map(|r| view! {
                <div class="state state-ok" role="status" data-testid="import-done">
                    {format!("已导入：问题{}条（新增来源{}个）", r.created.findings, r.created.inspections)}
                    {(r.already_imported > 0).then(|| format!("；{}条此前已导入，未重复添加", r.already_imported))}
                    " " <Link to=ledger.clone() testid="import-to-ledger">"查看整改台账"</Link>
                </div>
            })}
            {move || report.get().map(|r| {
                let ok = r.problems.is_empty() && r.header_row > 0;
                let can_import = ok && r.created.findings > 0;
                let headings = r.headings.clone();
                let fields = r.fields.clone();
                let problems = r.problems.clone();
                let preview = r.preview.clone();
                view! {
                    <div class="import-report" data-testid="import-report" data-ok=ok.to_string()>
                        <p data-testid="import-summary">
                            {format!("工作表“{}”，表头在第{}行，数据{}行：将新增问题{}条、新来源{}个；此前已导入{}条。",
                                r.sheet, r.header_row, r.rows_read, r.created.findings, r.created.inspections, r.already_imported)}
                        </p>
                        {(!problems.is_empty()).then(|| view! {
                            <h2>{format!("发现{}处问题（修改文件后重新检查；有问题时不会导入任何内容）", problems.len())}</h2>
                            <table class="table" data-testid="import-problems">
                                <thead><tr><th>"工作表"</th><th>"行"</th><th>"列"</th><th>"问题"</th></tr></thead>
                                <tbody>{problems.into_iter().map(|p| {
                                    let column = p.column.unwrap_or_default();
                                    let data_column = column.clone();
                                    view! {
                                        <tr data-testid="import-problem" data-row=p.row.to_string() data-column=data_column>
                                            <td>{p.sheet}</td>
                                            <td>{if p.row > 0 { p.row.to_string() } else { "—".to_owned() }}</td>
                                            <td>{column}</td>
                                            <td>{p.message}</td>
                                        </tr>
                                    }
                                }).collect_view()}</tbody>
                            </table>
                        })}
                        <details class="mapping" data-testid="import-mapping" prop:open=move || use_mapping.get()>
                            <summary>"各列对应的内容（其他格式的台账）"</summary>
                            <div class="form-grid">
                                {fields.into_iter().map(|f| {
                                    let field = f.field;
                                    let options = headings.clone();
                                    let label = if f.required { format!("{}（必填）", f.heading) } else { f.heading.clone() };
                                    view! {
                                        <label class="field"><span>{label}</span>
                                            <select data-testid=format!("map-{}", serde_json::to_value(field).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                                                prop:value=move || mapping.with(|m| m.get(&field).cloned().unwrap_or_default())
                                                on:change=move |ev| {
                                                    let v = event_target_value(&ev);
                                                    use_mapping.set(true);
                                                    mapping.update(|m| { if v.is_empty() { m.remove(&field); } else { m.insert(field, v); } });
                                                }>
                                                <option value="">"（不导入）"</option>
                                                {options.into_iter().filter(|h| !h.is_empty()).map(|h| view! { <option value=h.clone()>{h.clone()}</option> }).collect_view()}
                                            </select>
                                        </label>
                                    }
                                }).collect_view()}
                            </div>
                            <button type="button" data-testid="action-recheck" disabled=move || busy.get()
                                on:click=move |_| { use_mapping.set(true); send(true) }>"按此对应重新检查"</button>
                        </details>
                        {(!preview.is_empty()).then(|| view! {
                            <table class="table" data-testid="import-preview">
                                <thead><tr><th>"行"</th><th>"来源"</th><th>"社区"</th><th>"问题类别"</th><th>"问题"</th><th>"完成情况"</th><th>"整改时限"</th></tr></thead>
                                <tbody>{preview.into_iter().take(50).map(|p| view! {
                                    <tr><td>{p.row}</td><td>{p.source}</td><td>{p.community}</td><td>{p.category}</td><td>{p.title}</td>
                                        <td>{p.status_name}</td><td>{p.deadline.map(|d| d.to_string()).unwrap_or_default()}</td></tr>
                                }).collect_view()}</tbody>
                            </table>
                        })}
                        <button type="button" class="primary" data-testid="action-import" disabled=move || busy.get() || !can_import
                            on:click=move |_| send(false)>
                            {format!("确认导入{}条", r.created.findings)}
                        </button>
                    </div>
                }
            })}
        </section>
    }
}
