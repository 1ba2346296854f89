//! Pure text helpers shared by the stages: feed HTML made safe and bounded
//! once (at ingest), feed HTML to plain text, excerpts cut at a word
//! boundary, and the characters XML cannot carry.
//!
//! Every function here is linear in its input, whatever the input: HTML is
//! cut to [`MAX_HTML_BYTES`] and markup nested deeper than
//! [`MAX_HTML_DEPTH`] is read as text, because an HTML tree builder's cost
//! grows with the square of the nesting depth.

use std::borrow::Cow;
use std::sync::LazyLock;

/// Longest HTML kept for a story's summary or its content, in bytes; the
/// rest is cut (at a character boundary, then the sanitizer closes what
/// the cut left open).
pub const MAX_HTML_BYTES: usize = 512 * 1024;
/// Deepest element nesting kept as markup. A document nested deeper keeps
/// its words as plain text in one paragraph.
pub const MAX_HTML_DEPTH: usize = 128;
/// Excerpts (digest and river summaries, comment texts) are made from at
/// most this many bytes of HTML: a 400-character excerpt never needs more,
/// and a request never reads a whole story to make one.
pub const EXCERPT_SOURCE_BYTES: usize = 16 * 1024;

/// A sanitizer that keeps no tags at all: what is left is text (with
/// entities still escaped). `script` and `style` lose their content too.
static STRIP_ALL: LazyLock<ammonia::Builder<'static>> = LazyLock::new(ammonia::Builder::empty);

/// The sanitizer stories' HTML goes through: no scripts, no event
/// handlers, no `javascript:` URLs, links marked `nofollow`.
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.link_rel(Some("noopener noreferrer nofollow"));
    b
});

/// Feed HTML made safe to store and republish, bounded in size and depth.
/// Runs once per story version, at ingest; outputs carry the result as is.
pub fn clean_html(html: &str) -> String {
    let html = cut_bytes(html, MAX_HTML_BYTES);
    if nesting_depth(html) > MAX_HTML_DEPTH {
        let text = collapse_whitespace(&html_escape::decode_html_entities(&strip_tags(html)));
        return format!("<p>{}</p>", html_escape::encode_text(&text));
    }
    xml_chars(&CLEANER.clean(html).to_string()).into_owned()
}

/// Turns feed HTML into plain text: tags removed, entities decoded,
/// whitespace collapsed. Text without `<` is only decoded and collapsed,
/// which is the common case for titles and cheap.
pub fn html_to_text(html: &str) -> String {
    let html = cut_bytes(html, MAX_HTML_BYTES);
    if !html.contains('<') {
        // No markup: only entities to decode (titles often hold `&#8217;`).
        return collapse_whitespace(&html_escape::decode_html_entities(html));
    }
    let stripped = if nesting_depth(html) > MAX_HTML_DEPTH {
        strip_tags(html)
    } else {
        STRIP_ALL.clean(html).to_string()
    };
    let decoded = html_escape::decode_html_entities(&stripped);
    collapse_whitespace(&decoded)
}

