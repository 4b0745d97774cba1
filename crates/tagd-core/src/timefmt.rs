//! Times are kept as Unix seconds and shown as `YYYY-MM-DD HH:MM:SS` in UTC (API.md §1).

use time::macros::format_description;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC. Every listed assignment shows two of these, so the common
/// case (years 0–9999) is written digit by digit rather than through a format description,
/// which costs several times more per call.
pub fn format_unix(secs: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
        return EPOCH.to_owned();
    };
    let Ok(year) = u32::try_from(t.year()) else {
        return described(secs);
    };
    if year > 9999 {
        return described(secs);
    }
    let mut out = String::with_capacity(19);
    let mut digits = |value: u32, width: u32| {
        for place in (0..width).rev() {
            let digit = value / 10u32.pow(place) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
    };
    digits(year, 4);
    digits(u32::from(u8::from(t.month())), 2);
    digits(u32::from(t.day()), 2);
    digits(u32::from(t.hour()), 2);
    digits(u32::from(t.minute()), 2);
    digits(u32::from(t.second()), 2);
    for (at, separator) in [(4, '-'), (7, '-'), (10, ' '), (13, ':'), (16, ':')] {
        out.insert(at, separator);
    }
    out
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The end of day `YYYY-MM-DD` (UTC): the first second of the day after, in Unix seconds.
/// v2's `expiryDate` names the last day a label counts.
pub fn parse_date_end(text: &str) -> Option<i64> {
    let format = format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .ok()
        .map(|day| day.midnight().assume_utc().unix_timestamp() + 86_400)
}

/// The day (`YYYY-MM-DD`, UTC) whose end `end` is, or in which it falls: the day before the
/// instant's second, so an end made by [`parse_date_end`] shows its own date again.
pub fn format_date_ending(end: i64) -> String {
    let mut text = format_unix(end - 1);
    text.truncate(10);
    text
}

const EPOCH: &str = "1970-01-01 00:00:00";

/// The same through `time`'s format description, for years a fixed width cannot hold.
fn described(secs: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| EPOCH.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_as_the_seed_shows_them() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00");
        assert_eq!(format_unix(1_704_282_898), "2024-01-03 11:54:58");
    }

    #[test]
    fn an_expiry_date_ends_with_its_day() {
        let end = parse_date_end("2027-03-01").unwrap_or_default();
        assert_eq!(format_unix(end), "2027-03-02 00:00:00");
        assert_eq!(format_date_ending(end), "2027-03-01");
        assert_eq!(format_date_ending(end + 3_600), "2027-03-02");
        assert_eq!(parse_date_end("2027-02-30"), None);
        assert_eq!(parse_date_end("2027-03-01 00:00:00"), None);
    }

    #[test]
    fn a_time_parses_back_to_its_seconds() {
        assert_eq!(parse_time("2024-01-03 11:54:58"), Some(1_704_282_898));
        assert_eq!(parse_time("2024-01-03T11:54:58"), None);
        assert_eq!(parse_time("2024-02-30 00:00:00"), None);
    }

    #[test]
    fn the_fast_path_agrees_with_the_format_description() {
        let mut secs = -62_167_219_200; // 0000-01-01
        while secs < 253_402_300_800 {
            // up to 9999-12-31
            assert_eq!(format_unix(secs), described(secs), "{secs}");
            secs += 7_777_777;
        }
        assert_eq!(format_unix(253_402_300_799), "9999-12-31 23:59:59");
    }
}
