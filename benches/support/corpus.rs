//! A deterministic synthetic corpus of car-news feeds: WordPress RSS 2.0
//! (content:encoded, dc:creator, slash:comments, wfw:commentRss), Atom with
//! RFC 4685 threading and relative links, and RSS 1.0; site-wide comment
//! feeds for the WordPress sites; stories syndicated across sites, items
//! without guid, entities and CDATA. Same seed, same bytes.

#![allow(dead_code)]

/// One site of the corpus: its feed and, for WordPress sites, its
/// site-wide comments feed.
pub struct Site {
    pub id: String,
    pub feed: Vec<u8>,
    pub comments: Option<Vec<u8>>,
    pub items: usize,
}

const WORDS: &[&str] = &[
    "turbocharged",
    "four-cylinder",
    "hybrid",
    "crossover",
    "recall",
    "dealer",
    "transmission",
    "torque",
    "horsepower",
    "battery",
    "charging",
    "platform",
    "interior",
    "infotainment",
    "suspension",
    "pickup",
    "sedan",
    "wagon",
    "coupe",
    "warranty",
    "sales",
    "quarter",
    "plant",
    "production",
    "engineers",
    "the",
    "a",
    "and",
    "with",
    "for",
    "its",
    "new",
    "model",
    "year",
    "range",
    "miles",
    "price",
    "trim",
    "market",
    "brand",
    "launch",
    "concept",
    "design",
    "review",
    "drive",
    "handling",
    "braking",
    "seats",
];

const MAKES: &[&str] = &[
    "Toyota",
    "Ford",
    "Honda",
    "Nissan",
    "Hyundai",
    "Kia",
    "Subaru",
    "Mazda",
    "BMW",
    "Volvo",
    "Jeep",
    "Chevrolet",
];

/// xorshift64*: tiny, deterministic, good enough for filler text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn story_link(site: usize, i: usize) -> String {
    format!("https://site{site}.example/2026/11/story-{i}-from-site-{site}/")
}

/// `sites` sites of about `per_site` stories each; `base` is where the
/// corpus is served (comment feed links point there).
pub fn generate(sites: usize, per_site: usize, base: &str) -> Vec<Site> {
    (0..sites).map(|n| site(n, per_site, base)).collect()
}

fn site(n: usize, per_site: usize, base: &str) -> Site {
    let mut rng = Rng(0x9E3779B97F4A7C15 ^ (n as u64 + 1).wrapping_mul(0x100000001B3));
    let items = per_site - 2 + (n % 5);
    let (feed, comments) = match n % 10 {
        0..=6 => (
            wordpress(n, items, base, &mut rng),
            Some(site_comments(n, items, &mut rng)),
        ),
        7 | 8 => (atom(n, items, &mut rng), None),
        _ => (rdf(n, items, &mut rng), None),
    };
    Site {
        id: format!("site{n}"),
        feed,
        comments,
        items,
    }
}

fn paragraphs(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| format!("<p>{}.</p>", rng.words(38)))
        .collect()
}

fn wordpress(n: usize, items: usize, base: &str, rng: &mut Rng) -> Vec<u8> {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel><title>Site {n} &#8211; Car News</title><atom:link href="{base}/feeds/site{n}.xml" rel="self" type="application/rss+xml"/><link>https://site{n}.example</link><description>Cars &amp; trucks</description><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency><generator>https://wordpress.org/?v=6.4</generator>
"#
    );
    for i in 0..items {
        let make = rng.pick(MAKES);
        // Every tenth story is another site's, syndicated with tracking.
        let link = if i % 10 == 3 && n > 0 {
            format!(
                "{}?utm_source=syndication&amp;utm_medium=rss",
                story_link(n - 1, i)
            )
        } else {
            story_link(n, i)
        };
        let guid = if i % 7 == 5 {
            String::new()
        } else {
            format!(
                "<guid isPermaLink=\"false\">https://site{n}.example/?p={}</guid>",
                10_000 + i
            )
        };
        let hour = 23 - (i % 24);
        out.push_str(&format!(
            "<item><title>{make}&#8217;s {} &amp; {}</title><link>{link}</link><comments>{link}#respond</comments>\
             <dc:creator><![CDATA[{} Staff]]></dc:creator><pubDate>Fri, 20 Nov 2026 {hour:02}:{:02}:00 +0000</pubDate>\
             <category><![CDATA[{make}]]></category><category><![CDATA[News]]></category>{guid}\
             <description><![CDATA[<p>{} [&#8230;]</p>]]></description><content:encoded><![CDATA[{}]]></content:encoded>\
             <wfw:commentRss>{base}/comments/site{n}/{i}.xml</wfw:commentRss><slash:comments>{}</slash:comments></item>\n",
            rng.words(5),
            rng.words(3),
            make,
            i % 60,
            rng.words(30),
            paragraphs(rng, 5),
            rng.next() % 200,
        ));
    }
    out.push_str("</channel></rss>\n");
    out.into_bytes()
}

