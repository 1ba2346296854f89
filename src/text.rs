//! Pure text helpers shared by the stages: feed HTML to plain text, and
//! excerpts cut at a word boundary.

use std::sync::LazyLock;

/// A sanitizer that keeps no tags at all: what is left is text (with
/// entities still escaped). `script` and `style` lose their content too.
static STRIP_ALL: LazyLock<ammonia::Builder<'static>> = LazyLock::new(ammonia::Builder::empty);

/// Turns feed HTML into plain text: tags removed, entities decoded,
/// whitespace collapsed. Text without `<` or `&` is only collapsed, which is
/// the common case for titles and cheap.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') {
        // No markup: only entities to decode (titles often hold `&#8217;`).
        return collapse_whitespace(&html_escape::decode_html_entities(html));
    }
    let stripped = STRIP_ALL.clean(html).to_string();
    let decoded = html_escape::decode_html_entities(&stripped);
    collapse_whitespace(&decoded)
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
    fn excerpts_cut_at_words() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("one two three four", 10), "one two…");
        assert_eq!(excerpt("abcdefghijklmnop", 5), "abcd…");
        let e = excerpt("I have a bottle jack and 2 jackall's in my truck", 40);
        assert!(e.chars().count() <= 40, "{e}");
        assert!(e.ends_with("in…") || e.ends_with("jackall's…") || e.ends_with('…'));
    }
}
