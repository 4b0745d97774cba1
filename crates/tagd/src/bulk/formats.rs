//! The two file formats of bulk import and export, read and written as streams.
//!
//! - **CSV**: a header line naming the columns, then one row a line (RFC 4180 quoting, so a
//!   value may hold commas, quotes and line breaks). Import reads the columns `user_id`,
//!   `tags_group_id`, `variable_name`, `value` in any order, each optional but `user_id`, and
//!   ignores the others; an empty cell is an absent field, except `value`, where it is the
//!   empty string.
//! - **NDJSON**: one JSON object a line with the same keys, each a string, `null` or absent;
//!   other keys are ignored, blank lines skipped.
//!
//! Export writes the import's columns plus `attribute`, `version`, `source`, `mtime`, so its
//! output imports back unchanged.

use clap::ValueEnum;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use tagd_core::bulk::{ExportRow, ExportUser, RawRow, Refusal, EXPORT_COLUMNS, IMPORT_COLUMNS};
use tagd_core::timefmt::format_unix;

/// Longest NDJSON line, in bytes; a longer one is refused (a valid row is far shorter).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    /// The format a file name implies: `.csv`, or `.ndjson` / `.jsonl`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            _ => None,
        }
    }

    /// The format asked for, else the one the file name implies.
    pub fn choose(asked: Option<Self>, path: Option<&Path>) -> Result<Self, String> {
        asked
            .or_else(|| path.and_then(Self::from_path))
            .ok_or_else(|| {
                "give --format csv or --format ndjson (the file name does not end in \
             .csv, .ndjson or .jsonl)"
                    .to_owned()
            })
    }
}

/// One row read: the line it starts on, and its fields or why it is not a row.
#[derive(Debug)]
pub struct ReadRow {
    pub line: u64,
    pub fields: Result<RawRow, Refusal>,
}

/// Rows read one at a time from a stream.
pub trait RowSource: Send {
    /// The next row, `None` at the end. An error is an I/O error, which ends the import.
    fn next_row(&mut self) -> io::Result<Option<ReadRow>>;
    /// Bytes consumed so far, for progress.
    fn bytes_read(&self) -> u64;
}

/// A row source over `input` in `format`. A CSV input's header line is read here.
pub fn rows<R: BufRead + Send + 'static>(
    format: Format,
    input: R,
) -> io::Result<Box<dyn RowSource>> {
    Ok(match format {
        Format::Csv => Box::new(CsvRows::new(input)?),
        Format::Ndjson => Box::new(NdjsonRows {
            input,
            line: 0,
            bytes: 0,
            buf: Vec::new(),
        }),
    })
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

/// Passes bytes through, noting where each line feed is, so a record's first line is known
/// exactly (the csv crate's own line count skips blank lines and sees a CRLF late).
struct LineFeeds<R> {
    inner: R,
    offset: u64,
    /// Line feeds read ahead of what the parser consumed.
    pending: VecDeque<u64>,
}

impl<R: Read> Read for LineFeeds<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.offset;
        self.pending.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| start + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineFeeds<R> {
    /// Takes the line feeds before byte `end`: how many, and whether one is at `end - 1`.
    fn take_before(&mut self, end: u64) -> (u64, bool) {
        let (mut count, mut last) = (0, None);
        while let Some(&at) = self.pending.front().filter(|&&at| at < end) {
            self.pending.pop_front();
            count += 1;
            last = Some(at);
        }
        (count, last.is_some_and(|at| at + 1 == end))
    }
}

struct CsvRows<R: Read> {
    reader: csv::Reader<LineFeeds<R>>,
    /// Line feeds before the parser's position.
    feeds: u64,
    /// Where each of [`IMPORT_COLUMNS`] is in a record.
    columns: [Option<usize>; 4],
    record: csv::ByteRecord,
}

impl<R: Read> CsvRows<R> {
    fn new(input: R) -> io::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(LineFeeds {
                inner: input,
                offset: 0,
                pending: VecDeque::new(),
            });
        let headers = reader.byte_headers().map_err(csv_error)?.clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_owned()
            })
            .collect();
        let columns = IMPORT_COLUMNS.map(|c| names.iter().position(|n| n == c));
        if columns[0].is_none() && !names.iter().all(String::is_empty) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the CSV header line must name a user_id column (it names: {}); \
                     the columns read are {}",
                    names.join(","),
                    IMPORT_COLUMNS.join(",")
                ),
            ));
        }
        Ok(CsvRows {
            reader,
            feeds: 0,
            columns,
            record: csv::ByteRecord::new(),
        })
    }

    fn field(&self, k: usize) -> Result<Option<String>, Refusal> {
        let Some(bytes) = self.columns[k].and_then(|i| self.record.get(i)) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Refusal::Malformed(format!("the `{}` cell is not UTF-8", IMPORT_COLUMNS[k]))
        })?;
        // An empty cell is an absent field, but for `value`, where it is the empty string.
        let text = super::spreadsheet::restore(text);
        Ok((k == 3 || !text.is_empty()).then(|| text.into_owned()))
    }

    fn fields(&self) -> Result<RawRow, Refusal> {
        Ok(RawRow {
            user_id: self.field(0)?,
            tags_group_id: self.field(1)?,
            variable_name: self.field(2)?,
            value: self.field(3)?,
        })
    }
}