/// A plain-text excerpt of feed HTML, from its first
/// [`EXCERPT_SOURCE_BYTES`] only.
pub fn html_excerpt(html: &str, max_chars: usize) -> String {
    excerpt(
        &html_to_text(cut_bytes(html, EXCERPT_SOURCE_BYTES)),
        max_chars,
    )
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// At most `max` characters of `s`.
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether XML 1.0 can carry `c` at all, escaped or not.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` without the characters XML 1.0 forbids (NUL and the other C0
/// controls but tab and newlines, U+FFFE, U+FFFF): no parser accepts a
/// document that holds one, not even as a character reference.
pub fn xml_chars(s: &str) -> Cow<'_, str> {
    if s.chars().all(xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| xml_char(c)).collect())
    }
}

/// Void elements: they never hold anything, with or without a `/>`.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
/// Elements whose start closes an open one of their kind, so they do not
/// nest in the tree an HTML parser builds.
const SELF_CLOSING: &[&str] = &["p", "li", "dt", "dd", "option", "tr", "td", "th"];

/// How deep the elements of `html` nest, as an HTML parser would build
/// them, roughly, and at most `MAX_HTML_DEPTH + 1` (deeper is all a caller
/// needs to know). A start tag opens an element unless it is void; `/>`
/// closes nothing else (HTML ignores it); an end tag closes the nearest
/// open element of its name and those inside it, and is ignored when none
/// is open, as parsers do. One pass over the text.
fn nesting_depth(html: &str) -> usize {
    let b = html.as_bytes();
    let mut open: Vec<&[u8]> = Vec::new();
    let (mut deepest, mut i) = (0usize, 0usize);
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        i += off + 1;
        let rest = &b[i..];
        if rest.starts_with(b"!--") {
            i += find(&rest[3..], b"-->").map_or(rest.len(), |e| e + 6);
            continue;
        }
        let close = rest.first() == Some(&b'/');
        let name_at = usize::from(close);
        let name_len = rest[name_at..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &rest[name_at..name_at + name_len];
        i += rest.iter().position(|&c| c == b'>').unwrap_or(rest.len());
        let is = |list: &[&str]| list.iter().any(|e| e.as_bytes().eq_ignore_ascii_case(name));
        if close {
            if let Some(at) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                open.truncate(at);
            }
        } else if is(SELF_CLOSING) {
            // Closes an open one of its kind, as a parser would.
            if let Some(at) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                open.truncate(at);
            }
            open.push(name);
        } else if !is(VOID) {
            open.push(name);
        }
        deepest = deepest.max(open.len());
        if deepest > MAX_HTML_DEPTH {
            return deepest;
        }
    }
    deepest
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The text of `html` with every tag and comment left out, entities kept
/// as they are. A linear scan, for markup too deep to parse.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        out.push(' ');
        let tail = &rest[start..];
        let end = if tail.starts_with("<!--") {
            tail.find("-->").map(|e| e + 3)
        } else {
            tail.find('>').map(|e| e + 1)
        };
        rest = match end {
            Some(e) => &tail[e..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// At most `max_chars` characters of `text`, cut at a word boundary, with
/// an ellipsis when anything was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    // Leave room for the ellipsis.
    let budget = max_chars.saturating_sub(1);
    let cut = text
        .char_indices()
        .nth(budget)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let head = &text[..cut];
    let at_boundary = text[cut..].starts_with(char::is_whitespace);
    let head = if at_boundary {
        head
    } else {
        // Back up to the last whole word, unless that leaves nothing.
        match head.rfind(char::is_whitespace) {
            Some(i) if i > 0 => &head[..i],
            _ => head,
        }
    };
    format!(
        "{}…",
        head.trim_end_matches(|c: char| c.is_whitespace() || ",;:-".contains(c))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        let cases = [
            ("<p>Hello <b>world</b></p>", "Hello world"),
            ("Q&amp;A: 0-60 &lt; 5s", "Q&A: 0-60 < 5s"),
            ("It&#8217;s   here\n\tnow", "It’s here now"),
            ("<script>alert(1)</script>Safe", "Safe"),
            ("plain title", "plain title"),
            ("Tom &amp; Jerry&nbsp;ride", "Tom & Jerry ride"),
        ];
        for (input, want) in cases {
            assert_eq!(html_to_text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn deep_markup_is_kept_as_text_in_linear_time() {
        let deep = format!(
            "{}words here{}",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        assert!(nesting_depth(&deep) > MAX_HTML_DEPTH);
        // Stray end tags and `/>` on elements that are not void close
        // nothing in HTML, so they hide no depth.
        for trick in ["<div></i>", "<div/>", "<b><i></p>"] {
            assert!(
                nesting_depth(&trick.repeat(1000)) > MAX_HTML_DEPTH,
                "{trick}"
            );
        }
        let clean = clean_html(&deep);
        assert_eq!(clean, "<p>words here</p>");
        assert_eq!(html_to_text(&deep), "words here");
        // Markup that only looks deep is not flattened.
        let flat = "<p>a<p>b<br><img src=x><ul><li>c<li>d</ul>".repeat(500);
        assert!(nesting_depth(&flat) <= 3, "{}", nesting_depth(&flat));
        assert!(clean_html(&flat).contains("<li>"));
        assert_eq!(nesting_depth("<!-- <div><div> --><b>x</b>"), 1);
    }

    #[test]
    fn stored_html_is_bounded_and_safe() {
        let big = format!("<p>{}</p>", "é".repeat(MAX_HTML_BYTES));
        let clean = clean_html(&big);
        assert!(clean.len() <= MAX_HTML_BYTES + 16, "{}", clean.len());
        assert!(clean.ends_with("</p>"));
        let hostile = "<p onclick=\"x()\">a\u{0}b<script>alert(1)</script><a href=\"javascript:y()\">c</a></p>";
        let clean = clean_html(hostile);
        assert!(
            !clean.contains("onclick")
                && !clean.contains("script")
                && !clean.contains("javascript")
        );
        assert!(!clean.contains('\u{0}'), "{clean:?}");
        assert_eq!(xml_chars("a\u{0}\u{b}\u{FFFE}b\tc"), "ab\tc");
        assert!(matches!(xml_chars("plain"), Cow::Borrowed(_)));
        assert_eq!(cut_chars("héllo", 2), "hé");
        assert_eq!(cut_bytes("héllo", 2), "h");
    }

    #[test]
    fn excerpts_cut_at_words() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("one two three four", 10), "one two…");
        assert_eq!(excerpt("abcdefghijklmnop", 5), "abcd…");
        let e = excerpt("I have a bottle jack and 2 jackall's in my truck", 40);
        assert!(e.chars().count() <= 40, "{e}");
        assert!(e.ends_with("in…") || e.ends_with("jackall's…") || e.ends_with('…'));
    }
}
