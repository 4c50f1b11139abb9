//! The unescaped view of a line: JSON and logfmt string escapes decoded.
//!
//! A CloudNativePG record carries PostgreSQL's message inside JSON
//! (`"message":"could not open file \"pg_wal/…\": Read-only file system"`),
//! promtail quotes errors in logfmt (`error="server returned HTTP status 500
//! …"`), and a docker json-file line may wrap either once more. Signatures
//! are written against the message as the component printed it; this view
//! is what they are matched against when the raw bytes carry escapes.

/// Most nested encodings undone (a JSON line inside a JSON line inside a
/// docker json-file line).
const MAX_DEPTH: usize = 3;

/// Writes into `out` the view of `line` with string escapes decoded, up to
/// [`MAX_DEPTH`] levels deep. Returns `false`, leaving `out` unspecified,
/// when `line` has no backslash (its view is itself). `tmp` is scratch
/// space; both buffers are reused so the hot path does not allocate.
///
/// Decoded: `\"` `\\` `\/` `\'` as the character; `\n` `\r` `\t` as a space
/// (a view is one line); `\uXXXX` (with surrogate pairs) and `\xNN` as
/// UTF-8. Anything else is kept as written.
pub fn unescape_into(line: &[u8], out: &mut Vec<u8>, tmp: &mut Vec<u8>) -> bool {
    if memchr::memchr(b'\\', line).is_none() {
        return false;
    }
    decode_once(line, out);
    for _ in 1..MAX_DEPTH {
        if memchr::memchr(b'\\', out).is_none() {
            break;
        }
        std::mem::swap(out, tmp);
        decode_once(tmp, out);
        if out.len() == tmp.len() {
            break;
        }
    }
    true
}

fn decode_once(input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &input[i..]) {
        out.extend_from_slice(&input[i..i + offset]);
        i += offset;
        let rest = &input[i..];
        let consumed = match rest.get(1) {
            Some(&c @ (b'"' | b'\\' | b'/' | b'\'')) => {
                out.push(c);
                2
            }
            Some(b'n' | b'r' | b't') => {
                out.push(b' ');
                2
            }
            Some(b'u') => decode_unicode(rest, out),
            Some(b'x') => match rest.get(2..4).and_then(hex) {
                Some(byte) => {
                    out.push(byte as u8);
                    4
                }
                None => keep(out),
            },
            _ => keep(out),
        };
        i += consumed;
    }
    out.extend_from_slice(&input[i..]);
}

fn keep(out: &mut Vec<u8>) -> usize {
    out.push(b'\\');
    1
}

/// `rest` starts with `\u`. Decodes one code point (two escapes for a
/// surrogate pair); returns how many bytes were consumed.
fn decode_unicode(rest: &[u8], out: &mut Vec<u8>) -> usize {
    let Some(high) = rest.get(2..6).and_then(hex) else {
        return keep(out);
    };
    let (code, used) = if (0xD800..0xDC00).contains(&high) {
        match (rest.get(6..8), rest.get(8..12).and_then(hex)) {
            (Some(b"\\u"), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00), 12)
            }
            _ => (0xFFFD, 6),
        }
    } else {
        (high, 6)
    };
    let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    used
}

fn hex(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + (d as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(line: &str) -> Option<String> {
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        unescape_into(line.as_bytes(), &mut out, &mut tmp).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn lines_without_escapes_have_no_separate_view() {
        assert_eq!(view("plain line"), None);
    }

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(
            view(r#"{"message":"could not open file \"pg_wal/0001\": Read-only file system"}"#)
                .unwrap(),
            r#"{"message":"could not open file "pg_wal/0001": Read-only file system"}"#
        );
        assert_eq!(
            view(r"a\u003cb\u003e \u00e9 \ud83d\ude00 \n\t\\").unwrap(),
            "a<b> é 😀   \\"
        );
    }

    #[test]
    fn nested_encodings_are_undone() {
        let docker = r#"{"log":"{\"msg\":\"open \\\"/pgdata/postgresql.conf\\\": read-only file system\"}\n"}"#;
        assert_eq!(
            view(docker).unwrap(),
            r#"{"log":"{"msg":"open "/pgdata/postgresql.conf": read-only file system"} "}"#
        );
    }

    #[test]
    fn malformed_escapes_are_kept_as_written() {
        assert_eq!(
            view(r"C:\path \u12 \x4 \q end\").unwrap(),
            r"C:\path \u12 \x4 \q end\"
        );
        assert_eq!(view(r"\ud800x").unwrap(), "\u{FFFD}x");
        assert_eq!(view(r"\x41").unwrap(), "A");
    }
}