impl<R: Read + Send> RowSource for CsvRows<R> {
    fn next_row(&mut self) -> io::Result<Option<ReadRow>> {
        if self.columns[0].is_none() {
            return Ok(None);
        }
        if !self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(csv_error)?
        {
            return Ok(None);
        }
        // The record's first line: 1 + the line feeds before its end, less those inside its
        // fields and its own terminating one (consumed with it unless the line ends in CRLF).
        let end = self.reader.position().byte();
        let (feeds, ends_in_feed) = self.reader.get_mut().take_before(end);
        self.feeds += feeds;
        let inside = self
            .record
            .as_slice()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        let line = (1 + self.feeds).saturating_sub(inside + u64::from(ends_in_feed));
        Ok(Some(ReadRow {
            line,
            fields: self.fields(),
        }))
    }

    fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }
}

struct NdjsonRows<R> {
    input: R,
    line: u64,
    bytes: u64,
    buf: Vec<u8>,
}

/// Reads one line (with its `\n`) into `buf`, keeping at most `max` bytes of it; returns the
/// bytes consumed (0 at the end) and whether the line was cut.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool)> {
    let (mut consumed, mut cut) = (0, false);
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (len, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + len <= max {
            buf.extend_from_slice(&available[..len]);
        } else {
            cut = true;
        }
        input.consume(len);
        consumed += len;
        if done {
            return Ok((consumed, cut));
        }
    }
}

/// The fields of one NDJSON line.
pub fn json_fields(line: &[u8]) -> Result<RawRow, Refusal> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| Refusal::Malformed(format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Refusal::Malformed("not a JSON object".into()));
    };
    let field = |key: &str| match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::InvalidField {
            field: key.into(),
            message: "must be a JSON string".into(),
        }),
    };
    Ok(RawRow {
        user_id: field("user_id")?,
        tags_group_id: field("tags_group_id")?,
        variable_name: field("variable_name")?,
        value: field("value")?,
    })
}

