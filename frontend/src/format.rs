//! Formatting for people: every time is shown in Asia/Shanghai (UTC+8, no daylight saving, so a
//! fixed offset is exact), dates as `YYYY-MM-DD`, times as `YYYY-MM-DD HH:mm`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Asia/Shanghai.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC offset"))
}

/// `2024-03-05 14:07` in Asia/Shanghai.
pub fn datetime(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai()).format("%Y-%m-%d %H:%M").to_string()
}

/// An RFC 3339 time from the API (`2024-03-05T06:07:00Z`) shown in Asia/Shanghai; unparsable
/// input is shown as it came.
pub fn rfc3339(s: &str) -> String {
    DateTime::parse_from_rfc3339(s).map(|t| datetime(t.with_timezone(&Utc))).unwrap_or_else(|_| s.to_owned())
}

/// `2024-03-05`.
pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Milliseconds since the epoch (the browser's `Date.now()`) as a Shanghai wall-clock time.
pub fn from_epoch_millis(ms: f64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp_millis(ms as i64).map(|t| t.with_timezone(&shanghai()).naive_local())
}

/// The value of an `<input type="datetime-local">` (`2024-03-05T14:07`, seconds optional), read
/// as a Shanghai wall-clock time.
pub fn parse_local_input(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

/// The same wall-clock time as the value of an `<input type="datetime-local">`.
pub fn local_input_value(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// The `as_of` query parameter for a Shanghai wall-clock time: `2024-03-05T14:07:00+08:00`.
pub fn as_of_param(t: NaiveDateTime) -> String {
    match shanghai().from_local_datetime(&t).single() {
        Some(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S")),
    }
}

/// The banner shown on every page while the global "as of" is set.
pub fn as_of_banner(t: NaiveDateTime) -> String {
    format!("历史视图：{}（只读）", t.format("%Y-%m-%d %H:%M"))
}

/// A percentage with one decimal, or "—" when there is nothing to divide by (never "0 %").
pub fn percent(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("{p:.1}%"),
        None => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        parse_local_input(s).unwrap()
    }

    #[test]
    fn times_are_shown_in_shanghai() {
        let t = DateTime::parse_from_rfc3339("2023-12-31T16:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(datetime(t), "2024-01-01 00:30");
        assert_eq!(rfc3339("2024-03-05T06:07:59Z"), "2024-03-05 14:07");
        assert_eq!(rfc3339("2024-03-05T14:07:00+08:00"), "2024-03-05 14:07");
        assert_eq!(rfc3339("not a time"), "not a time");
        assert_eq!(date(NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()), "2024-03-05");
        // 2024-01-01T00:00:00Z in milliseconds.
        assert_eq!(from_epoch_millis(1_704_067_200_000.0), Some(at("2024-01-01T08:00")));
    }

    #[test]
    fn as_of_round_trips_through_the_picker_the_banner_and_the_query() {
        let t = at("2024-03-05T14:07");
        assert_eq!(
            parse_local_input("2024-03-05T14:07:30"),
            NaiveDate::from_ymd_opt(2024, 3, 5).unwrap().and_hms_opt(14, 7, 30)
        );
        assert_eq!(parse_local_input("2024-03-05"), None);
        assert_eq!(parse_local_input(""), None);
        assert_eq!(local_input_value(t), "2024-03-05T14:07");
        assert_eq!(as_of_param(t), "2024-03-05T14:07:00+08:00");
        assert_eq!(as_of_banner(t), "历史视图：2024-03-05 14:07（只读）");
    }

    #[test]
    fn percentages_never_show_zero_for_nothing() {
        assert_eq!(percent(Some(33.3)), "33.3%");
        assert_eq!(percent(Some(100.0)), "100.0%");
        assert_eq!(percent(None), "—");
    }
}
