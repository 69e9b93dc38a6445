//! An agent's `GET /metrics`, scraped over loopback inside its namespace, and a strict parser of
//! the text it answers (OpenMetrics): every line a `# HELP`/`# TYPE`/`# UNIT` comment, a sample
//! `name{label="value",…} number`, or the final `# EOF`; anything else fails the test.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use crate::netns::Netns;

/// The agent's EC2 listener (its default), where `/metrics` is served.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8787";

/// One scrape's samples, by metric name and label set.
#[derive(Debug, Default)]
pub struct Samples(pub BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Samples {
    /// The sum of the samples called `name` whose labels include all of `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Whether any sample is called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.keys().any(|(n, _)| n == name)
    }
}

/// `GET /metrics` at `address` from inside `ns`: the body of a 200 answer in the OpenMetrics
/// text format, parsed.
pub fn scrape(ns: &Netns, address: &'static str) -> Samples {
    let answer = ns.run(move || {
        let mut stream = TcpStream::connect(address).expect("connecting to /metrics");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .expect("sending the scrape");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("reading the scrape");
        answer
    });
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "scrape answered {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    parse(body)
}

/// Parses the text format strictly (panics, naming the line, on anything else).
pub fn parse(text: &str) -> Samples {
    let mut samples = Samples::default();
    let mut ended = false;
    for line in text.lines() {
        assert!(!ended, "a line after # EOF: {line:?}");
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap_or("");
            let name = words.next().unwrap_or("");
            assert!(
                matches!(kind, "HELP" | "TYPE" | "UNIT") && is_name(name),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (name, labels, value) = sample(line).unwrap_or_else(|| panic!("bad line {line:?}"));
        let previous = samples.0.insert((name, labels), value);
        assert!(previous.is_none(), "duplicate sample {line:?}");
    }
    assert!(ended, "the text does not end with # EOF");
    samples
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{k="v",…} value` or `name value`.
fn sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !is_name(name) {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '}' if key.is_empty() => break,
                '=' => {
                    if chars.next()?.1 != '"' || !is_name(&key) {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c @ ('"' | '\\') => value.push(c),
                                _ => return None,
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                    match chars.next()?.1 {
                        ',' => {}
                        '}' => break,
                        _ => return None,
                    }
                }
                c => key.push(c),
            }
        }
        let consumed = chars.next().map_or(inner.len(), |(i, _)| i);
        rest = &inner[consumed..];
        rest = rest.strip_prefix(' ')?;
    } else {
        rest = rest.strip_prefix(' ')?;
    }
    let value = match rest {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().ok()?,
    };
    Some((name.to_string(), labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_labels_and_escapes() {
        let samples = parse(
            "# HELP a_total A.\n# TYPE a counter\na_total{x=\"1\",y=\"q\\\"\"} 3\nb 0.5\n# EOF\n",
        );
        assert_eq!(samples.sum("a_total", &[("x", "1")]), 3.0);
        assert_eq!(samples.sum("a_total", &[("y", "q\"")]), 3.0);
        assert_eq!(samples.sum("b", &[]), 0.5);
    }

    #[test]
    #[should_panic(expected = "bad line")]
    fn a_line_that_is_no_sample_fails() {
        parse("a_total{x=1} 3\n# EOF\n");
    }

    #[test]
    #[should_panic(expected = "# EOF")]
    fn a_text_without_its_end_fails() {
        parse("a 1\n");
    }
}
