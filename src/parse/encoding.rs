//! Character encodings, decided in one place before any XML parser sees
//! the bytes: a byte-order mark first, then the HTTP `charset` (RFC 7303
//! lets it override the document), then the XML declaration's `encoding`,
//! then UTF-8. The document is decoded once, with `encoding_rs`, and every
//! later pass (feed-rs, the extension scan) reads the same UTF-8, whose
//! declaration then says UTF-8 too.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// How far into the document the XML declaration may end.
const DECLARATION_MAX: usize = 512;

/// `body` as UTF-8. A document that is UTF-8 already is returned as it is
/// (without its BOM); bytes invalid in the encoding become U+FFFD.
pub fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, [u8]> {
    if let Some(text) = utf32(body) {
        return Cow::Owned(redeclare(&text).into_bytes());
    }
    let (encoding, skip) = match Encoding::for_bom(body) {
        Some((enc, bom)) => (enc, bom),
        None => (
            sniff_utf16(body)
                .or_else(|| charset(content_type))
                .or_else(|| declared(body))
                .unwrap_or(UTF_8),
            0,
        ),
    };
    let body = &body[skip..];
    if encoding == UTF_8 {
        // Said to be UTF-8 (or nothing said) while the declaration names
        // another encoding: the declaration must not be believed later.
        let other = declared_label(body).is_some_and(|l| Encoding::for_label(l) != Some(UTF_8));
        return match other {
            true => Cow::Owned(redeclare(&String::from_utf8_lossy(body)).into_bytes()),
            false => Cow::Borrowed(body),
        };
    }
    let (text, _) = encoding.decode_without_bom_handling(body);
    Cow::Owned(redeclare(&text).into_bytes())
}

/// UTF-32 (UCS-4), which `encoding_rs` does not read: by its BOM, or by
/// how `<` looks in its first four bytes. Code points that are not
/// characters become U+FFFD.
fn utf32(body: &[u8]) -> Option<String> {
    let (big, skip) = match body {
        [0, 0, 0xfe, 0xff, ..] => (true, 4),
        [0xff, 0xfe, 0, 0, ..] => (false, 4),
        [0, 0, 0, b'<', ..] => (true, 0),
        [b'<', 0, 0, 0, ..] => (false, 0),
        _ => return None,
    };
    let chars = body[skip..].chunks_exact(4).map(|c| {
        let b = [c[0], c[1], c[2], c[3]];
        let n = if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        char::from_u32(n).unwrap_or(char::REPLACEMENT_CHARACTER)
    });
    Some(chars.collect())
}

/// UTF-16 without a BOM, from how `<?` or `<` looks in its first bytes.
fn sniff_utf16(body: &[u8]) -> Option<&'static Encoding> {
    match body {
        [0, b'<', 0, _, ..] => Some(UTF_16BE),
        [b'<', 0, _, 0, ..] => Some(UTF_16LE),
        _ => None,
    }
}

/// The `charset` parameter of a `Content-Type` header.
fn charset(content_type: Option<&str>) -> Option<&'static Encoding> {
    let ct = content_type?;
    let value = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then_some(v)
    })?;
    let encoding = Encoding::for_label(value.trim().trim_matches(['"', '\'']).as_bytes())?;
    // UTF-16 without a BOM is recognised by its bytes (see `sniff_utf16`);
    // a header that claims it for bytes that are not is wrong.
    (encoding != UTF_16BE && encoding != UTF_16LE).then_some(encoding)
}

/// The `encoding` of an ASCII-compatible XML declaration, when it names
/// one the bytes can be in.
fn declared(body: &[u8]) -> Option<&'static Encoding> {
    // A document that calls itself UTF-16 but has no BOM and does not look
    // like UTF-16 was written as bytes by a tool that copied the label.
    Encoding::for_label(declared_label(body)?).filter(|e| *e != UTF_16BE && *e != UTF_16LE)
}

/// The `encoding` label of an ASCII-compatible XML declaration, as written.
fn declared_label(body: &[u8]) -> Option<&[u8]> {
    let head = &body[..body.len().min(DECLARATION_MAX)];
    let head = head.strip_prefix(b"<?xml")?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = &head[..end];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let rest = &decl[at + 8..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let name = &rest[1..];
    Some(&name[..name.iter().position(|&c| c == quote)?])
}

/// The decoded text, its declaration (if any) now naming UTF-8.
fn redeclare(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.strip_prefix("<?xml").and_then(|t| t.split_once("?>")) {
        Some((_, rest)) => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{rest}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"ENC\"?><rss><channel><title>Café ✓</title></channel></rss>";

    fn utf8(bytes: &[u8], ct: Option<&str>) -> String {
        String::from_utf8(to_utf8(bytes, ct).into_owned()).unwrap()
    }

    #[test]
    fn every_way_of_saying_an_encoding_decodes_to_the_same_text() {
        let doc = DOC.replace("ENC", "utf-16");
        let be: Vec<u8> = doc.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let le: Vec<u8> = doc.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for bytes in [
            [&[0xfe, 0xff][..], &be].concat(),
            [&[0xff, 0xfe][..], &le].concat(),
            be,
            le,
        ] {
            let text = utf8(&bytes, None);
            assert!(text.contains("<title>Café ✓</title>"), "{text}");
            assert!(
                text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
                "{text}"
            );
        }
        let latin1 = DOC.replace("ENC", "ISO-8859-1").replace(" ✓", "");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&latin1);
        assert!(utf8(&bytes, None).contains("Café"));
        // The HTTP charset wins over the declaration (RFC 7303).
        let mislabelled = DOC.replace("ENC", "utf-8").replace(" ✓", "");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&mislabelled);
        assert!(
            utf8(
                &bytes,
                Some("application/rss+xml; charset=\"windows-1252\"")
            )
            .contains("Café")
        );
        // UTF-8 stays as it is, BOM dropped.
        let plain = DOC.replace("ENC", "utf-8");
        assert!(matches!(to_utf8(plain.as_bytes(), None), Cow::Borrowed(_)));
        let bom = [&b"\xef\xbb\xbf"[..], plain.as_bytes()].concat();
        assert_eq!(utf8(&bom, None), plain);
        // UTF-32, by BOM or by its first bytes, either way round.
        let utf32 = DOC.replace("ENC", "utf-32");
        let be: Vec<u8> = utf32
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let le: Vec<u8> = utf32
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        for bytes in [
            [&[0, 0, 0xfe, 0xff][..], &be].concat(),
            [&[0xff, 0xfe, 0, 0][..], &le].concat(),
            be,
            le,
        ] {
            assert!(utf8(&bytes, None).contains("<title>Café ✓</title>"));
        }
        // UTF-8 by the header, another encoding by the declaration: the
        // declaration is rewritten, so no later pass believes it.
        let mislabelled = DOC.replace("ENC", "ISO-8859-1");
        let text = utf8(mislabelled.as_bytes(), Some("text/xml; charset=utf-8"));
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{text}"
        );
        assert!(text.contains("Café ✓"));
        // A header claiming UTF-16 for bytes that are not is not believed.
        assert_eq!(
            utf8(plain.as_bytes(), Some("text/xml; charset=utf-16")),
            plain
        );
    }
}
