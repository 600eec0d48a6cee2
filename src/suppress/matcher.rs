//! Label matchers in Alertmanager's syntax (`name="v"`, `name!="v"`, `name=~"re"`,
//! `name!~"re"`) and the label view of an event they are matched against.
//!
//! Syntax, as Alertmanager's: a list is comma-separated, optionally wrapped in `{…}`, with any
//! whitespace around tokens and an optional trailing comma. A name is a bare word of letters,
//! digits, `_`, `.`, `:`, `-` and `/`, or a double-quoted string. A value is a double-quoted
//! string (escapes `\"`, `\\`, `\n`, `\t`; any other backslash stays as it is, so `"\d+"` is the
//! regex `\d+`) or a bare word running to the next `,` or `}`, trimmed. Regexes are fully
//! anchored: `env=~"prod"` matches `prod`, not `preprod`.
//!
//! A missing label has the value `""` (as in Alertmanager), so `team=""` matches events without
//! a `team` label and `team!=""` requires one.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::model::Event;

/// Names that address an event's own fields rather than its labels. See [`EventLabels`].
pub const PSEUDO_LABELS: [&str; 5] = ["alertname", "ci", "service", "source", "severity"];

/// The severity words the `severity` pseudo-label can take (d2c's normalised severities).
const SEVERITIES: [&str; 5] = ["critical", "major", "minor", "warning", "info"];

/// Largest compiled regex a matcher may hold. Matchers also arrive through the silence API, so
/// one request must not be able to make d2c build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. Compare with `==` by name, operator and value.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher, its regex compiled and anchored. Errors name what is wrong as a sentence.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if name.is_empty() {
            return Err("the label name is empty".into());
        }
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => {
                if name == "severity" && !value.is_empty() && !SEVERITIES.contains(&value) {
                    return Err(format!(
                        "`severity` is d2c's normalised severity, one of {}; {value:?} never \
                         matches",
                        SEVERITIES.join(", ")
                    ));
                }
                None
            }
            MatchOp::Regex | MatchOp::NotRegex => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        format!("{name}{}{value:?} has an invalid regex: {e}", op.as_str())
                    })?,
            ),
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`None` when the label is missing, which counts as `""`) matches.
    pub fn matches_value(&self, v: Option<&str>) -> bool {
        let v = v.unwrap_or("");
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // `new` compiles a regex for both regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether the label set matches.
    pub fn matches(&self, labels: &impl LabelSet) -> bool {
        self.matches_value(labels.label(&self.name))
    }

    /// Whether `ev` matches, with `service` the service the caller resolved for it.
    pub fn matches_event(&self, ev: &Event, service: Option<&str>) -> bool {
        self.matches(&EventLabels { ev, service })
    }
}

impl fmt::Display for Matcher {
    /// The matcher in the syntax [`parse_matchers`] reads, value always quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.name.is_empty() && self.name.chars().all(is_bare_name_char) {
            f.write_str(&self.name)?;
        } else {
            write_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_quoted(f, &self.value)
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Whether all matchers match (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &impl LabelSet) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Anything matchers can look labels up in.
pub trait LabelSet {
    /// The value of label `name`, `None` when missing.
    fn label(&self, name: &str) -> Option<&str>;
}

impl LabelSet for BTreeMap<String, String> {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An event's labels plus the pseudo-labels:
/// - `alertname`: the event's `name`;
/// - `source`: the event's `source` (the tool or format);
/// - `severity`: d2c's normalised severity (`critical`, `major`, `minor`, `warning`, `info`),
///   whatever word the tool used;
/// - `ci`: the event's `ci`, else its `ci` label;
/// - `service`: the service the caller resolved from the topology, else the `service` label.
///
/// A pseudo-label shadows a label of the same name (for `ci` and `service` only when d2c has a
/// value of its own), so rules mean the same for every input format.
#[derive(Debug, Clone, Copy)]
pub struct EventLabels<'a> {
    pub ev: &'a Event,
    pub service: Option<&'a str>,
}

impl LabelSet for EventLabels<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        let labels = &self.ev.labels;
        match name {
            "alertname" => Some(&self.ev.name),
            "source" => Some(&self.ev.source),
            "severity" => Some(self.ev.severity.as_str()),
            "ci" => self.ev.ci.as_deref().or_else(|| labels.label("ci")),
            "service" => self.service.or_else(|| labels.label("service")),
            _ => labels.label(name),
        }
    }
}

