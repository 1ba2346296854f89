//! Where feedparser is lenient and the meaning is clear, so is Paddock:
//! small, named pre-passes over the decoded document, each touching only
//! what feed-rs refuses. None of them makes a feed of what is not one: each
//! applies only to a document whose root element is already `<rss>`. They
//! read only the document's head (the root start tag is ASCII and near the
//! top), so a UTF-8 feed costs no extra pass.

use std::borrow::Cow;

/// How far into a document its root element's start tag may end.
const HEAD: usize = 8 * 1024;

/// The document's head as text, up to [`HEAD`] bytes (cut at a character).
fn head(doc: &[u8]) -> &str {
    let head = &doc[..doc.len().min(HEAD)];
    match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// [`rss_version`] over a document's bytes.
pub fn rss_version_bytes(doc: &[u8]) -> Cow<'_, [u8]> {
    let text = head(doc);
    match rss_version(text) {
        Cow::Borrowed(_) => Cow::Borrowed(doc),
        Cow::Owned(fixed) => {
            let mut out = fixed.into_bytes();
            out.extend_from_slice(&doc[text.len()..]);
            Cow::Owned(out)
        }
    }
}

/// An `<rss>` document without a `<channel>` says nothing, and says it
/// well: feedparser reads it as an empty feed, and so does Paddock.
pub fn is_empty_rss_bytes(doc: &[u8]) -> bool {
    is_rss(head(doc)) && !doc.windows(8).any(|w| w == b"<channel")
}

/// The root element's start tag: where its name starts and where the tag
/// ends (the index of its `>`), skipping the XML declaration, comments,
/// processing instructions and a doctype.
fn root_tag(text: &str) -> Option<(usize, usize)> {
    let mut at = 0;
    loop {
        let rest = &text[at..];
        let lt = rest.find('<')?;
        let tag = &rest[lt..];
        let skip = if tag.starts_with("<!--") {
            tag.find("-->").map(|e| e + 3)
        } else if tag.starts_with("<?") {
            tag.find("?>").map(|e| e + 2)
        } else if tag.starts_with("<!") {
            tag.find('>').map(|e| e + 1)
        } else {
            let end = tag.find('>')?;
            return Some((at + lt + 1, at + lt + end));
        };
        at += lt + skip?;
    }
}

/// Whether the document's root element is `<rss>`.
pub fn is_rss(text: &str) -> bool {
    root_tag(text).is_some_and(|(name, _)| {
        let n = &text[name..];
        n.starts_with("rss")
            && n[3..].starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/')
    })
}

/// The RSS versions feed-rs reads; the others are close kin of 2.0.
const KNOWN_VERSIONS: &[&str] = &["2.0", "0.91", "0.92"];

/// An `<rss>` root without a `version` attribute, or with one feed-rs does
/// not know (0.93, 0.94, ...), is read as RSS 2.0, as feedparser reads it
/// (feed-rs finds no root element in it).
pub fn rss_version(text: &str) -> Cow<'_, str> {
    if !is_rss(text) {
        return Cow::Borrowed(text);
    }
    let Some((name, end)) = root_tag(text) else {
        return Cow::Borrowed(text);
    };
    let tag = &text[name..end];
    let Some(at) = tag.find("version") else {
        let at = name + 3;
        return Cow::Owned(format!("{} version=\"2.0\"{}", &text[..at], &text[at..]));
    };
    // The attribute's quoted value, as written.
    let after = &tag[at + "version".len()..];
    let Some(eq) = after.find('=') else {
        return Cow::Borrowed(text);
    };
    let value = after[eq + 1..].trim_start();
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Cow::Borrowed(text);
    };
    let Some(len) = value[1..].find(quote) else {
        return Cow::Borrowed(text);
    };
    if KNOWN_VERSIONS.contains(&value[1..1 + len].trim()) {
        return Cow::Borrowed(text);
    }
    let start = end - value.len() + 1;
    let (head, tail) = (&text[..start], &text[start + len..]);
    Cow::Owned(format!("{head}2.0{tail}"))
}

/// Whether the document's root element is Atom's `<feed>`.
fn is_atom(text: &str) -> bool {
    root_tag(text).is_some_and(|(name, _)| {
        let n = &text[name..];
        n.starts_with("feed") && n[4..].starts_with(|c: char| c.is_whitespace() || c == '>')
    })
}

/// The Atom text constructs, whose `type` feed-rs reads only as `text`,
/// `html`, `text/html` or `xhtml`.
const TEXT_CONSTRUCTS: &[&str] = &[
    "title",
    "subtitle",
    "summary",
    "rights",
    "tagline",
    "copyright",
];

