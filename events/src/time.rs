//! Timestamps. Stored and hashed as RFC 3339 UTC with exactly six fractional digits
//! (`2023-03-01T08:00:00.000000Z`), so that text order is time order and the chain's bytes are fixed.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

/// The one text form of a timestamp in the store and the chain.
pub fn format(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses any RFC 3339 time (any offset) into UTC.
pub fn parse(s: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc))
}

/// Asia/Shanghai (UTC+8, no daylight saving): the zone users live in.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// The calendar date in Asia/Shanghai at a given instant (deadlines are Shanghai dates).
pub fn local_date(ts: &Timestamp) -> NaiveDate {
    ts.with_timezone(&shanghai()).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_fixed_width_utc() {
        let t = parse("2023-03-01T08:00:00+08:00").unwrap();
        assert_eq!(format(&t), "2023-03-01T00:00:00.000000Z");
        assert_eq!(local_date(&parse("2023-02-28T17:00:00Z").unwrap()).to_string(), "2023-03-01");
    }
}