fn site_comments(n: usize, items: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Comments for Site {n}</title><link>https://site{n}.example</link><description>Comments</description>
"#
    );
    for c in 0..10 {
        let i = (c * 3) % items;
        let author = format!("reader{}", rng.next() % 500);
        // WordPress omits dc:creator now and then; the title still says who.
        let creator = if c % 4 == 0 {
            String::new()
        } else {
            format!("<dc:creator>{author}</dc:creator>")
        };
        out.push_str(&format!(
            "<item><title>Comment on Story {i} by {author}</title><link>{}#comment-{}</link>{creator}\
             <pubDate>Fri, 20 Nov 2026 23:{:02}:00 +0000</pubDate><guid isPermaLink=\"false\">https://site{n}.example/?comment={}</guid>\
             <description><![CDATA[<p>{}</p>]]></description></item>\n",
            story_link(n, i),
            900 + c,
            59 - c,
            900 + c,
            rng.words(25)
        ));
    }
    out.push_str("</channel></rss>\n");
    out.into_bytes()
}

fn atom(n: usize, items: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0" xml:base="https://site{n}.example/"><title type="html">Site {n} &amp;amp; Friends</title><id>tag:site{n}.example,2026:feed</id><updated>2026-11-20T23:00:00Z</updated><link rel="alternate" href="/"/>
"#
    );
    for i in 0..items {
        let count = rng.next() % 90;
        out.push_str(&format!(
            "<entry><title type=\"html\">{} &lt;em&gt;{}&lt;/em&gt;</title><id>tag:site{n}.example,2026:post-{i}</id>\
             <link rel=\"alternate\" href=\"2026/11/story-{i}-from-site-{n}/\"/>\
             <link rel=\"replies\" type=\"application/atom+xml\" href=\"comments/{i}.xml\" thr:count=\"{count}\"/><thr:total>{count}</thr:total>\
             <author><name>{} Desk</name></author><published>2026-11-20T{:02}:00:00Z</published><updated>2026-11-20T{:02}:30:00Z</updated>\
             <summary type=\"html\">{}</summary><content type=\"html\">{}</content></entry>\n",
            rng.pick(MAKES),
            rng.words(6),
            rng.pick(MAKES),
            23 - (i % 24),
            23 - (i % 24),
            rng.words(30),
            html_escape(&paragraphs(rng, 5)),
        ));
    }
    out.push_str("</feed>\n");
    out.into_bytes()
}

fn rdf(n: usize, items: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="https://site{n}.example/"><title>Site {n}</title><link>https://site{n}.example/</link><description>RDF</description></channel>
"#
    );
    for i in 0..items {
        let link = story_link(n, i);
        out.push_str(&format!(
            "<item rdf:about=\"{link}\"><title>{} {}</title><link>{link}</link><dc:date>2026-11-20T{:02}:00:00Z</dc:date><dc:creator>{} Desk</dc:creator><description>{}</description></item>\n",
            rng.pick(MAKES),
            rng.words(6),
            23 - (i % 24),
            rng.pick(MAKES),
            html_escape(&paragraphs(rng, 6)),
        ));
    }
    out.push_str("</rdf:RDF>\n");
    out.into_bytes()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