impl<R: BufRead + Send> RowSource for NdjsonRows<R> {
    fn next_row(&mut self) -> io::Result<Option<ReadRow>> {
        loop {
            self.buf.clear();
            let (consumed, cut) =
                read_line_bounded(&mut self.input, &mut self.buf, MAX_LINE_BYTES)?;
            if consumed == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.bytes += consumed as u64;
            if cut {
                return Ok(Some(ReadRow {
                    line: self.line,
                    fields: Err(Refusal::Malformed(format!(
                        "line longer than {MAX_LINE_BYTES} bytes"
                    ))),
                }));
            }
            let mut text: &[u8] = &self.buf;
            if self.line == 1 {
                text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(ReadRow {
                line: self.line,
                fields: json_fields(text),
            }));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// Rows written one at a time to a stream.
pub trait RowSink {
    fn assignment(&mut self, row: &ExportRow) -> io::Result<()>;
    fn user(&mut self, user: &ExportUser) -> io::Result<()>;
    /// Flushes what is buffered.
    fn finish(&mut self) -> io::Result<()>;
}

/// A sink writing `format` to `output`; a CSV sink writes its header line first.
pub fn sink<W: Write + 'static>(format: Format, output: W) -> io::Result<Box<dyn RowSink>> {
    Ok(match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(output);
            writer.write_record(EXPORT_COLUMNS).map_err(csv_error)?;
            Box::new(CsvSink(writer))
        }
        Format::Ndjson => Box::new(NdjsonSink(output)),
    })
}

struct CsvSink<W: Write>(csv::Writer<W>);

impl<W: Write> RowSink for CsvSink<W> {
    /// Every cell goes through [`super::spreadsheet::neutralize`], so no cell of an export
    /// runs as a formula when the file is opened in a spreadsheet.
    fn assignment(&mut self, row: &ExportRow) -> io::Result<()> {
        let value = row.value.to_text();
        let (version, mtime) = (row.version.to_string(), format_unix(row.mtime));
        let cells = [
            row.user_id.as_str(),
            row.tags_group_id.as_str(),
            row.variable_name.as_str(),
            row.attribute.as_str(),
            &value,
            &version,
            row.source.as_str(),
            &mtime,
        ];
        self.0
            .write_record(
                cells
                    .map(super::spreadsheet::neutralize)
                    .iter()
                    .map(|c| c.as_bytes()),
            )
            .map_err(csv_error)
    }