impl EventLabels<'_> {
    /// The labels with the pseudo-labels written over them: what an inhibition source keeps.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut out = self.ev.labels.clone();
        for name in PSEUDO_LABELS {
            match self.label(name) {
                Some(v) => out.insert(name.to_string(), v.to_string()),
                None => out.remove(name),
            };
        }
        out
    }
}

/// Why a matcher list did not parse: what, where, and the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column} of `{input}`")]
pub struct MatcherError {
    pub input: String,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Parses a matcher list: `{service="checkout-api", env=~"prod|staging"}`, with or without the
/// braces. An empty string or `{}` is an empty list.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut p = Parser {
        input,
        chars: input.char_indices().collect(),
        pos: 0,
    };
    p.list()
}

/// Whether `c` may appear in a label name written without quotes.
fn is_bare_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '/')
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> MatcherError {
        MatcherError {
            input: self.input.to_string(),
            column: at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn list(&mut self) -> Result<Vec<Matcher>, MatcherError> {
        let mut out = Vec::new();
        self.skip_ws();
        let braced = self.eat('{');
        loop {
            self.skip_ws();
            match self.peek() {
                None if braced => return Err(self.err(self.pos, "missing closing `}`")),
                None => return Ok(out),
                Some('}') if braced => {
                    self.pos += 1;
                    self.skip_ws();
                    return match self.peek() {
                        None => Ok(out),
                        Some(c) => Err(self.err(self.pos, format!("unexpected {c:?} after `}}`"))),
                    };
                }
                Some(',') => return Err(self.err(self.pos, "expected a matcher before `,`")),
                Some(_) => {}
            }
            out.push(self.matcher(braced)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                None | Some('}') => {}
                Some(c) => {
                    return Err(self.err(
                        self.pos,
                        format!("expected `,` between matchers, found {c:?}"),
                    ));
                }
            }
        }
    }

    fn matcher(&mut self, braced: bool) -> Result<Matcher, MatcherError> {
        let start = self.pos;
        let name = if self.peek() == Some('"') {
            self.quoted()?
        } else {
            let from = self.pos;
            while self.peek().is_some_and(is_bare_name_char) {
                self.pos += 1;
            }
            if self.pos == from {
                let c = self.peek().unwrap_or(' ');
                return Err(self.err(self.pos, format!("expected a label name, found {c:?}")));
            }
            self.slice(from, self.pos).to_string()
        };
        self.skip_ws();
        let op_at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).map(|&(_, c)| c)) {
            (Some('='), Some('~')) => MatchOp::Regex,
            (Some('!'), Some('~')) => MatchOp::NotRegex,
            (Some('!'), Some('=')) => MatchOp::NotEqual,
            (Some('='), _) => MatchOp::Equal,
            _ => {
                return Err(self.err(
                    op_at,
                    format!("expected an operator (=, !=, =~ or !~) after label name {name:?}"),
                ));
            }
        };
        self.pos += if op == MatchOp::Equal { 1 } else { 2 };
        self.skip_ws();
        let value = if self.peek() == Some('"') {
            self.quoted()?
        } else {
            let from = self.pos;
            while let Some(c) = self.peek() {
                if c == ',' || (braced && c == '}') {
                    break;
                }
                if c == '"' {
                    return Err(self.err(self.pos, "a value with `\"` in it must be quoted"));
                }
                self.pos += 1;
            }
            self.slice(from, self.pos).trim().to_string()
        };
        Matcher::new(&name, op, &value).map_err(|m| self.err(start, m))
    }

    /// A double-quoted string starting at the current position, unescaped.
    fn quoted(&mut self) -> Result<String, MatcherError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err(open, "unterminated quoted string")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    let next = self.chars.get(self.pos + 1).map(|&(_, c)| c);
                    match next {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        // A lone backslash is literal, so regexes like "\d+" read naturally.
                        _ => {
                            out.push('\\');
                            self.pos += 1;
                            continue;
                        }
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn slice(&self, from: usize, to: usize) -> &str {
        let byte = |i: usize| self.chars.get(i).map_or(self.input.len(), |&(b, _)| b);
        &self.input[byte(from)..byte(to)]
    }
}
