//! The column mapping of the 导入整改台账 page (issue 14). Pure, tested on the host.

use ducha_events::ledger_import::{LedgerImportReport, Mapping};

/// The mapping part to send: every field with a chosen column (none: let the server recognise
/// Ducha's own headings).
pub fn mapping_json(mapping: &Mapping) -> Option<String> {
    (!mapping.is_empty()).then(|| serde_json::to_string(mapping).unwrap_or_default())
}

/// The mapping the report suggests: the columns the server read, by their headings.
pub fn mapping_of(report: &LedgerImportReport) -> Mapping {
    report.columns.iter().filter(|c| !c.heading.is_empty()).map(|c| (c.field, c.heading.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::ledger_import::{Field, ImportColumn};

    #[test]
    fn the_suggested_mapping_is_the_columns_read_by_heading() {
        let report = LedgerImportReport {
            dry_run: true,
            imported: false,
            file_name: "a.xlsx".into(),
            file_sha256: String::new(),
            sheet: "Sheet1".into(),
            header_row: 1,
            columns: vec![
                ImportColumn { field: Field::Problem, heading: "问题描述".into(), column: "A".into() },
                ImportColumn { field: Field::Community, heading: String::new(), column: "B".into() },
            ],
            headings: vec!["问题描述".into(), String::new()],
            fields: vec![],
            rows_read: 0,
            created: Default::default(),
            already_imported: 0,
            problems: vec![],
            preview: vec![],
            last_position: None,
        };
        let m = mapping_of(&report);
        assert_eq!(m.len(), 1);
        assert_eq!(mapping_json(&m).as_deref(), Some(r#"{"problem":"问题描述"}"#));
        assert_eq!(mapping_json(&Mapping::new()), None);
    }
}