    fn user(&mut self, user: &ExportUser) -> io::Result<()> {
        let user_id = super::spreadsheet::neutralize(user.user_id.as_str());
        let mut record: [&str; EXPORT_COLUMNS.len()] = [""; EXPORT_COLUMNS.len()];
        record[0] = &user_id;
        self.0.write_record(record).map_err(csv_error)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

struct NdjsonSink<W: Write>(W);

impl<W: Write> NdjsonSink<W> {
    fn line(&mut self, object: Map<String, Value>) -> io::Result<()> {
        serde_json::to_writer(&mut self.0, &object)?;
        self.0.write_all(b"\n")
    }
}

impl<W: Write> RowSink for NdjsonSink<W> {
    fn assignment(&mut self, row: &ExportRow) -> io::Result<()> {
        let fields: [(&str, Value); 8] = [
            ("user_id", row.user_id.as_str().into()),
            ("tags_group_id", row.tags_group_id.as_str().into()),
            ("variable_name", row.variable_name.as_str().into()),
            ("attribute", row.attribute.as_str().into()),
            ("value", row.value.to_text().into()),
            ("version", row.version.into()),
            ("source", row.source.as_str().into()),
            ("mtime", format_unix(row.mtime).into()),
        ];
        self.line(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn user(&mut self, user: &ExportUser) -> io::Result<()> {
        let mut object = Map::new();
        object.insert("user_id".into(), user.user_id.as_str().into());
        self.line(object)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_all(format: Format, input: &str) -> Vec<(u64, Result<RawRow, Refusal>)> {
        let mut source = rows(format, Cursor::new(input.as_bytes().to_vec())).expect("opens");
        let mut out = Vec::new();
        while let Some(row) = source.next_row().expect("reads") {
            out.push((row.line, row.fields));
        }
        out
    }

    fn raw(user: &str, id: Option<&str>, var: Option<&str>, value: Option<&str>) -> RawRow {
        RawRow {
            user_id: Some(user.into()),
            tags_group_id: id.map(Into::into),
            variable_name: var.map(Into::into),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn csv_columns_are_found_by_name_and_extra_ones_ignored() {
        let input = "\u{feff}value,extra,user_id,variable_name\r\n\
                     \"a, \"\"b\"\"\nc\",x,u1,city\n\
                     ,,u2,\n\
                     \n\
                     1,y,u3,spend\n";
        let rows = read_all(Format::Csv, input);
        assert_eq!(
            rows,
            vec![
                (2, Ok(raw("u1", None, Some("city"), Some("a, \"b\"\nc")))),
                (4, Ok(raw("u2", None, None, Some("")))),
                (6, Ok(raw("u3", None, Some("spend"), Some("1")))),
            ]
        );
    }

    #[test]
    fn csv_line_numbers_count_blank_lines_crlf_and_values_over_several_lines() {
        for eol in ["\n", "\r\n"] {
            let lines = ["user_id,value", "a,1", "", "", "b,\"x", "y\"", "", "c,2"];
            for end in ["", eol] {
                let input = lines.join(eol) + end;
                let read: Vec<u64> = read_all(Format::Csv, &input)
                    .into_iter()
                    .map(|(line, _)| line)
                    .collect();
                assert_eq!(read, vec![2, 5, 8], "{input:?}");
            }
        }
    }

    #[test]
    fn a_csv_header_without_user_id_is_refused_and_an_empty_file_has_no_rows() {
        let refused = rows(Format::Csv, Cursor::new(b"id,value\n1,2\n".to_vec()));
        assert!(refused.is_err());
        assert!(read_all(Format::Csv, "").is_empty());
        assert!(read_all(Format::Csv, "user_id,value\n").is_empty());
    }

    #[test]
    fn a_short_csv_record_lacks_its_last_columns() {
        let rows = read_all(
            Format::Csv,
            "user_id,tags_group_id,variable_name,value\nu1\n",
        );
        assert_eq!(rows, vec![(2, Ok(raw("u1", None, None, None)))]);
    }

    #[test]
    fn ndjson_lines_are_objects_of_strings() {
        let input = "{\"user_id\":\"u1\",\"variable_name\":\"vip\",\"value\":\"True\",\"x\":1}\n\
                     \n\
                     [1]\n\
                     {\"user_id\":\"u2\",\"value\":5,\"variable_name\":\"spend\"}\n\
                     {\"user_id\":\"u3\",\"tags_group_id\":null}\r\n\
                     not json";
        let rows = read_all(Format::Ndjson, input);
        let codes: Vec<(u64, &str)> = rows
            .iter()
            .map(|(line, r)| (*line, r.as_ref().map_or_else(Refusal::code, |_| "ok")))
            .collect();
        assert_eq!(
            codes,
            vec![
                (1, "ok"),
                (3, "malformed"),
                (4, "invalid_parameter"),
                (5, "ok"),
                (6, "malformed")
            ]
        );
        assert_eq!(
            rows[0].1.as_ref().ok(),
            Some(&raw("u1", None, Some("vip"), Some("True")))
        );
        assert_eq!(rows[3].1.as_ref().ok(), Some(&raw("u3", None, None, None)));
    }

    #[test]
    fn an_overlong_ndjson_line_is_refused_and_the_next_one_read() {
        let input = format!(
            "{{\"user_id\":\"{}\"}}\n{{\"user_id\":\"u2\"}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let rows = read_all(Format::Ndjson, &input);
        assert_eq!(rows.len(), 2);
        assert!(matches!(rows[0], (1, Err(Refusal::Malformed(_)))));
        assert_eq!(rows[1], (2, Ok(raw("u2", None, None, None))));
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        let csv = Path::new("users.CSV");
        assert_eq!(Format::choose(None, Some(csv)), Ok(Format::Csv));
        assert_eq!(
            Format::choose(Some(Format::Ndjson), Some(csv)),
            Ok(Format::Ndjson)
        );
        assert_eq!(
            Format::choose(None, Some(Path::new("a.jsonl"))),
            Ok(Format::Ndjson)
        );
        assert!(Format::choose(None, Some(Path::new("a.txt"))).is_err());
        assert!(Format::choose(None, None).is_err());
    }
}