/// Atom text constructs with a media type for `type` (Atom 0.3 wrote
/// them so): `application/xhtml+xml` is read as `xhtml`, `text/plain` as
/// `text`, and any other type's content as base64 (feedparser's reading),
/// decoded and kept as `html`; content that does not decode is kept as
/// `text`. feed-rs refuses the whole document otherwise.
pub fn atom_text_types(doc: &[u8]) -> Cow<'_, [u8]> {
    let text = head(doc);
    if !is_atom(text) {
        return Cow::Borrowed(doc);
    }
    let Ok(text) = std::str::from_utf8(doc) else {
        return Cow::Borrowed(doc);
    };
    let mut out = String::new();
    let mut done = 0;
    let mut at = 0;
    while let Some(lt) = text[at..].find('<') {
        let start = at + lt;
        at = start + 1;
        let Some(name) = TEXT_CONSTRUCTS.iter().find(|n| {
            text[at..].starts_with(**n)
                && text[at + n.len()..].starts_with(|c: char| c.is_whitespace() || c == '>')
        }) else {
            continue;
        };
        let Some(gt) = text[start..].find('>').map(|g| start + g) else {
            break;
        };
        let tag = &text[start..gt];
        let Some((value, range)) = attribute(tag, "type") else {
            continue;
        };
        let fixed = match value {
            "text" | "html" | "text/html" | "xhtml" => continue,
            "application/xhtml+xml" => "xhtml",
            "text/plain" => "text",
            _ => "",
        };
        let (a, b) = (start + range.start, start + range.end);
        out.push_str(&text[done..a]);
        if !fixed.is_empty() {
            out.push_str(fixed);
            done = b;
            continue;
        }
        // A base64 body up to the element's end tag.
        let close = format!("</{name}>");
        let Some(end) = text[gt..].find(&close).map(|e| gt + e) else {
            out.push_str("text");
            done = b;
            continue;
        };
        let body: String = text[gt + 1..end].split_whitespace().collect();
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        {
            Some(decoded) => {
                out.push_str("html");
                out.push_str(&text[b..=gt]);
                out.push_str(&html_escape::encode_text(&decoded));
                done = end;
                at = end;
            }
            None => {
                out.push_str("text");
                done = b;
            }
        }
    }
    if done == 0 {
        return Cow::Borrowed(doc);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out.into_bytes())
}

/// An attribute's value in a start tag, and the value's byte range there.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<(&'t str, std::ops::Range<usize>)> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before = tag[..at].chars().next_back();
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let rest = tag[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value_start = tag.len() - rest.len() + 1;
        let len = rest[1..].find(quote)?;
        return Some((
            &tag[value_start..value_start + len],
            value_start..value_start + len,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atom_text_constructs_with_media_types_are_read() {
        let doc = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"application/xhtml+xml\" mode=\"xml\"><div>x</div></title>\
<entry><summary type=\"application/octet-stream\">\n RXhhbXBsZSA8Yj5BdG9tPC9iPg==\n</summary>\
<rights type=\"text/plain\">r</rights><title type=\"html\">&lt;b&gt;</title></entry></feed>";
        let fixed = String::from_utf8(atom_text_types(doc.as_bytes()).into_owned()).unwrap();
        assert!(
            fixed.contains("<title type=\"xhtml\" mode=\"xml\"><div>x</div></title>"),
            "{fixed}"
        );
        assert!(
            fixed.contains("<summary type=\"html\">Example &lt;b&gt;Atom&lt;/b&gt;</summary>"),
            "{fixed}"
        );
        assert!(
            fixed.contains("<rights type=\"text\">r</rights>"),
            "{fixed}"
        );
        assert!(
            fixed.contains("<title type=\"html\">&lt;b&gt;</title>"),
            "{fixed}"
        );
        let plain =
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"text\">t</title></feed>";
        assert!(matches!(
            atom_text_types(plain.as_bytes()),
            Cow::Borrowed(_)
        ));
        let rss = "<rss version=\"2.0\"><channel><title type=\"x/y\">t</title></channel></rss>";
        assert!(matches!(atom_text_types(rss.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn versionless_rss_becomes_rss_2_and_nothing_else_changes() {
        let doc = "<?xml version=\"1.0\"?>\n<!-- <feed> -->\n<rss xmlns:x=\"u\">\n<channel/></rss>";
        assert_eq!(
            rss_version(doc),
            "<?xml version=\"1.0\"?>\n<!-- <feed> -->\n<rss version=\"2.0\" xmlns:x=\"u\">\n<channel/></rss>"
        );
        assert_eq!(rss_version("<rss>x</rss>"), "<rss version=\"2.0\">x</rss>");
        assert_eq!(
            rss_version("<rss version='0.93' a=\"b\"><channel/></rss>"),
            "<rss version='2.0' a=\"b\"><channel/></rss>"
        );
        for untouched in [
            "<rss version=\"0.91\"><channel/></rss>",
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"/>",
            "<html><body><rss></rss></body></html>",
            "<rssfeed/>",
        ] {
            assert_eq!(rss_version(untouched), untouched);
        }
        assert!(is_empty_rss_bytes(b"<?xml version=\"1.0\"?><rss>\n</rss>"));
        assert!(!is_empty_rss_bytes(b"<rss><channel></channel></rss>"));
        assert!(!is_empty_rss_bytes(b"<html><rss></rss></html>"));
        let long = format!("<rss>{}</rss>", "\u{e9}".repeat(40_000));
        assert_eq!(
            &rss_version_bytes(long.as_bytes())[..21],
            b"<rss version=\"2.0\">\xc3\xa9"
        );
        assert!(rss_version_bytes(long.as_bytes()).ends_with(b"</rss>"));
    }
}
